"""One Resque client per process, built from the Django settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from resque_compat import Resque


@cache
def _client(url: str, namespace: str) -> Resque:
    return Resque(url, namespace=namespace)


def get_resque() -> Resque:
    """The client for the configured Redis (looked up per call, so settings overrides apply)."""
    return _client(settings.RESQUE_REDIS_URL, settings.RESQUE_NAMESPACE)
