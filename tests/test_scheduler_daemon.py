"""The master lock, the scheduler loop (Redis going away and back), and the CLI."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from waiting import wait_for

from resque_compat import Resque, humantime
from resque_compat.cli import main
from resque_compat.protocol import Keys
from resque_compat.scheduler import DelayedQueue, MasterLock, Scheduler
from resque_compat.testing.redis_server import RedisServer

LOCK = "resque:resque:resque_scheduler_master_lock"


def test_lock_is_resque_schedulers(r: redis.Redis) -> None:
    lock = MasterLock(r, Keys("resque"))
    assert lock.key == LOCK
    assert lock.value == f"{socket.gethostname()}:{os.getpid()}"
    assert lock.hold() is True
    assert r.get(LOCK) == lock.value.encode()
    assert 179 <= r.ttl(LOCK) <= 180
    prefixed = MasterLock(r, Keys("myapp"), prefix="blue")
    assert prefixed.key == "myapp:myapp:blue:resque_scheduler_master_lock"


def test_only_one_leads_and_renew_never_steals(r: redis.Redis) -> None:
    ruby = MasterLock(r, Keys(), value="localhost:12712")  # as a Ruby resque-scheduler holds it
    ours = MasterLock(r, Keys(), value="py:1", timeout=60)
    assert ruby.acquire() is True
    assert ours.hold() is False
    assert ours.renew() is False
    assert r.get(LOCK) == b"localhost:12712"
    assert ours.release() is False  # never deletes another's lock
    assert r.get(LOCK) == b"localhost:12712"
    r.delete(LOCK)  # Ruby shut down (it DELs the key)
    assert ours.hold() is True
    r.expire(LOCK, 5)
    assert ours.hold() is True  # renewed
    assert r.ttl(LOCK) > 5
    assert ruby.hold() is False
    assert ours.release() is True
    assert r.exists(LOCK) == 0


def test_a_pass_as_non_master_moves_nothing(resque: Resque, r: redis.Redis) -> None:
    DelayedQueue(resque).push_raw(100, b'{"class":"J","args":[],"queue":"q"}')
    r.set(LOCK, "ruby-host:1", ex=180)
    scheduler = Scheduler(resque, lock_value="py:2")
    result = scheduler.run_pass()
    assert result.master is False
    assert r.llen("resque:delayed:100") == 1
    r.delete(LOCK)
    result = scheduler.run_pass()
    assert (result.master, result.moved.moved) == (True, 1)


def test_a_master_that_loses_the_lock_mid_pass_stops_moving_and_firing(resque: Resque, r: redis.Redis) -> None:
    """resque-scheduler asks ``master?`` before each item; we ask before each batch."""
    delayed = DelayedQueue(resque)
    for ts in (100, 101, 102):
        delayed.push_raw(ts, b'{"class":"J","args":[],"queue":"q"}')
    r.hset("resque:persistent_schedules", "tick", '{"class":"J","every":"1s","queue":"q"}')
    scheduler = Scheduler(resque, batch=1, lock_value="py:4")
    hold = scheduler.lock.hold
    calls = []

    def stolen_after_the_first_batch() -> bool:
        calls.append(r.llen("resque:queue:q"))
        if len(calls) == 2:  # the pass's own check came first; now another scheduler takes over
            r.set(LOCK, "ruby-host:1", ex=180)
        return hold()

    scheduler.lock.hold = stolen_after_the_first_batch  # type: ignore[method-assign]
    result = scheduler.run_pass(now=1000.0)
    assert calls == [0, 1]
    assert (result.master, result.moved.moved, result.fired) == (False, 1, [])
    assert r.zcard("resque:delayed_queue_schedule") == 2
    assert r.get(LOCK) == b"ruby-host:1"


def test_master_applies_schedule_changes_and_fires(resque: Resque, r: redis.Redis) -> None:
    scheduler = Scheduler(resque, lock_value="py:3")
    scheduler.run_pass(now=1000.0)
    r.hset("resque:persistent_schedules", "tick", '{"class":"J","every":"5s","queue":"q"}')
    r.sadd("resque:schedules_changed", "tick")
    scheduler.run_pass(now=1001.0)
    assert r.scard("resque:schedules_changed") == 0
    assert scheduler.run_pass(now=1006.0).fired == ["tick"]
    assert r.lrange("resque:queue:q", 0, -1) == [b'{"class":"J","args":[]}']


def test_survives_redis_going_away_and_coming_back(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    resque = Resque(private_redis.url)
    scheduler = Scheduler(resque, interval=0.05, lock_value="py:4")
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    client = private_redis.client()
    try:
        assert wait_for(lambda: client.get(LOCK), what="the scheduler to lead") == b"py:4"
        private_redis.kill()
        wait_for(lambda: "retrying with backoff" in caplog.text, what="a failed pass")
        assert thread.is_alive()
        private_redis.start()
        client = private_redis.client()
        DelayedQueue(resque).push_raw(100, b'{"class":"J","args":["after"],"queue":"q"}')
        wait_for(lambda: client.llen("resque:queue:q"), what="the due job to move")
        assert client.lrange("resque:queue:q", 0, -1) == [b'{"class":"J","args":["after"]}']
        assert client.get(LOCK) == b"py:4"  # re-taken on the fresh server
    finally:
        scheduler.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert client.exists(LOCK) == 0


def test_bad_interval_and_batch(resque: Resque) -> None:
    with pytest.raises(ValueError, match="interval"):
        Scheduler(resque, interval=0)
    with pytest.raises(ValueError, match="batch"):
        Scheduler(resque, batch=0)


# -- CLI ----------------------------------------------------------------------------------


def cli(redis_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--redis", redis_url, *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_schedule_add_list_remove(redis_url: str, r: redis.Redis) -> None:
    code, out = cli(
        redis_url,
        "schedule",
        "add",
        "tick",
        "--every",
        "1m",
        "--class",
        "GoodJob",
        "--queue",
        "default",
        "--args",
        '["tick"]',
    )
    assert code == 0, out
    assert r.hget("resque:persistent_schedules", "tick") == (
        b'{"class":"GoodJob","every":"1m","queue":"default","args":["tick"]}'
    )
    code, out = cli(redis_url, "--json", "schedule", "list")
    rows = json.loads(out)
    assert [(row["name"], row["timing"], row["source"]) for row in rows] == [("tick", "every 1m", "redis")]
    code, out = cli(redis_url, "schedule", "list")
    assert "tick" in out and "GoodJob" in out
    code, out = cli(redis_url, "schedule", "add", "bad", "--cron", "61 * * * *", "--class", "J", "--queue", "q")
    assert code == 2
    assert "schedule 'bad': invalid cron" in out
    code, out = cli(
        redis_url, "schedule", "add", "both", "--cron", "* * * * *", "--every", "1m", "--class", "J", "--queue", "q"
    )
    assert code == 2
    assert cli(redis_url, "schedule", "remove", "tick")[0] == 0
    code, out = cli(redis_url, "schedule", "remove", "tick")
    assert code == 1
    assert "no persistent schedule named 'tick'" in out


def test_cli_delayed_commands(redis_url: str, r: redis.Redis, resque: Resque) -> None:
    dq = DelayedQueue(resque)
    ts = int(time.time()) + 3600
    dq.enqueue_at(ts, "default", "A", 1)
    dq.enqueue_at(ts, "default", "B", {"user": 2})
    dq.enqueue_at(ts + 60, "default", "B", {"user": 3})
    assert cli(redis_url, "delayed", "count")[1].strip() == "3"
    code, out = cli(redis_url, "--json", "delayed", "list")
    assert json.loads(out) == {
        "total": 2,
        "timestamps": [
            {"timestamp": ts, "at": humantime.show(ts), "at_epoch": ts, "jobs": 2},
            {"timestamp": ts + 60, "at": humantime.show(ts + 60), "at_epoch": ts + 60, "jobs": 1},
        ],
    }
    assert humantime.show(ts).endswith("Z")
    code, out = cli(redis_url, "delayed", "show", str(ts))
    assert "A" in out and '{"user":2}' in out
    code, out = cli(redis_url, "delayed", "remove-where", "B", "--args-contains", '{"user":3}')
    assert "removed 1" in out
    code, out = cli(redis_url, "delayed", "remove", "default", "A", "[1]")
    assert "removed 1" in out
    code, out = cli(redis_url, "delayed", "enqueue-now", str(ts))
    assert "moved 1" in out
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"B","args":[{"user":2}]}']
    dq.enqueue_at(ts, "default", "C")
    code, out = cli(redis_url, "delayed", "clear", "--yes")
    assert "cleared 1" in out
    assert r.zcard("resque:delayed_queue_schedule") == 0
    code, out = cli(redis_url, "delayed", "remove", "default", "A", "{not json")
    assert code == 1
    assert "ARGS_JSON is not valid JSON" in out


def test_cli_scheduler_once(redis_url: str, r: redis.Redis, resque: Resque) -> None:
    DelayedQueue(resque).push_raw(100, b'{"class":"J","args":[],"queue":"q"}')
    code, out = cli(redis_url, "scheduler", "--once")
    assert code == 0, out
    assert "moved 1 delayed job(s)" in out
    assert r.exists(LOCK) == 0  # released after the pass
    r.set(LOCK, "elsewhere:1")
    code, out = cli(redis_url, "--json", "scheduler", "--once")
    assert json.loads(out) == {"master": False, "moved": 0, "rejected": 0}


def test_cli_scheduler_bad_schedule_file(redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("nightly:\n  class: R\n  queue: q\n  cron: '0 25 * * *'\n")
    code, out = cli(redis_url, "scheduler", "--once", "--schedule", str(path))
    assert code == 2
    assert "schedule 'nightly': invalid cron '0 25 * * *': hour: 25 is outside 0-24" in out
