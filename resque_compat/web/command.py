"""``resque-compat web``: serve the dashboard.

Binds to 127.0.0.1 unless told otherwise, and refuses any other address without credentials:
the dashboard can delete queues and stop workers, so it is never open to a network by accident.
"""

from __future__ import annotations

import errno
import os
import socket

import click

from resque_compat.cliutil import CliContext, fail, handle_errors, hide_secrets_from_title, pass_cli
from resque_compat.envvars import help_epilog
from resque_compat.web.security import (
    ALLOWED_HOSTS_ENV,
    AUTH_ENV,
    AuthError,
    is_loopback,
    parse_allowed_hosts,
    parse_credentials,
)


@click.command("web", epilog=help_epilog("web"))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5678, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--auth",
    metavar="USER:PASSWORD",
    help=f"Require HTTP basic auth (needed to bind a non-loopback address). [env: {AUTH_ENV}]",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME[:PORT]",
    help="Also answer to this Host name (a reverse proxy's); repeatable. Loopback names are always"
    f" served; '*' (only with --auth) any. [env: {ALLOWED_HOSTS_ENV}, comma-separated]",
)
@click.option("--poll", default=2, show_default=True, type=click.IntRange(1, 3600), help="Live-poll interval, seconds.")
@pass_cli
@handle_errors
def _web(  # noqa: PLR0917 - one parameter per option
    cli: CliContext, host: str, port: int, auth: str | None, allowed_hosts: tuple[str, ...], poll: int
) -> None:
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
        names = parse_allowed_hosts([*allowed_hosts, os.environ.get(ALLOWED_HOSTS_ENV, "")])
    except AuthError as exc:
        fail(str(exc), 2)
    if "*" in names and credentials is None:
        fail("--allowed-host '*' needs --auth: without it any web page could reach the dashboard", 2)
    try:
        import uvicorn  # noqa: PLC0415 (the web extra is optional)
    except ImportError:
        fail("the web extra is not installed: pip install 'resque-compat[web]'", 2)

    from resque_compat.web.app import create_app  # noqa: PLC0415 (needs the web extra)

    hide_secrets_from_title(f"web on {host}:{port}", cli.redis_shown)
    resque = cli.resque
    resque.ping()
    app = create_app(resque, credentials, poll, allowed_hosts=names, sample_history=True)
    shown = f"[{host}]" if ":" in host else host
    sock = _listen(host, port, f"{shown}:{port}")
    click.echo(
        f"resque-compat web on http://{shown}:{port}/ (Redis {cli.redis_shown}, namespace {resque.keys.namespace!r})",
        err=True,
    )
    config = uvicorn.Config(app, log_level="warning", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int, shown: str) -> socket.socket:
    """Bind before announcing anything, so a busy port is one line, not a URL then uvicorn's error."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"cannot listen on {shown}: {exc.strerror or exc}", 2)
        raise  # not reached: fail() exits
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        fail(f"cannot listen on {shown}: {reason}", 2)
    return sock


#: annotated so that ``cli`` (which imports this module at its end) knows the type without
#: resolving the decorators across the import cycle
web: click.Command = _web
