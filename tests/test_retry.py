"""Retries through a real worker (fork, no fork, pool), in resque-retry's layout."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jobs.plugin_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import run_burst, spawn_worker, stop
from monitor import Monitor, parse, undeclared_keys

from resque_compat import JobRegistry, Resque, Retry
from resque_compat.jobs.retrying import PendingRetries, RetryError
from resque_compat.protocol import Keys

FLAKY_KEY = "resque:resque-retry:Mailer::Flaky:"


@pytest.fixture(autouse=True)
def job_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_JOBS_REDIS", redis_url)


def failed(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]


def test_policy_numbers() -> None:
    policy = Retry(limit=3, backoff=[0, 60, 600])
    assert [policy.delay_after(n) for n in range(5)] == [0, 60, 600, 600, 600]
    assert [policy.allows(n) for n in range(5)] == [True, True, True, False, False]
    assert Retry(limit=-1).allows(10**6) and not Retry(limit=0).allows(0)
    assert Retry(limit=2, delay=5).delay_after(1) == 5
    jittered = Retry(limit=1, delay=100, jitter=0.5)
    assert all(50 <= jittered.delay_after(0) <= 150 for _ in range(50))
    exp = Retry.exponential(limit=4, base=10, jitter=0)
    assert [exp.delay_after(n) for n in range(4)] == [10, 20, 40, 80]
    picky = Retry(retry_on=(OSError,), fatal=(FileNotFoundError,))
    assert picky.retries(ConnectionError()) and not picky.retries(FileNotFoundError()) and not picky.retries(KeyError())
    for bad in ({"delay": -1}, {"backoff": [1, "x"]}, {"jitter": 1.5}, {"retry_on": [OSError]}, {"limit": 1.5}):
        with pytest.raises((TypeError, ValueError)):
            Retry(**bad)  # type: ignore[arg-type]


def test_attempt_key_is_resque_retrys() -> None:
    assert Keys.retry_name("FlakyJob", ["a", 1]) == "resque-retry:FlakyJob:bfde529bfbb7fe09e90afd365ecafba6eba647b2"
    exhaust = Keys.retry_name("ExhaustJob", ["b", {"k": "v"}, [1, 2]])
    assert exhaust.endswith(":19f0a2166952f57c35567264be6c2de41aa383d0")
    assert Keys.retry_name("NoArgsJob", []) == "resque-retry:NoArgsJob"
    assert Keys.retry_name("FlakyJob", ["with space", "x y"]).endswith(":72d9852b635f05b9dfcb7686bf0ab53ea3a80486")


@pytest.mark.parametrize("fork", [False, True])
def test_retried_at_once_until_success_only_counter_left_clean(redis_url: str, r: redis.Redis, fork: bool) -> None:
    resque = Resque(redis_url)
    item = b'{"class":"Mailer::Flaky","args":["f",2]}'
    resque.push_raw("default", item)
    run_burst(redis_url, fork=fork)
    assert r.get("test:runs:f") == b"3"
    assert not failed(r)  # only a final failure is recorded, and there was none
    assert r.get("resque:stat:failed") == b"2" and r.get("resque:stat:processed") == b"3"  # Ruby counts each attempt
    assert not r.keys("resque:resque-retry:*") and not r.hlen("resque:compat:retries")
    assert not r.exists("resque:failure-resque-retry:" + Keys.retry_name("Mailer::Flaky", ["f", 2]))


def test_a_success_clears_its_counter_in_the_cycle_call(redis_url: str, r: redis.Redis) -> None:
    """The attempt counter's DEL rides on the cycle call that records the success (KEYS[9]):
    no round trip of its own, and declared for Redis Cluster."""
    registry = JobRegistry()
    registry.register("Counted", lambda *_: None, retry=Retry(limit=3))
    Resque(redis_url).enqueue("default", "Counted", "c")
    counter = "resque:" + Keys.retry_name("Counted", ["c"])
    with Monitor(redis_url) as monitor:
        run_burst(redis_url, registry=registry)
    commands = [parse(line) for line in monitor.lines]
    assert [by_script for by_script, words in commands if words == [b"DEL", counter.encode()]] == [True]
    assert not r.exists(counter) and r.get("resque:stat:processed") == b"1"
    assert undeclared_keys(redis_url, monitor.lines)[1] == []


@pytest.mark.parametrize("fork", [False, True])
def test_gives_up_after_the_limit_with_one_failure(redis_url: str, r: redis.Redis, fork: bool) -> None:
    Resque(redis_url).enqueue("default", "Mailer::Always", "a")
    run_burst(redis_url, fork=fork)
    assert r.get("test:runs:a") == b"3"  # limit 2: three runs
    records = failed(r)
    assert len(records) == 1 and records[0]["error"] == "always 2"
    assert records[0]["payload"] == {"class": "Mailer::Always", "args": ["a"]}
    assert not r.keys("resque:resque-retry:*") and not r.exists("resque:compat:retries")


def test_fatal_and_unlisted_exceptions_are_not_retried(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    resque.enqueue("default", "Mailer::Picky", "fatal")
    resque.enqueue("default", "Mailer::Picky", "other")
    run_burst(redis_url)
    assert [f["error"] for f in failed(r)] == ["no such user", "not retried"]
    assert r.get("resque:stat:processed") == b"2"


def test_every_attempt_recorded_when_the_policy_says_so(redis_url: str, r: redis.Redis) -> None:
    Resque(redis_url).enqueue("default", "Mailer::EveryAttempt", "e")
    run_burst(redis_url)
    assert [f["error"] for f in failed(r)] == ["attempt 1", "attempt 2"]


def test_delayed_retry_uses_resque_schedulers_layout(redis_url: str, r: redis.Redis) -> None:
    Resque(redis_url).enqueue("default", "Mailer::Delayed", "d", 5)
    before = int(time.time())
    run_burst(redis_url)  # attempt 0 fails, retried at once; attempt 1 fails, delayed by 1 s
    assert r.get("test:runs:d") == b"2"
    item = b'{"class":"Mailer::Delayed","args":["d",5],"queue":"default"}'
    (ts,) = [int(x) for x in r.zrange("resque:delayed_queue_schedule", 0, -1)]
    assert before + 1 <= ts <= int(time.time()) + 1
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == [item]
    assert r.smembers(b"resque:timestamps:" + item) == {f"delayed:{ts}".encode()}
    name = Keys.retry_name("Mailer::Delayed", ["d", 5])
    assert r.get("resque:" + name) == b"1"
    suppressed = json.loads(r.get("resque:failure-" + name) or b"")
    assert list(suppressed)[:3] == ["failed_at", "payload", "exception"] and "UTC" not in suppressed["failed_at"]
    assert 0 < r.ttl("resque:failure-" + name) <= 2
    assert not failed(r)
    (pending,) = PendingRetries(r, Keys()).entries()
    shown = pending.as_dict()
    assert shown["attempt"] == 3 and shown["runs"] == 3 and shown["where"] == "delayed" and shown["at"] == ts
    assert shown["exception"] == "jobs.plugin_jobs.SmtpDownError"


def test_retry_now_and_give_up(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    resque.enqueue("default", "Mailer::Delayed", "n", 5)
    resque.enqueue("default", "Mailer::Delayed", "g", 5)
    run_burst(redis_url)
    pending = PendingRetries(r, Keys())
    names = {e.entry.retry_name: e.name for e in pending.entries() if e.entry}
    now_name = Keys.retry_name("Mailer::Delayed", ["n", 5])
    give_name = Keys.retry_name("Mailer::Delayed", ["g", 5])
    assert set(names) == {now_name, give_name}
    pending.retry_now(now_name)
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"Mailer::Delayed","args":["n",5]}']
    with pytest.raises(RetryError):
        pending.retry_now(now_name)
    pending.give_up(give_name)
    assert not r.exists("resque:delayed_queue_schedule") and not r.keys("resque:delayed:*")
    assert not r.exists("resque:" + give_name) and r.exists("resque:" + now_name)
    assert [f["error"] for f in failed(r)] == ["later"]
    assert not r.exists("resque:compat:retries")


def test_tracked_job_waits_while_retry_is_pending_and_keeps_progress(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    job_id = resque.enqueue("default", "Mailer::Tracked", {"name": "t"}, track=True)
    assert job_id
    run_burst(redis_url, fork=True)
    status = json.loads(r.get(f"resque:job:{job_id}:status") or b"")
    assert status["status"] == 4 and status["result"] == "sent"
    assert status["num"] == 4 and status["pct_complete"] == 100 and status["message"] == "sent"


def test_tracked_job_status_is_waiting_between_attempts(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    job_id = resque.enqueue("default", "Mailer::TrackedLater", {"name": "w"}, track=True)
    run_burst(redis_url)
    status = json.loads(r.get(f"resque:job:{job_id}:status") or b"")
    assert status["status"] == 1 and status["message"] == "connecting"  # the retry waits 60 s
    assert r.ttl(f"resque:job:{job_id}:status") == -1
    assert r.zcard("resque:delayed_queue_schedule") == 1 and not failed(r)


@pytest.mark.parametrize("fork", [False, True])
def test_tracked_job_keeps_its_status_through_a_delayed_retry(redis_url: str, r: redis.Redis, fork: bool) -> None:
    """A scheduler rebuilds a delayed item as {class,args}, dropping the payload's id: the pending
    retry carries it, so the retried run still moves the same status to 4."""
    resque = Resque(redis_url)
    job_id = resque.enqueue("default", "Mailer::TrackedLater", {"name": "k"}, track=True)
    run_burst(redis_url, fork=fork)  # fails; the retry waits 60 s
    (ts,) = r.zrange("resque:delayed_queue_schedule", 0, -1)
    (item,) = r.lrange(b"resque:delayed:" + ts, 0, -1)
    assert b'"id"' not in item  # resque-scheduler's {class,args,queue}: no room for the id
    data = json.loads(item)
    r.delete(b"resque:delayed:" + ts, b"resque:timestamps:" + item, "resque:delayed_queue_schedule")
    r.rpush(
        "resque:queue:default", json.dumps({"class": data["class"], "args": data["args"]})
    )  # as a scheduler moves it
    run_burst(redis_url, fork=fork)
    status = json.loads(r.get(f"resque:job:{job_id}:status") or b"")
    assert status["status"] == 4 and status["result"] == "sent" and status["message"] == "sent"
    assert 86000 < r.ttl(f"resque:job:{job_id}:status") <= 86400 and not failed(r)


def test_a_killed_child_is_retried(redis_url: str, r: redis.Redis) -> None:
    Resque(redis_url).enqueue("default", "Mailer::Crash", "c")
    run_burst(redis_url, fork=True)
    assert r.get("test:runs:c") == b"2" and not failed(r)


def test_pool_workers_retry_too(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    Resque(redis_url).enqueue_many("default", [("Mailer::Flaky", [f"p{i}", 1]) for i in range(6)])
    proc = spawn_worker(
        redis_url, "-i", "jobs.plugin_jobs", "-q", "default", "-c", "2", "--burst",
        env={"PLUGIN_JOBS_REDIS": redis_url},
    )  # fmt: skip
    out = stop(proc, sig=0)
    assert proc.returncode == 0, out
    assert [r.get(f"test:runs:p{i}") for i in range(6)] == [b"2"] * 6
    assert "retrying: (Job{default} | Mailer::Flaky) attempt 1 of 4 failed" in out
    assert "attempt 2 of 4, next run at" in out
    assert not failed(r)


def test_activejob_job_retried_with_executions_carried(redis_url: str, r: redis.Redis) -> None:
    """A wrapped (ActiveJob) job: its counter is named by job_id, each retry carries executions."""
    registry = JobRegistry()

    @registry.job("AjFlakyJob", retry=Retry(limit=2))
    def aj_flaky(name: str) -> None:
        raise RuntimeError(f"aj {_run_number(name)}")

    client = Resque(redis_url)
    job_id = client.enqueue_active_job("AjFlakyJob", "x", queue="aj")
    run_burst(redis_url, ("aj",), registry=registry)
    assert r.get("test:runs:x") == b"3"
    (final,) = failed(r)
    assert final["error"] == "aj 3"
    wrapper = final["payload"]["args"][0]  # type: ignore[index]
    assert wrapper["job_id"] == job_id and wrapper["executions"] == 2  # the third run's payload
    assert not r.exists("resque:" + Keys.retry_name("AjFlakyJob", [job_id]))


def _run_number(name: str) -> int:
    return int(redis.Redis.from_url(os.environ["PLUGIN_JOBS_REDIS"]).incr(f"test:runs:{name}"))


def test_settle_is_guarded_so_a_repeat_writes_nothing(r: redis.Redis) -> None:
    """A settle call repeated (its reply lost) or made after a pruner took the job changes nothing."""
    from resque_compat.jobs.retrying import WorkerRetries  # noqa: PLC0415

    keys = Keys()
    item = b'{"class":"Mailer::Always","args":["g"]}'
    r.set(keys.worker("vm:1:default"), b'{"queue":"default","run_at":"2026-11-29T10:00:00Z","payload":' + item + b"}")
    retries = WorkerRetries(r, keys, "vm:1:default", "redis", reliable=False)
    policy = Retry(limit=2, delay=30)
    attempt = retries.begin("Mailer::Always", ["g"], item, policy)
    assert attempt is None
    failure = b'{"failed_at":"2026/11/29 10:00:00 UTC","payload":' + item + b',"exception":"E","error":"x",'
    failure += b'"backtrace":[],"worker":"vm:1:default","queue":"default"}'
    kwargs: dict[str, object] = dict(
        queue="default", item=item, identity=("Mailer::Always", ["g"]), next_attempt=None, policy=policy,
        retryable=True, failure=failure, status_key=None, status=None, attempt=0,
    )  # fmt: skip
    first = retries.settle(**kwargs)  # type: ignore[arg-type]
    again = retries.settle(**kwargs)  # type: ignore[arg-type]
    assert first.applied and first.retried and not again.applied and again.processed == first.processed == 1
    assert r.zcard("resque:delayed_queue_schedule") == 1 and r.get("resque:stat:failed") == b"1"
    assert not r.exists(keys.worker("vm:1:default"))
