"""Sync and asyncio clients offer the same operations, and send the same commands for them."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from monitor import Monitor, parse

from resque_compat import Resque, failures, plans
from resque_compat.aio import AsyncFailures, AsyncResque
from resque_compat.failures import Failures
from resque_compat.protocol import Failure, Raw
from resque_compat.scheduler import DelayedQueue, delayed, mover
from resque_compat.scheduler.delayed_aio import AsyncDelayedQueue

#: operations only one side has, and why
ASYNC_ONLY = {"aclose"}  # closing the client it made (sync redis-py clients need no close)
#: operations without I/O, plain functions on both sides
PURE = {"list_for"}

PAIRS = [(Resque, AsyncResque), (Failures, AsyncFailures), (DelayedQueue, AsyncDelayedQueue)]


def operations(cls: type) -> dict[str, Any]:
    return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}


@pytest.mark.parametrize(("sync", "aio"), PAIRS, ids=[a.__name__ for _, a in PAIRS])
def test_the_async_client_offers_every_sync_operation_with_the_same_parameters(sync: type, aio: type) -> None:
    ours, theirs = operations(sync), operations(aio)
    assert set(theirs) - ASYNC_ONLY == set(ours)
    for name, method in ours.items():
        want = inspect.signature(method).parameters
        got = inspect.signature(theirs[name]).parameters
        assert [(p.name, p.kind, p.default) for p in got.values()] == [
            (p.name, p.kind, p.default) for p in want.values()
        ], name
        other = theirs[name]
        awaited = inspect.iscoroutinefunction(other) or inspect.isasyncgenfunction(other)
        assert awaited == (name not in PURE), name


def test_the_operations_the_issue_found_one_sided_exist_on_both_sides() -> None:
    """The two failures lists and delayed scheduling the issue found one-sided."""
    for name in ("destroy", "dequeue", "enqueue_at", "enqueue_in"):
        assert hasattr(Resque, name) and hasattr(AsyncResque, name)
    for name in ("retry_all", "clear_retried", "save"):
        assert hasattr(Failures, name) and hasattr(AsyncFailures, name)
    for name in ("enqueue_at", "remove", "move_due", "enqueue_job_now"):
        assert hasattr(DelayedQueue, name) and hasattr(AsyncDelayedQueue, name)


# -- the same commands ------------------------------------------------------------------------------
NOW = 1795724640.25
LATER = 4_000_000_000


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Fixed clock, job ids and removal markers: two clients doing the same must send the same."""
    counter = [itertools.count()]
    clock = types.SimpleNamespace(time=lambda: NOW)
    monkeypatch.setattr(plans, "new_job_id", lambda: f"{next(counter[0]):032x}")
    monkeypatch.setattr(plans, "time", clock)
    monkeypatch.setattr(delayed, "time", clock)
    monkeypatch.setattr(mover, "time", clock)
    monkeypatch.setattr(plans.timefmt, "failed_at", lambda epoch=None: "2026/11/26 20:20:42 UTC")
    monkeypatch.setattr(failures, "uuid", types.SimpleNamespace(uuid4=lambda: types.SimpleNamespace(hex="0" * 32)))

    def reset() -> None:
        counter[0] = itertools.count()

    yield reset


def a_failure(queue: str, arg: object) -> Failure:
    payload = f'{{"class":"BadJob","args":[{arg}]}}'.encode()
    return Failure(
        failed_at="2026/11/26 20:20:42 UTC", payload=Raw(payload), exception="RuntimeError", error="boom",
        backtrace=[], worker="vm:1:default", queue=queue,
    )  # fmt: skip


def sync_scenario(url: str) -> None:
    r = Resque(url, failure_backend="redis")
    r.enqueue("default", "A", 1, "two", {"k": "v"})
    r.enqueue("default", "A", 2)
    r.enqueue("default", "B", {"x": 1})
    job_id = r.enqueue("default", "C", {"id": 7}, track=True)
    r.enqueue_many("bulk", [("A", [1]), ("B", [])], track=True)
    r.push_raw("raw", b'{"class":"Peer","args":[],"queue":"raw"}')
    r.enqueue_at(LATER, "later", "D", 1)
    r.enqueue_at(NOW - 10, "now", "D", 2)
    r.enqueue_in(60, "soon", "D", 3)
    r.destroy("default", "A", 2)
    r.destroy("default", "B")
    r.dequeue("default", "C", job_id=job_id)
    r.dequeue("bulk", "A", args={"a": 1})
    r.queues(), r.size("default"), r.peek("default", 0, 5), r.queue_sizes(), r.info()
    r.pause_all(), r.paused_all(), r.resume_all()
    r.control("host:1:default", "stop")
    r.worker_count(), r.worker_rows(["host:1:default"]), r.busy_workers(["host:1:default"])
    r.worker_states(["host:1:default"]), r.worker_detail("host:1:default"), r.stored_status(str(job_id))
    r.server_info("server"), r.namespace_used(), r.namespaces(), r.queue_kind("default")
    r.stop_tracking("nosuch")
    r.remove_queue("raw")
    f = r.failures
    for i in range(4):
        f.save(a_failure("default", i))
    f.retry(0)
    f.remove(1)
    f.retry_all()
    f.clear_retried()
    f.all(0, 10), f.count(), f.list_names()
    f.save(a_failure("other", 9))
    list(f.retry_pages()), list(f.clear_retried_pages())
    f.clear()
    d = DelayedQueue(r, batch=2)
    for i in range(5):
        d.enqueue_at(LATER + i % 2, "q", "E", i)
    d.push_raw(NOW - 5, b'{"class":"F","args":[],"queue":"q"}', with_timestamps_set=False)
    d.push_raw(NOW - 5, b"junk")
    d.enqueue_in(30, "q", "E", 9)
    d.count(), d.timestamps(), d.timestamp_count(), d.next_timestamp(), d.jobs_at(LATER), list(d.all_jobs())
    d.size_at(LATER), d.enqueue_item_now(LATER + 1, b"nothing")
    d.scheduled_at("q", "E", 1), d.find(lambda c, a: a == [2])
    d.move_due()
    d.enqueue_job_now("q", "E", 0)
    d.enqueue_timestamp_now(LATER + 1)
    d.remove("q", "E", 2)
    d.remove_selection(lambda c, a: a == [4])
    d.remove_at(LATER, b"nothing")
    d.clear()


async def async_scenario(url: str) -> None:
    async with AsyncResque(url, failure_backend="redis") as r:
        await r.enqueue("default", "A", 1, "two", {"k": "v"})
        await r.enqueue("default", "A", 2)
        await r.enqueue("default", "B", {"x": 1})
        job_id = await r.enqueue("default", "C", {"id": 7}, track=True)
        await r.enqueue_many("bulk", [("A", [1]), ("B", [])], track=True)
        await r.push_raw("raw", b'{"class":"Peer","args":[],"queue":"raw"}')
        await r.enqueue_at(LATER, "later", "D", 1)
        await r.enqueue_at(NOW - 10, "now", "D", 2)
        await r.enqueue_in(60, "soon", "D", 3)
        await r.destroy("default", "A", 2)
        await r.destroy("default", "B")
        await r.dequeue("default", "C", job_id=job_id)
        await r.dequeue("bulk", "A", args={"a": 1})
        await r.queues(), await r.size("default"), await r.peek("default", 0, 5)
        await r.queue_sizes(), await r.info()
        await r.pause_all(), await r.paused_all(), await r.resume_all()
        await r.control("host:1:default", "stop")
        await r.worker_count(), await r.worker_rows(["host:1:default"]), await r.busy_workers(["host:1:default"])
        await r.worker_states(["host:1:default"]), await r.worker_detail("host:1:default")
        await r.stored_status(str(job_id)), await r.server_info("server"), await r.namespace_used()
        await r.namespaces(), await r.queue_kind("default")
        await r.stop_tracking("nosuch")
        await r.remove_queue("raw")
        f = r.failures
        for i in range(4):
            await f.save(a_failure("default", i))
        await f.retry(0)
        await f.remove(1)
        await f.retry_all()
        await f.clear_retried()
        await f.all(0, 10), await f.count(), await f.list_names()
        await f.save(a_failure("other", 9))
        [b async for b in f.retry_pages()], [b async for b in f.clear_retried_pages()]
        await f.clear()
        d = AsyncDelayedQueue(r, batch=2)
        for i in range(5):
            await d.enqueue_at(LATER + i % 2, "q", "E", i)
        await d.push_raw(NOW - 5, b'{"class":"F","args":[],"queue":"q"}', with_timestamps_set=False)
        await d.push_raw(NOW - 5, b"junk")
        await d.enqueue_in(30, "q", "E", 9)
        await d.count(), await d.timestamps(), await d.timestamp_count(), await d.next_timestamp()
        await d.jobs_at(LATER), [job async for job in d.all_jobs()]
        await d.size_at(LATER), await d.enqueue_item_now(LATER + 1, b"nothing")
        await d.scheduled_at("q", "E", 1), await d.find(lambda c, a: a == [2])
        await d.move_due()
        await d.enqueue_job_now("q", "E", 0)
        await d.enqueue_timestamp_now(LATER + 1)
        await d.remove("q", "E", 2)
        await d.remove_selection(lambda c, a: a == [4])
        await d.remove_at(LATER, b"nothing")
        await d.clear()


#: connection set-up and the test's own calls, not the operations compared
_NOISE = {b"CLIENT", b"HELLO", b"FLUSHALL", b"ECHO", b"SELECT", b"PING"}


def sent(url: str, run: Callable[[], None]) -> list[list[bytes]]:
    redis.Redis.from_url(url).flushall()
    with Monitor(url) as monitor:
        run()
    words = [parse(line) for line in monitor.lines]
    return [w for lua, w in words if w and not lua and w[0].upper() not in _NOISE]


def test_sync_and_async_send_the_same_commands(frozen: Callable[[], None], redis_url: str) -> None:
    sync_scenario(redis_url)  # loads the scripts, so neither run below differs by a NOSCRIPT
    frozen()
    one = sent(redis_url, lambda: sync_scenario(redis_url))
    frozen()
    two = sent(redis_url, lambda: asyncio.run(async_scenario(redis_url)))
    assert len(one) > 60
    assert {b"MULTI", b"EXEC", b"SADD", b"RPUSH", b"ZADD", b"LREM", b"EVALSHA", b"SET", b"SCAN"} <= {
        w[0].upper() for w in one
    }
    assert one == two
