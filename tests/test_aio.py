"""The asyncio client against a real Redis: every write is the sync client's, byte for byte."""

from __future__ import annotations

import asyncio
import itertools
import types
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio as aioredis

from resque_compat import JobStatus, Resque, plans
from resque_compat.aio import AsyncResque
from resque_compat.failures import FailureError
from resque_compat.protocol import Failure, JobPayload, Keys, Raw, StatusRecord, WorkingOn, encode_json, timefmt
from resque_compat.scheduler import DelayedQueue, delayed

T = TypeVar("T")


def run(factory: Callable[[AsyncResque], Awaitable[T]], url: str, **kwargs: Any) -> T:
    """Run one coroutine against a fresh AsyncResque (asyncio.run: no plugin needed)."""

    async def main() -> T:
        async with AsyncResque(url, **kwargs) as ar:
            return await factory(ar)

    return asyncio.run(main())


def dump(client: redis.Redis) -> dict[Any, tuple[Any, Any, int]]:
    """Every key: its type, its contents and its TTL (-1 none)."""
    out: dict[Any, tuple[Any, Any, int]] = {}
    for key in client.keys("*"):
        kind = client.type(key)
        value: Any
        if kind == b"string":
            value = client.get(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = sorted(client.smembers(key))
        elif kind == b"hash":
            value = client.hgetall(key)
        else:
            value = client.zrange(key, 0, -1, withscores=True)
        out[key] = (kind, value, client.ttl(key))
    return out


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Fixed clock and job ids (call it to restart the ids), so two clients writing the same
    jobs must write the same bytes."""
    counter = [itertools.count()]
    monkeypatch.setattr(plans, "new_job_id", lambda: f"{next(counter[0]):032x}")
    monkeypatch.setattr(plans, "time", types.SimpleNamespace(time=lambda: 1795724640.25))

    def reset() -> None:
        counter[0] = itertools.count()

    yield reset


def db(url: str, n: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{n}"


JOBS: list[tuple[str, list[Any]]] = [
    ("GoodJob", [1, "two", {"k": "v", "sym": "val"}, 3.5, None, True]),
    ("App\\Jobs\\SendMail", [{"to": "a/b", "name": "Zoë"}]),
    ("Mailer::Welcome", []),
]


def test_enqueue_writes_ruby_bytes(redis_url: str, r: redis.Redis) -> None:
    assert run(lambda ar: ar.enqueue("default", *JOBS[0]), redis_url) is None
    run(lambda ar: ar.enqueue("default", JOBS[0][0], *JOBS[0][1]), redis_url)
    assert r.smembers("resque:queues") == {b"default"}
    assert r.lrange("resque:queue:default", -1, -1) == [
        b'{"class":"GoodJob","args":[1,"two",{"k":"v","sym":"val"},3.5,null,true]}'
    ]


def test_sync_and_async_write_identical_redis(frozen: Callable[[], None], redis_url: str, r: redis.Redis) -> None:
    """The same operations through both clients, on two databases: every key and byte equal."""
    sync = Resque(db(redis_url, 1), namespace="app")
    for class_name, args in JOBS:
        sync.enqueue("default", class_name, *args)
    sync.enqueue("high", "Tracked", {"a": 1}, track=True)
    sync.enqueue_many("bulk", [(c, a) for c, a in JOBS], track=True)
    sync.push_raw("raw", b'{"class":"Peer","args":[],"queue":"raw"}')
    sync.pause_all()
    sync.control("host:1:default", "stop")
    sync.enqueue("gone", "X")
    sync.remove_queue("gone")

    async def same(ar: AsyncResque) -> None:
        for class_name, args in JOBS:
            await ar.enqueue("default", class_name, *args)
        await ar.enqueue("high", "Tracked", {"a": 1}, track=True)
        await ar.enqueue_many("bulk", [(c, a) for c, a in JOBS], track=True)
        await ar.push_raw("raw", b'{"class":"Peer","args":[],"queue":"raw"}')
        await ar.pause_all()
        await ar.control("host:1:default", "stop")
        await ar.enqueue("gone", "X")
        await ar.remove_queue("gone")

    frozen()
    run(same, db(redis_url, 2), namespace="app")
    one = dump(redis.Redis.from_url(db(redis_url, 1)))
    two = dump(redis.Redis.from_url(db(redis_url, 2)))
    assert len(one) == 11  # queues, 4 lists, 4 statuses, pause, control
    assert one == two
    assert one[b"app:queue:default"][1][2] == b'{"class":"Mailer::Welcome","args":[]}'  # Ruby writes empty args


def test_tracked_status_is_php_shape(redis_url: str, r: redis.Redis) -> None:
    async def go(ar: AsyncResque) -> tuple[str | None, StatusRecord | None, StatusRecord | None]:
        job_id = await ar.enqueue("default", "App\\Jobs\\SendMail", {"to": "x"}, track=True)
        assert job_id is not None
        return job_id, await ar.status(job_id), await ar.status("nope")

    job_id, status, missing = run(go, redis_url)
    assert status is not None and status.status == JobStatus.WAITING and missing is None
    raw = r.get(f"resque:job:{job_id}:status")
    assert raw == f'{{"status":1,"updated":{status.updated},"started":{status.started}}}'.encode()
    item = JobPayload.decode(r.lindex("resque:queue:default", 0) or b"")
    assert item.job_id == job_id


def test_follow_status_until_final(redis_url: str, r: redis.Redis) -> None:
    job_id = Resque(redis_url).enqueue("q", "X", track=True)
    assert job_id is not None
    key = f"resque:job:{job_id}:status"

    async def go(ar: AsyncResque) -> list[int]:
        seen = []
        async for record in ar.follow_status(job_id, interval=0.01):
            seen.append(record.status)
            nxt = {1: JobStatus.RUNNING, 2: JobStatus.COMPLETE}.get(record.status)
            if nxt is not None:
                current = StatusRecord.decode(r.get(key) or b"")
                r.set(key, current.advanced(nxt).encode())
        return seen

    assert run(go, redis_url) == [1, 2, 4]

    async def untracked(ar: AsyncResque) -> None:
        async for _ in ar.follow_status("missing"):
            pass

    with pytest.raises(LookupError):
        run(untracked, redis_url)


def test_queues_sizes_and_peek(redis_url: str, r: redis.Redis) -> None:
    r.sadd("resque:queues", "a", "b")
    r.rpush("resque:queue:a", b'{"class":"X","args":[1]}', b"not json")

    async def go(ar: AsyncResque) -> tuple[Any, ...]:
        return (
            await ar.queues(),
            await ar.size("a"),
            await ar.queue_sizes(),
            await ar.peek("a", 0, 5),
            await ar.peek("a", 0, 0),
        )

    names, size, sizes, items, none = run(go, redis_url)
    assert names == ["a", "b"] and size == 2 and sizes == {"a": 2, "b": 0} and none == []
    assert items[0].payload is not None and items[0].payload.class_ == "X"
    assert items[1].payload is None and items[1].problem


def test_workers_and_info_match_sync(redis_url: str, r: redis.Redis) -> None:
    wid = "web1:4242:high,default"
    r.sadd("resque:workers", wid, "node:77:math")
    r.hset("resque:workers:heartbeat", wid, timefmt.heartbeat())
    r.set(f"resque:worker:{wid}:started", timefmt.started())
    r.set(f"resque:stat:processed:{wid}", 5)
    r.set("resque:stat:processed", 9)
    r.set("resque:stat:failed", 2)
    working = WorkingOn(queue="high", run_at=timefmt.run_at(), payload=Raw(JobPayload.new("X", [1]).encode()))
    r.set(f"resque:worker:{wid}", working.encode())

    async def go(ar: AsyncResque) -> tuple[Any, ...]:
        return await ar.workers(), await ar.working(), await ar.info(), await ar.stat("processed")

    workers, busy, info, processed = run(go, redis_url)
    sync = Resque(redis_url)
    assert workers == sync.workers()
    assert [w.id for w in busy] == [wid] and busy[0].job is not None and busy[0].job.queue == "high"
    assert info == sync.info() and info["workers"] == 2 and info["working"] == 1 and processed == 9


def test_pause_control_and_bad_command(redis_url: str, r: redis.Redis) -> None:
    async def go(ar: AsyncResque) -> tuple[bool, bool]:
        await ar.pause_all()
        paused = await ar.paused_all()
        await ar.resume_all()
        return paused, await ar.paused_all()

    assert run(go, redis_url) == (True, False)
    with pytest.raises(ValueError, match="unknown worker command"):
        run(lambda ar: ar.control("w", "explode"), redis_url)
    with pytest.raises(ValueError, match="queue name"):
        run(lambda ar: ar.enqueue(" ", "X"), redis_url)


def _failure(queue: str, payload: bytes) -> Failure:
    return Failure(
        failed_at=timefmt.failed_at(),
        payload=Raw(payload),
        exception="RuntimeError",
        error="boom",
        backtrace=["a.rb:1"],
        worker="h:1:q",
        queue=queue,
    )


def test_failures_count_list_retry_remove_clear(redis_url: str, r: redis.Redis) -> None:
    job_id = "f" * 32
    payload = JobPayload.new("App\\Jobs\\X", [{"a": 1}], job_id, 1.5).encode()
    r.rpush(
        "resque:failed",
        _failure("q1", payload).encode(),
        _failure("q2", b'{"class":"Y","args":[]}').encode(),
        b"garbage",
    )
    r.set(f"resque:job:{job_id}:status", encode_json({"status": 3, "updated": 1, "started": 1}), ex=86400)

    async def go(ar: AsyncResque) -> tuple[Any, ...]:
        count = await ar.failures.count()
        page = await ar.failures.all(0, 10)
        queue = await ar.failures.retry(0)
        with pytest.raises(FailureError):
            await ar.failures.retry(2)
        await ar.failures.remove(1)
        names = await ar.failures.list_names()
        seen = [e.index async for e in ar.failures.iter(page=1)]
        return count, page, queue, names, seen, await ar.failures.clear()

    count, page, queue, names, seen, cleared = run(go, redis_url)
    assert count == 3 and [e.broken for e in page] == [False, False, True]
    assert queue == "q1" and names == ["failed"] and seen == [0, 1] and cleared == 2
    assert r.lrange("resque:queue:q1", 0, -1) == [payload]  # pushed back whole: id kept
    status = StatusRecord.decode(r.get(f"resque:job:{job_id}:status") or b"")
    assert status.status == JobStatus.WAITING and r.ttl(f"resque:job:{job_id}:status") == -1
    assert r.llen("resque:failed") == 0


def test_failure_retry_bytes_match_sync(redis_url: str, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timefmt, "failed_at", lambda epoch=None: "2026/11/26 20:20:42 UTC")
    entry = _failure("q", b'{"class":"Y","args":[1]}').encode()
    for n in (1, 2):
        redis.Redis.from_url(db(redis_url, n)).rpush("resque:failed", entry)
    Resque(db(redis_url, 1)).failures.retry(0)
    run(lambda ar: ar.failures.retry(0), db(redis_url, 2))
    assert dump(redis.Redis.from_url(db(redis_url, 1))) == dump(redis.Redis.from_url(db(redis_url, 2)))
    assert b'"retried_at":"2026/11/26 20:20:42 UTC"' in (
        redis.Redis.from_url(db(redis_url, 2)).lindex("resque:failed", 0) or b""
    )


def test_namespace_from_address_and_env(redis_url: str, r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/", 1)[0]
    run(lambda ar: ar.enqueue("q", "X"), f"127.0.0.1:{port}/rubyns")
    monkeypatch.setenv("RESQUE_NAMESPACE", "envns")
    run(lambda ar: ar.enqueue("q", "X"), redis_url)
    assert {b"rubyns:queue:q", b"envns:queue:q"} <= set(r.keys("*"))
    assert Keys("envns").queue("q") == "envns:queue:q"


def test_existing_client_is_left_open(redis_url: str) -> None:
    async def go() -> bool:
        client = aioredis.Redis.from_url(redis_url)
        async with AsyncResque(client) as ar:
            await ar.enqueue("q", "X")
        ok = bool(await client.ping())
        await client.aclose()
        return ok

    assert asyncio.run(go())


def test_delayed_enqueue_writes_scheduler_bytes(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """enqueue_at / enqueue_in through DelayedQueue and AsyncResque, on two databases: equal
    keys and bytes (future items delayed, a past time enqueued now), equal return values."""
    now = 1795724640.05
    monkeypatch.setattr(delayed, "time", types.SimpleNamespace(time=lambda: now))
    when = datetime.fromtimestamp(now + 7200, UTC)
    sync = DelayedQueue(Resque(db(redis_url, 1), namespace="app"))
    expected = [
        sync.enqueue_at(now + 3600, "default", "GoodJob", 1, "two", {"k": "v"}),
        sync.enqueue_at(now + 3600.9, "default", "Mailer::Welcome"),  # same second: one list
        sync.enqueue_in(90, "php", "App\\Jobs\\SendMail", {"to": "a/b", "name": "Zoë"}),
        sync.enqueue_at(when, "default", "GoodJob", None),
        sync.enqueue_at(now - 5, "default", "GoodJob", "past"),  # not in the future: enqueued now
    ]

    async def same(ar: AsyncResque) -> list[int | None]:
        return [
            await ar.enqueue_at(now + 3600, "default", "GoodJob", 1, "two", {"k": "v"}),
            await ar.enqueue_at(now + 3600.9, "default", "Mailer::Welcome"),
            await ar.enqueue_in(90, "php", "App\\Jobs\\SendMail", {"to": "a/b", "name": "Zoë"}),
            await ar.enqueue_at(when, "default", "GoodJob", None),
            await ar.enqueue_at(now - 5, "default", "GoodJob", "past"),
        ]

    assert run(same, db(redis_url, 2), namespace="app") == expected
    assert expected == [int(now) + 3600, int(now) + 3600, int(now) + 90, int(now) + 7200, None]
    one = dump(redis.Redis.from_url(db(redis_url, 1)))
    two = dump(redis.Redis.from_url(db(redis_url, 2)))
    assert one == two
    ts = int(now) + 3600
    assert one[f"app:delayed:{ts}".encode()][1] == [
        b'{"class":"GoodJob","args":[1,"two",{"k":"v"}],"queue":"default"}',
        b'{"class":"Mailer::Welcome","args":[],"queue":"default"}',
    ]
    assert one[b"app:queue:default"][1] == [b'{"class":"GoodJob","args":["past"]}']
    with pytest.raises(ValueError, match="a delay must be a number"):
        run(lambda ar: ar.enqueue_in("soon", "q", "X"), redis_url)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue name"):
        run(lambda ar: ar.enqueue_at(now + 60, " ", "X"), redis_url)
