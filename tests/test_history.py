"""The history sampler and its reader against a real Redis: bounded tiers, gaps kept as gaps,
every peer's counters and failures counted, one sampler per minute."""

from __future__ import annotations

import json
import threading
import time
import warnings

import pytest
import redis
from history_seed import seed_history
from waiting import wait_for

from resque_compat import Resque
from resque_compat.history import SCAN_LIMIT, Sampler
from resque_compat.protocol import Keys
from resque_compat.protocol.history import HISTORY_TTL, MAX_CLASSES, MAX_QUEUES, OTHER_CLASS, TIERS, decode_sample
from resque_compat.scheduler.daemon import Scheduler
from resque_compat.web import create_app
from resque_compat.web.history import history
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.worker import Worker

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

T0 = 1_794_999_600.0  # an hour boundary (2026-11-19 17:00 UTC)
NS = "resque:"


def failure(cls: str, failed_at: str) -> bytes:
    record = {"failed_at": failed_at, "payload": {"class": cls, "args": []}, "exception": "E", "error": "x"}
    return json.dumps(record, separators=(",", ":")).encode()


def utc(t: float, fmt: str = "%Y/%m/%d %H:%M:%S UTC") -> str:
    """A failed_at for time t in UTC (Ruby's format unless told)."""
    return time.strftime(fmt, time.gmtime(t))


def test_tiers_keep_one_sample_per_step_and_stay_capped(r: redis.Redis) -> None:
    sampler = Sampler(r, Keys())
    for minute in range(300):  # five hours, one sample a minute, plus a second try each minute
        r.incrby(NS + "stat:processed", 10)
        sampler.record(T0 + minute * 60 + 1)
        sampler.record(T0 + minute * 60 + 30)
    sizes = {tier.name: r.llen(NS + "compat:history:" + tier.name) for tier in TIERS}
    assert sizes == {"minute": 120, "tenmin": 30, "hour": 5}
    newest = decode_sample(r.lindex(NS + "compat:history:minute", 0) or b"")
    assert newest.t == T0 + 299 * 60 + 1 and newest.processed == 3000
    for key in r.keys(NS + "compat:history:*"):
        assert 0 < r.ttl(key) <= HISTORY_TTL, key


def test_a_minute_without_a_sampler_is_a_gap_not_a_zero(r: redis.Redis) -> None:
    resque = Resque(r)
    sampler = Sampler(r, resque.keys)
    for minute in (0, 1, 2, 5, 6):
        r.incrby(NS + "stat:processed", 30 * (minute + 1))
        r.incrby(NS + "stat:failed", 1)
        sampler.record(T0 + minute * 60)
    shown = history(resque, "hour", now=T0 + 6 * 60 + 10)
    assert len(shown["t"]) == 60
    tail = dict(zip(shown["t"][-7:], shown["processed"][-7:], strict=True))
    base = int(T0)
    assert tail == {base: None, base + 60: 60.0, base + 120: 90.0, base + 180: None, base + 240: None,
                    base + 300: None, base + 360: 210.0}  # fmt: skip
    assert shown["failed"][-7:] == [None, 1.0, 1.0, None, None, None, 1.0]
    assert shown["samples"] == 5


def test_every_peers_counters_count(r: redis.Redis) -> None:
    """The shared counters, as each peer moves them (node-resque counts only successes)."""
    resque = Resque(r)
    sampler = Sampler(r, resque.keys)
    sampler.record(T0)
    pipe = r.pipeline()
    for _ in range(3):  # Ruby / php-resque / ours: 3 jobs, one failed, all processed
        pipe.incr(NS + "stat:processed")
    pipe.incr(NS + "stat:failed")
    pipe.incr(NS + "stat:processed")  # node-resque: a success...
    pipe.incr(NS + "stat:processed")
    pipe.incr(NS + "stat:failed")  # ...and a failure that is not "processed"
    pipe.execute()
    sampler.record(T0 + 60)
    shown = history(resque, "hour", now=T0 + 61)
    assert shown["processed"][-1] == 5.0
    assert shown["failed"][-1] == 2.0


def test_queue_depths_and_total(r: redis.Redis) -> None:
    resque = Resque(r)
    for name, size in (("mail", 3), ("default", 1)):
        r.sadd(NS + "queues", name)
        r.rpush(NS + f"queue:{name}", *[b"{}"] * size)
    Sampler(r, resque.keys).record(T0)
    r.sadd(NS + "queues", "new")
    r.rpush(NS + "queue:new", b"{}")
    r.delete(NS + "queue:mail")
    Sampler(r, resque.keys).record(T0 + 60)
    shown = history(resque, "hour", now=T0 + 61)
    assert shown["queued"][-2:] == [4, 2]
    assert shown["queues"] == {
        "default": [None] * 58 + [1, 1],
        "mail": [None] * 58 + [3, 0],
        "new": [None] * 58 + [0, 1],
    }
    only = history(resque, "hour", "mail", now=T0 + 61)
    assert list(only["queues"]) == ["mail"]


def test_queues_kept_per_sample_are_bounded(r: redis.Redis) -> None:
    pipe = r.pipeline()
    for i in range(MAX_QUEUES + 50):
        pipe.sadd(NS + "queues", f"q{i}")
        pipe.rpush(NS + f"queue:q{i}", *[b"{}"] * (i % 7 + 1))
    pipe.execute()
    sample = Sampler(r, Keys()).record(T0)
    assert len(sample.queues) == MAX_QUEUES
    assert min(sample.queues.values()) >= max(
        n for name, n in ((f"q{i}", i % 7 + 1) for i in range(MAX_QUEUES + 50)) if name not in sample.queues
    )
    assert sample.queued == sum(i % 7 + 1 for i in range(MAX_QUEUES + 50))


def test_failures_are_counted_per_class_once(r: redis.Redis) -> None:
    resque = Resque(r)
    sampler = Sampler(r, resque.keys)
    sampler.record(T0)  # counts up to T0 - 5
    r.rpush(
        NS + "failed",
        failure("Old", utc(T0 - 300)),  # before the window: not counted
        failure("BadJob", utc(T0 + 10)),  # Ruby's format
        failure("boom", utc(T0 + 10, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")),  # node
        failure("Bad_PHP_Job", utc(T0 + 20, "%Y-%m-%dT%H:%M:%S+00:00")),  # php-resque fork
        b"{not a failure",
    )
    r.sadd(NS + "failed_queues", "mail_failed")
    r.rpush(NS + "mail_failed", failure("BadJob", utc(T0 + 30)))
    first = sampler.record(T0 + 60)
    assert first.classes == {"BadJob": 2, "boom": 1, "Bad_PHP_Job": 1}
    r.rpush(NS + "failed", failure("BadJob", utc(T0 + 100)))
    second = sampler.record(T0 + 120)
    assert second.classes == {"BadJob": 3, "boom": 1, "Bad_PHP_Job": 1}
    shown = history(resque, "hour", now=T0 + 121)
    assert shown["classes"]["BadJob"][-3:] == [None, 2, 1]
    assert shown["class_totals"] == {"BadJob": 3, "Bad_PHP_Job": 1, "boom": 1}


def test_the_failure_scan_is_bounded(r: redis.Redis) -> None:
    sampler = Sampler(r, Keys())
    sampler.record(T0)
    pipe = r.pipeline()
    for _ in range(SCAN_LIMIT + 500):
        pipe.rpush(NS + "failed", failure("Flood", utc(T0 + 10)))
    pipe.execute()
    assert sampler.record(T0 + 60).classes == {"Flood": SCAN_LIMIT}


def test_one_sampler_records_a_minute(r: redis.Redis) -> None:
    keys = Keys()
    for _ in range(3):  # redone if Redis' clock crossed a minute meanwhile (each minute has its own lock)
        r.flushdb()
        minute = r.time()[0] // 60
        samplers = [Sampler(r, keys) for _ in range(5)]
        first = sum(s.tick() for s in samplers)
        again = sum(s.tick() for s in samplers)  # not due again until the next minute
        if r.time()[0] // 60 == minute:
            break
    assert (first, again) == (1, 0)
    assert r.llen(NS + "compat:history:minute") == 1
    assert len(r.keys(NS + "compat:history:lock:*")) == 1


def test_readers_survive_what_others_stored(r: redis.Redis) -> None:
    resque = Resque(r)
    r.set(NS + "stat:processed", b"lots")
    sample = Sampler(r, resque.keys).record(T0)
    assert sample.processed is None and sample.failed == 0
    r.lpush(NS + "compat:history:minute", b"garbage", b'{"t":"x"}')
    r.set(NS + "stat:processed", 5)
    Sampler(r, resque.keys).record(T0 + 60)
    shown = history(resque, "hour", now=T0 + 61)
    assert shown["samples"] == 2 and shown["processed"][-1] is None  # unknown before: no rate


# -- the samplers that already run ---------------------------------------------------------------
def _wait_for_sample(r: redis.Redis) -> bool:
    return bool(wait_for(lambda: r.llen(NS + "compat:history:minute"), what="a history sample"))


def test_a_workers_heartbeat_thread_records_the_minute(redis_url: str, r: redis.Redis) -> None:
    r.set(NS + "stat:processed", 7)
    worker = Worker(WorkerConfig(queues=("default",), fork=False, interval=0.1), Resque(redis_url), host="vm")
    recorded: list[bool] = []

    def stop_when_sampled() -> None:
        try:
            recorded.append(_wait_for_sample(r))
        finally:
            r.rpush(NS + f"compat:control:{worker.id}", "stop")

    watcher = threading.Thread(target=stop_when_sampled)
    watcher.start()
    assert worker.work() == 0
    watcher.join()
    assert recorded == [True]
    assert decode_sample(r.lindex(NS + "compat:history:minute", 0) or b"").processed == 7


def test_the_scheduler_records_the_minute(redis_url: str, r: redis.Redis) -> None:
    Scheduler(Resque(redis_url), lock_value="py:1").run(once=True)
    assert r.llen(NS + "compat:history:minute") == 1


def test_the_dashboard_process_records_while_it_serves(redis_url: str, r: redis.Redis) -> None:
    with TestClient(create_app(Resque(redis_url), sample_history=True), base_url="http://localhost") as client:
        assert _wait_for_sample(r)
        assert client.get("/api/history").json()["samples"] == 1


# -- the JSON twin and the pages ---------------------------------------------------------------------
def test_api_history_serves_the_series(redis_url: str, r: redis.Redis) -> None:
    seed_history(r)
    with TestClient(create_app(Resque(redis_url)), base_url="http://localhost") as client:
        for range_name, points in (("hour", 60), ("day", 144), ("week", 168)):
            body = client.get(f"/api/history?range={range_name}").json()
            assert len(body["t"]) == points and len(body["processed"]) == points
            assert body["samples"] > points // 2
            assert set(body["queues"]) == {"default", "mail"}
        assert set(client.get("/api/history?queue=mail").json()["queues"]) == {"mail"}
        bad = client.get("/api/history?range=year")
        assert bad.status_code == 400 and "range must be one of" in bad.json()["error"]
        assert client.get("/history?range=year").status_code == 400
        page = client.get("/history?range=day")
        assert page.status_code == 200 and 'data-chart="classes"' in page.text
        for path, chart in (("/overview", 'data-chart="live"'), ("/queues/mail", 'data-queue="mail"'),
                            ("/failed", 'data-chart="classes"')):  # fmt: skip
            html = client.get(path).text
            assert chart in html and "/static/uPlot.iife.min.js" in html
        assert client.get("/static/uPlot.LICENSE").status_code == 200


def test_classes_kept_are_bounded(r: redis.Redis) -> None:
    sampler = Sampler(r, Keys())
    sampler.record(T0)
    r.rpush(NS + "failed", *[failure(f"Class{i}", utc(T0 + 10)) for i in range(MAX_CLASSES + 50)])
    classes = sampler.record(T0 + 60).classes
    assert len(classes) == MAX_CLASSES and r.hlen(NS + "compat:history:classes") == MAX_CLASSES
    assert sum(classes.values()) == MAX_CLASSES + 50 and classes[OTHER_CLASS] == 51


def test_resque_history_off_keeps_a_process_out(r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESQUE_HISTORY", "off")
    assert not Sampler(r, Keys()).tick()
    assert r.llen(NS + "compat:history:minute") == 0
    monkeypatch.setenv("RESQUE_HISTORY", "on")
    assert Sampler(r, Keys()).tick()
