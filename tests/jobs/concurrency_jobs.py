"""Jobs for the concurrency tests: each says it started, then waits at a gate the test opens, so
"N jobs in flight at once" is something the test sees, not a timing."""

from __future__ import annotations

import asyncio
import os
import time

import redis
import redis.asyncio

from resque_compat import job

#: the gate's keys, in the test's own Redis (``GATE_REDIS``): tags of jobs started, finished
STARTED, FINISHED, OPEN = "gate:started", "gate:finished", "gate:open"


def _url() -> str:
    return os.environ["GATE_REDIS"]


@job("Gate")
def gate(tag: str) -> None:
    """A plain function: runs on its slot's thread; waits in Python, so an interruption lands."""
    r = redis.Redis.from_url(_url())
    r.rpush(STARTED, tag)
    while not r.exists(OPEN):
        time.sleep(0.01)
    r.rpush(FINISHED, tag)


@job("AsyncGate")
async def async_gate(tag: str) -> None:
    """An ``async def``: runs on the worker's event loop."""
    r = redis.asyncio.Redis.from_url(_url())
    try:
        await r.rpush(STARTED, tag)
        while not await r.exists(OPEN):
            await asyncio.sleep(0.01)
        await r.rpush(FINISHED, tag)
    finally:
        await r.aclose()


@job("MailWait")
async def mail_wait(seconds: float) -> None:
    """The ``mail`` benchmark's job: waits on I/O, done on the event loop."""
    await asyncio.sleep(seconds)


@job("MailWaitThread")
def mail_wait_thread(seconds: float) -> None:
    """The ``mail`` benchmark's job as a plain function: waits on its slot's thread."""
    time.sleep(seconds)
