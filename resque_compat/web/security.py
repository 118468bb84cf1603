"""Safe by default: HTTP basic auth, CSRF checks for every state change, strict headers.

resque-web changes state on GET links; here every change is a POST that must carry proof it
came from our own page (a double-submit token: a random cookie echoed in a form field) or,
for the JSON API, a JSON body, which a cross-site form cannot send without a CORS preflight
that this app never grants.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
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


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """The double-submit check: the cookie we set equals the token the page sent back."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return secrets.compare_digest(cookie.encode(), submitted.encode())


def same_origin(request: Request) -> bool:
    """A present Origin (or Referer) header must name this host; absent ones pass (old clients)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    if origin == "null":  # sandboxed frames, cross-site redirects
        return False
    host = request.headers.get("host", "")
    rest = origin.split("://", 1)[-1]
    return rest.split("/", 1)[0] == host


def api_write_ok(request: Request) -> bool:
    """A JSON API write: a JSON body (needs a preflight cross-site) or the CSRF header."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return same_origin(request)
    return csrf_ok(request, request.headers.get(CSRF_HEADER))


class Guard:
    """ASGI middleware: basic auth (when configured) on every request, and the strict headers."""

    def __init__(self, app: ASGIApp, credentials: tuple[str, str] | None = None, realm: str = "resque") -> None:
        self.app = app
        self.credentials = credentials
        self.realm = realm

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
