"""``resque-compat``: the operator's command line, in Resque's words.

Subcommands live beside what they drive (``worker.command``, ``scheduler.command``,
``web.command``) and are attached at the bottom of this module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import redis

from resque_compat.client import Resque, default_namespace
from resque_compat.connection import ConfigError, default_spec, parse_address, redact
from resque_compat.protocol import ProtocolError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    """Global options, and the client built from them on first use."""

    redis_spec: str | None
    namespace: str | None
    json: bool
    _resque: Resque | None = field(default=None, repr=False)

    @property
    def resque(self) -> Resque:
        if self._resque is None:
            self._resque = Resque(parse_address(self.redis_spec), namespace=self.namespace)
        return self._resque

    @property
    def redis_shown(self) -> str:
        return redact(self.redis_spec or default_spec())


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, non-zero exit: how every bad input ends."""
    click.echo(f"resque-compat: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn expected failures (bad address, Redis down, bad data) into one-line errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        obj = ctx.find_object(CliContext)
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), 2)
        except redis.ConnectionError as exc:
            where = obj.redis_shown if obj else "Redis"
            fail(f"cannot reach Redis at {where}: {redact(str(exc))}", 3)
        except redis.RedisError as exc:
            fail(f"Redis error: {redact(str(exc))}", 3)
        except (ProtocolError, ValueError, LookupError) as exc:
            fail(str(exc), 1)

    return wrapper  # type: ignore[return-value]


pass_cli = click.make_pass_decorator(CliContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--redis",
    "redis_spec",
    envvar="REDIS_URL",
    metavar="URL",
    help="Redis address: redis://, rediss://, unix://, redis+sentinel://, host:port. "
    "[env: REDIS_URL, else REDIS_BACKEND (+REDIS_BACKEND_DB)]",
)
@click.option(
    "--namespace",
    envvar="RESQUE_NAMESPACE",
    metavar="NS",
    help="Key namespace (Ruby's namespace, php-resque's PREFIX). [env: RESQUE_NAMESPACE, else PREFIX; default: resque]",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables.")
@click.version_option(package_name="resque-compat")
@click.pass_context
def main(ctx: click.Context, redis_spec: str | None, namespace: str | None, as_json: bool) -> None:
    """Run and inspect Resque jobs shared with Ruby, PHP and Node workers."""
    ctx.obj = CliContext(redis_spec, namespace if namespace is not None else default_namespace(), as_json)
