"""What every ``resque-compat`` subcommand shares: the global options' context, one-line
errors, and the output helpers (tables for people, JSON for scripts)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import redis

from resque_compat.client import Resque
from resque_compat.connection import ConfigError, default_spec, parse_address, redact
from resque_compat.protocol import ProtocolError, encode_json
from resque_compat.protocol.inputs import parse_json_input

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


def hide_secrets_from_title(what: str, redis_shown: str) -> None:
    """Replace the process title (what ``ps`` shows, argv included) with one that names the
    command and the redacted address only, so ``--redis``/``--auth`` passwords never show,
    as the worker does."""
    from setproctitle import setproctitle  # noqa: PLC0415 - only for the long-running commands

    setproctitle(f"resque-compat {what} ({redact(redis_shown)})")


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


pass_cli: Callable[[Callable[..., Any]], Callable[..., Any]] = click.make_pass_decorator(CliContext)

#: every destructive command takes it
yes_option = click.option(
    "--yes", "-y", is_flag=True, help="Do not ask for confirmation (asked only when stdin is a terminal)."
)


def on_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def confirm(question: str, yes: bool) -> None:
    """Destructive commands ask first when a person is at a terminal (stdin), unless ``--yes``;
    scripts and pipes are never asked. A "no" ends the command with ``aborted``, exit 1."""
    if yes or not on_terminal(sys.stdin):
        return
    click.confirm(question, abort=True, err=True)


@contextmanager
def progress(cli: CliContext, total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar (click's: no extra dependency, and it prints an ETA) on stderr while it is
    a terminal; nothing when piped, with ``--json``, or for nothing to do. Yields ``advance(n)``."""
    if cli.json or total <= 0 or not on_terminal(sys.stderr):
        yield lambda n: None
        return
    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_pos=True, show_percent=True, show_eta=True,
        update_min_steps=max(1, total // 200),  # ~200 redraws at most: drawing must not cost more than the work
    ) as bar:  # fmt: skip
        yield bar.update


def emit_json(value: Any) -> None:
    click.echo(encode_json(value).decode())


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "(none)") -> None:
    """Left-aligned columns separated by two spaces; the last column is never padded."""
    cells = [[_cell(v) for v in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else str(value)


def short(value: Any, width: int = 60) -> str:
    text = encode_json(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_json(text: str, what: str) -> Any:
    """Strict JSON (NaN, Infinity, ``1e999`` and deep nesting refused: no
    peer could read them back as written)."""
    return parse_json_input(text, what)
