"""The worker's wire state against Ruby Resque's trace (ruby-resque.md §5-§7), in-process."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import redis
from jobs.harness import run_burst

from resque_compat import JobRegistry

RUN_AT = rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
FAILURE_KEYS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]


def test_burst_run_leaves_ruby_state(redis_url: str, r: redis.Redis) -> None:
    good = b'{"class":"GoodJob","args":[1,"two",{"k":"v","sym":"val"},3.5,null,true]}'
    bad = b'{"class":"BadJob","args":["x"]}'
    r.sadd("resque:queues", "default")
    r.rpush("resque:queue:default", good, bad)
    worker = run_burst(redis_url)
    assert worker.id == f"vm:{os.getpid()}:default"
    failures = r.lrange("resque:failed", 0, -1)
    assert len(failures) == 1
    record = json.loads(failures[0])
    assert list(record) == FAILURE_KEYS
    assert failures[0].startswith(b'{"failed_at":"')
    assert b'"payload":' + bad + b',"exception":"jobs.worker_jobs.ArgumentError"' in failures[0]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \S+", record["failed_at"])
    assert record["error"] == "boom: ['x']"
    assert len(record["backtrace"]) == 1
    assert re.fullmatch(r".*/tests/jobs/worker_jobs\.py:\d+:in 'bad_job'", record["backtrace"][0])
    assert record["worker"] == worker.id and record["queue"] == "default"
    assert r.get("resque:stat:processed") == b"2"
    assert r.get("resque:stat:failed") == b"1"
    # unregistered exactly as Ruby's pipeline: nothing of the worker is left; the prune lock,
    # taken as Ruby does (SET NX EX), was released by compare-and-delete when the prune ended
    assert {k.decode() for k in r.keys("*")} == {
        "resque:failed", "resque:stat:processed", "resque:stat:failed", "resque:queues",
    }  # fmt: skip


def test_state_while_working_is_rubys(redis_url: str, r: redis.Redis) -> None:
    seen: dict[str, Any] = {}
    registry = JobRegistry()
    probe_client = redis.Redis.from_url(redis_url)

    @registry.job("Probe")
    def probe(*args: Any) -> None:
        wid = next(iter(probe_client.smembers("resque:workers"))).decode()
        seen["id"] = wid
        seen["record"] = probe_client.get(f"resque:worker:{wid}")
        seen["started"] = probe_client.get(f"resque:worker:{wid}:started")
        seen["beat"] = probe_client.hget("resque:workers:heartbeat", wid)
        seen["processed"] = probe_client.get(f"resque:stat:processed:{wid}")

    items = [
        b'{"args":["py"],"class":"Probe","jid":"abc123"}',
        '{"class":"Probe","args":[{"path":"a\\/b","utf":"\\u00e9","raw":"é"}],"id":"x","queue_time":1.5}'.encode(),
        b'{ "class" : "Probe" , "args" : [ ] }',
    ]
    for item in items:
        r.rpush("resque:queue:default", item)
        run_burst(redis_url, registry=registry)
        assert re.fullmatch(
            rb'\{"queue":"default","run_at":"' + RUN_AT + rb'","payload":' + re.escape(item) + rb"\}", seen["record"]
        ), seen["record"]
    assert re.fullmatch(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}", seen["started"])
    assert re.fullmatch(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", seen["beat"])
    assert seen["processed"] is None  # counted when the job is finished, in the next cycle call


def test_namespace_and_multi_queue_failures(redis_url: str, r: redis.Redis) -> None:
    r.rpush("myapp:queue:other", b'{"class":"BadJob","args":[1]}')
    run_burst(redis_url, queues=("other",), namespace="myapp", failure_backend="redis_multi_queue")
    assert r.smembers("myapp:failed_queues") == {b"other_failed"}
    assert r.llen("myapp:other_failed") == 1
    assert not r.exists("myapp:failed")
    assert r.get("myapp:stat:failed") == b"1" and r.get("myapp:stat:processed") == b"1"


def test_queue_priority_globs_and_exclusions(redis_url: str, r: redis.Redis) -> None:
    order: list[str] = []
    registry = JobRegistry()
    registry.register("Q", order.append)
    for queue in ("low", "b", "a", "critical"):
        r.sadd("resque:queues", queue)
        r.rpush(f"resque:queue:{queue}", json.dumps({"class": "Q", "args": [queue]}))
    r.rpush("resque:queue:b", json.dumps({"class": "Q", "args": ["b2"]}))
    run_burst(redis_url, queues=("*", "!low"), registry=registry)
    assert order == ["a", "b", "b2", "critical"]
    assert r.llen("resque:queue:low") == 1
    order.clear()
    for queue in ("b", "a"):
        r.rpush(f"resque:queue:{queue}", json.dumps({"class": "Q", "args": [queue]}))
    r.rpush("resque:queue:b", json.dumps({"class": "Q", "args": ["b2"]}))
    run_burst(redis_url, queues=("b", "a"), registry=registry)
    assert order == ["b", "b2", "a"]  # every turn starts again at the first queue


def test_pause_all_workers_key(redis_url: str, r: redis.Redis) -> None:
    r.rpush("resque:queue:default", b'{"class":"Noop","args":[]}')
    r.set("resque:pause-all-workers", " TRUE ")
    run_burst(redis_url)  # Ruby's work(0) leaves without taking the job
    assert r.llen("resque:queue:default") == 1
    r.set("resque:pause-all-workers", "false")
    run_burst(redis_url)
    assert r.llen("resque:queue:default") == 0
    assert r.get("resque:stat:processed") == b"1"
