"""The web dashboard and control API (``resque-compat web``): resque-web's pages for any
Resque deployment, Ruby's, PHP's, Node's or ours, plus worker control and a JSON API."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` is loaded on first use, so the CLI imports this package without the web extra."""
    if name == "create_app":
        from resque_compat.web.app import create_app  # noqa: PLC0415

        return create_app
    raise AttributeError(name)
