"""``resque-compat web``: serve the dashboard.

Binds to 127.0.0.1 unless told otherwise, and refuses any other address without credentials:
the dashboard can delete queues and stop workers, so it is never open to a network by accident.
"""

from __future__ import annotations

import os

import click

from resque_compat.cliutil import CliContext, fail, handle_errors, pass_cli
from resque_compat.envvars import help_epilog
from resque_compat.web.security import AUTH_ENV, AuthError, is_loopback, parse_credentials


@click.command("web", epilog=help_epilog("web"))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5678, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--auth",
    metavar="USER:PASSWORD",
    help=f"Require HTTP basic auth (needed to bind a non-loopback address). [env: {AUTH_ENV}]",
)
@click.option("--poll", default=2, show_default=True, type=click.IntRange(1, 3600), help="Live-poll interval, seconds.")
@pass_cli
@handle_errors
def _web(cli: CliContext, host: str, port: int, auth: str | None, poll: int) -> None:
    """Serve the dashboard and JSON API (resque-web's tabs, worker control, OpenAPI at /api/openapi.json)
    and Prometheus metrics at /metrics (the metrics extra), all behind the same auth."""
    spec = auth if auth is not None else os.environ.get(AUTH_ENV) or None
    credentials = None
    if spec:
        try:
            credentials = parse_credentials(spec)
        except AuthError as exc:
            fail(str(exc), 2)
    if credentials is None and not is_loopback(host):
        fail(f"refusing to serve on {host} without authentication: pass --auth USER:PASSWORD or set {AUTH_ENV}", 2)
    try:
        import uvicorn  # noqa: PLC0415 (the web extra is optional)
    except ImportError:
        fail("the web extra is not installed: pip install 'resque-compat[web]'", 2)

    from resque_compat.web.app import create_app  # noqa: PLC0415 (needs the web extra)

    resque = cli.resque
    resque.redis.ping()
    app = create_app(resque, credentials, poll)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"resque-compat web on http://{shown}:{port}/ (Redis {cli.redis_shown}, namespace {resque.keys.namespace!r})",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


#: annotated so that ``cli`` (which imports this module at its end) knows the type without
#: resolving the decorators across the import cycle
web: click.Command = _web
