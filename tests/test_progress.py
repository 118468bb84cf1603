"""resque-status jobs through a real worker, and php-style tracked progress."""

from __future__ import annotations

import json
import re
import threading
import time

import jobs.plugin_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import run_burst
from waiting import wait_for

from resque_compat import Resque

STATUS_KEYS = ["time", "status", "uuid", "options", "name", "num", "total", "message"]


@pytest.fixture(autouse=True)
def job_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_JOBS_REDIS", redis_url)


def stored(r: redis.Redis, uuid: str) -> dict[str, object]:
    return dict(json.loads(r.get(f"resque:status:{uuid}") or b"null"))


def test_create_writes_resque_status_layout(resque: Resque, r: redis.Redis) -> None:
    uuid = resque.statuses.create("Reports::Build", {"steps": 2, "list": [1, 2.5, None, True]})
    assert re.fullmatch(r"[0-9a-f]{32}", uuid)
    raw = r.get(f"resque:status:{uuid}") or b""
    assert re.fullmatch(
        rb'\{"time":\d+,"status":"queued","uuid":"'
        + uuid.encode()
        + rb'","options":\{"steps":2,"list":\[1,2.5,null,true\]\}\}',
        raw,
    )
    assert r.zscore("resque:_statuses", uuid) == json.loads(raw)["time"]
    assert r.lrange("resque:queue:statused", 0, -1) == [
        b'{"class":"Reports::Build","args":["' + uuid.encode() + b'",{"steps":2,"list":[1,2.5,null,true]}]}'
    ]
    assert resque.statuses.ids() == [uuid] and resque.statuses.count() == 1
    record = resque.statuses.get(uuid)
    assert record is not None and record.state == "queued" and record.pct_complete == 0


@pytest.mark.parametrize("fork", [False, True])
def test_status_job_runs_to_completed(resque: Resque, r: redis.Redis, fork: bool) -> None:
    uuid = resque.statuses.create("Reports::Build", {"steps": 3})
    run_burst(resque_url(resque), queues=("statused",), fork=fork)
    record = stored(r, uuid)
    assert list(record) == STATUS_KEYS
    assert record["status"] == "completed" and (record["num"], record["total"]) == (3, 3)
    assert record["name"] == 'Reports::Build({"steps"=>3})'
    assert re.fullmatch(r"Completed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", str(record["message"]))
    assert r.get("resque:stat:processed") == b"1" and not r.exists("resque:failed")


def test_explicit_completion_keeps_custom_fields(resque: Resque, r: redis.Redis) -> None:
    uuid = resque.statuses.create("Reports::Build", {"steps": 1, "custom": True})
    run_burst(resque_url(resque), queues=("statused",))
    record = stored(r, uuid)
    assert record["message"] == "All done" and record["extra"] == 42 and list(record)[-1] == "extra"


@pytest.mark.parametrize("fork", [False, True])
def test_failing_status_job(resque: Resque, r: redis.Redis, fork: bool) -> None:
    uuid = resque.statuses.create("Reports::Fail", {"n": 7})
    run_burst(resque_url(resque), queues=("statused",), fork=fork)
    record = stored(r, uuid)
    assert record["status"] == "failed" and record["message"] == "The task failed because of an error: boom 7"
    assert (record["num"], record["total"]) == (5, 10)
    failure = json.loads(r.lindex("resque:failed", 0) or b"")
    assert failure["payload"] == {"class": "Reports::Fail", "args": [uuid, {"n": 7}]}


def test_kill_before_it_runs(resque: Resque, r: redis.Redis) -> None:
    uuid = resque.statuses.create("Reports::Build", {"steps": 2})
    resque.statuses.kill(uuid)
    run_burst(resque_url(resque), queues=("statused",))
    record = stored(r, uuid)
    assert record["status"] == "killed" and str(record["message"]).startswith("Killed at ")
    assert "num" not in record  # killed at the first at(), before it wrote progress
    assert not r.exists("resque:_kill") and not r.exists("resque:failed")
    assert r.get("resque:stat:processed") == b"1"


@pytest.mark.parametrize("fork", [False, True])
def test_kill_while_running(resque: Resque, r: redis.Redis, fork: bool) -> None:
    uuid = resque.statuses.create("Reports::Build", {"steps": 400, "pause": 0.01})

    def kill_after_progress() -> None:
        wait_for(lambda: int(stored(r, uuid).get("num", 0) or 0) >= 3, what="progress")  # type: ignore[call-overload]
        resque.statuses.kill(uuid)

    killer = threading.Thread(target=kill_after_progress)
    killer.start()
    run_burst(resque_url(resque), queues=("statused",), fork=fork)  # the worker needs the main thread
    killer.join(timeout=60)
    record = stored(r, uuid)
    assert record["status"] == "killed" and 3 <= int(record["num"]) < 400  # type: ignore[call-overload]
    assert not r.exists("resque:_kill") and not r.exists("resque:failed")


def test_plain_payload_creates_its_own_status(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:queue:statused", b'{"class":"Reports::Build","args":["producer-uuid-1",{"steps":1}]}')
    run_burst(resque_url(resque), queues=("statused",))
    record = stored(r, "producer-uuid-1")
    assert list(record) == ["time", "status", "uuid", "name", "num", "total", "message"]
    assert not r.exists("resque:_statuses")


def test_list_remove_and_clear(resque: Resque, r: redis.Redis) -> None:
    statuses = resque.statuses
    ids = [statuses.create("Reports::Build", {"i": i}) for i in range(3)]
    statuses.update(ids[0], None, {"status": "completed"})
    assert {s.uuid for s in statuses.records()} == set(ids)
    assert statuses.clear("completed") == 1 and statuses.count() == 2
    statuses.remove(ids[1])
    assert statuses.ids() == [ids[2]]
    r.set(f"resque:status:{ids[2]}", b"not json")
    (broken,) = statuses.records()
    assert broken.state == "unreadable"


def resque_url(resque: Resque) -> str:
    kwargs = resque.redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_status_job_time_is_kept(resque: Resque, r: redis.Redis) -> None:
    uuid = resque.statuses.create("Reports::Build", {"steps": 1})
    created = stored(r, uuid)["time"]
    time.sleep(1.1)
    run_burst(resque_url(resque), queues=("statused",))
    assert stored(r, uuid)["time"] == created


def test_untracked_php_job_may_report_progress(resque: Resque, r: redis.Redis) -> None:
    resque.enqueue("default", "Mailer::Tracked", {"name": "u"})
    r.set("test:runs:u", 1)  # the next run succeeds
    run_burst(resque_url(resque))
    assert not r.exists("resque:failed") and r.get("resque:stat:processed") == b"1"


def test_async_client_creates_reads_and_kills(redis_url: str, r: redis.Redis) -> None:
    import asyncio  # noqa: PLC0415

    from resque_compat.aio import AsyncResque  # noqa: PLC0415

    async def go() -> tuple[str, object]:
        async with AsyncResque(redis_url) as aio:
            uuid = await aio.create_status_job("Reports::Build", {"steps": 1}, queue="statused")
            record = await aio.resque_status(uuid)
            await aio.kill_status_job(uuid)
            return uuid, record

    uuid, record = asyncio.run(go())
    sync_uuid = Resque(redis_url).statuses.create("Reports::Build", {"steps": 1})
    items = r.lrange("resque:queue:statused", 0, -1)
    assert items == [
        b'{"class":"Reports::Build","args":["' + u.encode() + b'",{"steps":1}]}' for u in (uuid, sync_uuid)
    ]
    shapes = [(r.get(f"resque:status:{u}") or b"").replace(u.encode(), b"U") for u in (uuid, sync_uuid)]
    assert [re.sub(rb'"time":\d+', b"", s) for s in shapes] == [re.sub(rb'"time":\d+', b"", shapes[1])] * 2
    assert getattr(record, "state", None) == "queued" and r.smembers("resque:_kill") == {uuid.encode()}
