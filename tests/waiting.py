"""The one ``wait_for`` of tests/ and interop-tests/ (the root conftest.py puts tests/ on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis

T = TypeVar("T")

# a server being killed, restarted or failed over: "not yet", not an error of the check
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError)


def wait_for(
    check: Callable[[], T | None], timeout: float = 60.0, what: str = "condition", *, interval: float = 0.02
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    The deadline only stops a hang; it is never an assertion on speed. A Redis that is away
    counts as "not yet" (fault tests poll across restarts); the last such error is chained.
    """
    deadline = time.monotonic() + timeout
    away: BaseException | None = None
    while True:
        value: T | None = None
        try:
            value = check()
        except REDIS_AWAY as exc:
            away = exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s") from away
        time.sleep(interval)
