"""Safe by default: HTTP basic auth, CSRF checks for every state change, strict headers.

resque-web changes state on GET links; here every change is a POST that must carry proof it
came from our own page (a double-submit token: a random cookie echoed in a form field) or,
for the JSON API, a JSON body, which a cross-site form cannot send without a CORS preflight
that this app never grants.

DNS rebinding (a hostile page whose name is re-pointed at 127.0.0.1) is stopped before any
route runs: the ``Host`` header must be a loopback name or one the operator admitted
(``--allowed-host``, ``$RESQUE_WEB_ALLOWED_HOSTS``), and a state change's ``Origin`` must name
one of those hosts, never merely match the request's own ``Host``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importable without the web extra: ``resque-compat web`` checks for it
    from starlette.requests import Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "resque_web_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
AUTH_ENV = "RESQUE_WEB_AUTH"
ALLOWED_HOSTS_ENV = "RESQUE_WEB_ALLOWED_HOSTS"
#: Host names served without any configuration (with or without a port)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

#: no external resources, no inline script, no framing
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class AuthError(ValueError):
    """A credentials setting that cannot be used."""


def parse_credentials(value: str) -> tuple[str, str]:
    """``USER:PASSWORD`` (the password may contain colons); both parts required."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise AuthError("auth must be USER:PASSWORD, both non-empty")
    return user, password


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, str | None]:
    """``name[:port]`` -> (lower-cased name, port or None); IPv6 stays bracketed: ``[::1]``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        name, rest = value[: end + 1], value[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else None
    name, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or ":" in name:
        return value, None
    return name, port


def parse_allowed_hosts(values: Iterable[str]) -> tuple[str, ...]:
    """Host names from ``--allowed-host`` (repeatable) and the comma-separated env value;
    ``name`` admits any port, ``name:port`` that port only, ``*`` any host (auth required)."""
    out: list[str] = []
    for value in values:
        for raw in value.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            if item != "*" and (any(c in item for c in "/@ \t?#") or item.startswith(":")):
                raise AuthError(f"--allowed-host must be a host name or name:port, got {item!r}")
            out.append(item)
    return tuple(out)


class HostPolicy:
    """Which ``Host`` (and ``Origin``) names the dashboard answers to."""

    def __init__(self, allowed: Iterable[str] = (), *, any_host: bool = False) -> None:
        names = [*LOOPBACK_NAMES, *(a for a in allowed if a != "*")]
        self.any_host = any_host or "*" in allowed
        self.names = frozenset(split_host(n) for n in names)

    def allows(self, host: str) -> bool:
        if self.any_host:
            return True
        name, port = split_host(host)
        if not name or len(host) > 300:
            return False
        return (name, None) in self.names or (port is not None and (name, port) in self.names)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """The double-submit check: the cookie we set equals the token the page sent back."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return secrets.compare_digest(cookie.encode(), submitted.encode())


def same_origin(request: Request) -> bool:
    """A present Origin (or Referer) header must name an allowed host; absent ones pass (old
    clients). With ``*`` allowed (auth on, any Host), the Origin must equal the Host."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    if origin == "null":  # sandboxed frames, cross-site redirects
        return False
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return False
    origin_host = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" in origin_host:
        return False
    policy: HostPolicy | None = request.scope.get(POLICY_SCOPE_KEY)
    if policy is None or policy.any_host:
        return origin_host.lower() == request.headers.get("host", "").lower()
    return policy.allows(origin_host)


def api_write_ok(request: Request) -> bool:
    """A JSON API write: a JSON body (needs a preflight cross-site) or the CSRF header; either
    way from an allowed origin."""
    if not same_origin(request):
        return False
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return True
    return csrf_ok(request, request.headers.get(CSRF_HEADER))


POLICY_SCOPE_KEY = "resque_web.hosts"


class Guard:
    """ASGI middleware, before any route: the Host allow-list, basic auth (when configured),
    and the strict headers on every answer.

    Without credentials only loopback names and ``allowed_hosts`` are served. With credentials
    and no ``allowed_hosts`` any Host is served (a rebound name never carries the browser's
    credentials for the real one); naming hosts restricts that too."""

    def __init__(
        self,
        app: ASGIApp,
        credentials: tuple[str, str] | None = None,
        realm: str = "resque",
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.realm = realm
        allowed = tuple(allowed_hosts)
        if "*" in allowed and credentials is None:
            raise AuthError("--allowed-host '*' needs --auth: without it any web page could reach the dashboard")
        self.policy = HostPolicy(allowed, any_host=credentials is not None and not allowed)

    def _authorized(self, scope: Scope) -> bool:
        if self.credentials is None:
            return True
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        want_user, want_password = self.credentials
        user_ok = secrets.compare_digest(user.encode(), want_user.encode())
        password_ok = secrets.compare_digest(password.encode(), want_password.encode())
        return user_ok and password_ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if not self.policy.allows(host):
            await _plain(send, 421, b"this dashboard does not answer to that Host name (see --allowed-host)\n")
            return
        scope[POLICY_SCOPE_KEY] = self.policy
        if not self._authorized(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"www-authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'.encode()),
                        (b"content-type", b"text/plain; charset=utf-8"),
                        *HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"authentication required\n"})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in HEADERS if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _plain(send: Send, status: int, body: bytes) -> None:
    """A short text answer that carries no data, with the strict headers."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": body})
