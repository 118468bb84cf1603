"""The bench's jobs for resque-compat workers (``--import compat_jobs``): Ruby's names and args,
so the very bytes Ruby Resque's bench enqueues run here too."""

from __future__ import annotations

import asyncio
import os
import time

import redis

import resque_compat

_stamps: redis.Redis | None = None


@resque_compat.job("Noop")
def noop(*_args: object) -> None:
    return None


@resque_compat.job("Sleep")
def sleep(seconds: float) -> None:
    time.sleep(float(seconds))


@resque_compat.job("ASleep")
async def asleep(seconds: float) -> None:
    """The mail scenario's job as a coroutine: with ``--concurrency`` it waits on the event loop."""
    await asyncio.sleep(float(seconds))


@resque_compat.job("Stamp")
def stamp(*_args: object) -> None:
    """Record when the job started, for the enqueue-to-start latency."""
    global _stamps  # noqa: PLW0603 - one connection per worker process, made on first use
    t = time.time()
    if _stamps is None:
        host, port = os.environ.get("BENCH_REDIS", "127.0.0.1:6379").rsplit(":", 1)
        _stamps = redis.Redis(host=host, port=int(port))
    _stamps.rpush("resque:bench:stamps", f"{t:.6f}")
