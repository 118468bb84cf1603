"""The dashboard's test client and the two ways the tests post to it (a form with its CSRF token, JSON)."""

from __future__ import annotations

import warnings
from typing import Any

from resque_compat.web.security import CSRF_COOKIE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["TestClient", "api", "post", "token"]


def token(client: TestClient) -> str:
    """Load a page (which sets the CSRF cookie) and return the token forms carry."""
    client.get("/overview")
    value = client.cookies.get(CSRF_COOKIE)
    assert value
    return str(value)


def post(client: TestClient, path: str, **fields: Any) -> Any:
    data = {"csrf": token(client), **{k: str(v) for k, v in fields.items()}}
    return client.post(path, data=data, follow_redirects=False)


def api(client: TestClient, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, json=body or {})
