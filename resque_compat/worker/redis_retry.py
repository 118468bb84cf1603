"""Which Redis errors mean "not now", how they are told to an operator, and the retry with
backoff that the worker wraps its idempotent Redis work in."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from resque_compat.connection import redact
from resque_compat.worker.run_state import RunState
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")
T = TypeVar("T")

#: Redis error replies that mean "not now" (a restart, a failover, a full or read-only server;
#: UNBLOCKED: a blocked BLPOP/BLMOVE whose primary turned replica): the call did not run, so
#: it is retried like a dropped connection.
_TRANSIENT_REPLIES = (
    "OOM", "READONLY", "MASTERDOWN", "LOADING", "BUSY", "NOREPLICAS", "MISCONF", "TRYAGAIN", "UNBLOCKED",
)  # fmt: skip
#: how long a stopping worker keeps retrying before it leaves the rest to a pruner
RETRY_GIVE_UP = 30.0


def transient(exc: Exception) -> bool:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) or refusal(exc):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


def refusal(exc: Exception) -> bool:
    """Redis answers but will not write now (redis-py names these errors and drops the code)."""
    return isinstance(exc, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError))


def why(exc: Exception) -> str:
    """The log line's reason, in an operator's words."""
    detail = redact(str(exc))
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or detail.startswith("OOM"):
        return f"Redis refuses writes: out of memory (maxmemory) ({detail})"
    if isinstance(exc, redis.exceptions.ReadOnlyError) or detail.startswith("READONLY"):
        return f"Redis refuses writes: read-only replica ({detail})"
    if isinstance(exc, redis.exceptions.BusyLoadingError) or detail.startswith("LOADING"):
        return f"Redis is loading its data ({detail})"
    return f"Redis connection lost ({detail})"


class Retrier:
    """Idempotent Redis work: retried through connection loss and refused writes with backoff;
    while stopping, given up after ``give_up`` s (TERM/INT: 0.5 s, else 30 s)."""

    def __init__(self, state: RunState, wakeup: Wakeup) -> None:
        self.state = state
        self.wakeup = wakeup

    def __call__(self, func: Callable[[], T], what: str, give_up: float | None = None) -> T:
        delay = 0.1
        started = time.monotonic()
        state = self.state
        while True:
            try:
                return func()
            except redis.RedisError as exc:
                if not transient(exc):
                    raise
                limit = give_up if give_up is not None else 0.5 if state.stop_now else RETRY_GIVE_UP
                if state.exit_now or (state.stop and time.monotonic() - started > limit):
                    raise
                log.warning("cannot %s: %s; retrying in %.1f s", what, why(exc), delay)
                self.wakeup.sleep(delay)
                delay = min(delay * 2, 5.0)
