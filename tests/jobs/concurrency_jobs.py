"""Jobs for the concurrency tests: each says it started, then waits at a gate the test opens, so
"N jobs in flight at once" is something the test sees, not a timing."""

from __future__ import annotations

import asyncio
import os
import threading
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


@job("Nap")
def nap(tag: str, seconds: float) -> None:
    """One C call (``time.sleep``): an exception raised in its thread lands only when it returns."""
    time.sleep(seconds)
    redis.Redis.from_url(_url()).rpush(FINISHED, tag)


#: where each ``Where*`` job ran: "<tag> <thread name>"
THREADS = "gate:threads"


@job("WhereAsync")
async def where_async(tag: str) -> None:
    redis.Redis.from_url(_url()).rpush(THREADS, f"{tag} {threading.current_thread().name}")


@job("WhereOwnLoop")
class WhereOwnLoop:
    """``executor = "thread"``: its async perform runs on its slot's thread, on a loop of its own."""

    executor = "thread"

    @staticmethod
    async def perform(tag: str) -> None:
        await asyncio.sleep(0)
        redis.Redis.from_url(_url()).rpush(THREADS, f"{tag} {threading.current_thread().name}")
