"""resque-retry and resque-status interop: the real Ruby plugins and our worker on one Redis.

Scenarios (each needs INTEROP_RUBY_RESQUE, INTEROP_RUBY_RESQUE_SCHEDULER, INTEROP_RUBY_RESQUE_RETRY
and INTEROP_RUBY_RESQUE_STATUS; skipped with the missing one named otherwise):

* a resque-status job created by Ruby (``MyJob.create``) runs on our worker, and Ruby's
  ``Status::Hash.get`` reads the result;
* Ruby's ``Status::Hash.get`` reads the progress of a job running on our worker, and
  ``Status::Hash.kill`` stops it (killed, no failure);
* a resque-status job created by our client runs on Ruby's worker, and we read its status;
* a job failing under our worker is retried through the real resque-scheduler daemon (the
  delayed layout) and run again by us; Ruby's resque-retry computes the same attempt key;
* an attempt counter shared by a Ruby resque-retry worker and ours: Ruby runs the first attempt,
  ours the next three and gives up; only the final failure reaches ``failed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from harness import Peer, Peers, ruby_plugins_peer
from waiting import wait_for

from resque_compat import Resque
from resque_compat.protocol import Keys


@pytest.fixture(scope="session")
def plugins_peer() -> Peer:
    return ruby_plugins_peer()


@pytest.fixture
def rb(plugins_peer: Peer, peers: Peers) -> Callable[..., Any]:
    plugins_peer.require()

    def run(*args: str, **kwargs: Any) -> Any:
        return plugins_peer.run(peers.server, *args, **kwargs)

    return run


def results(r: redis.Redis, cls: str) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in r.lrange("resque:interop:results", 0, -1)]
    return [row for row in rows if row["class"] == cls]


def stored(r: redis.Redis, uuid: str) -> dict[str, Any]:
    return dict(json.loads(r.get(f"resque:status:{uuid}") or b"{}"))


def test_ruby_created_status_job_runs_on_our_worker(rb: Callable[..., Any], peers: Peers, r: redis.Redis) -> None:
    uuid = rb("status_create", "Interop::Report", json.dumps({"steps": 3, "who": "ruby"}))["uuid"]
    peers.work("python", "statused")
    seen = rb("status_get", uuid)
    assert seen["status"] == "completed" and seen["pct_complete"] == 100 and not seen["killable"]
    assert (seen["num"], seen["total"]) == (3, 3) and seen["options"] == {"steps": 3, "who": "ruby"}
    assert seen["name"] == 'Interop::Report({"steps"=>3, "who"=>"ruby"})'
    assert seen["message"].startswith("Completed at ")
    assert [row["by"] for row in results(r, "Interop::Report")] == ["python"]
    assert rb("status_ids") == [uuid]


def test_ruby_reads_our_progress_and_kills_our_job(
    rb: Callable[..., Any], peers: Peers, resque: Resque, r: redis.Redis
) -> None:
    uuid = resque.statuses.create("Interop::Report", {"steps": 600, "pause": 0.02})
    worker = peers.start_worker("python", "statused", fork=True)
    try:
        wait_for(lambda: int(stored(r, uuid).get("num", 0)) >= 5, what="progress from our worker")
        seen = rb("status_get", uuid)
        assert seen["status"] == "working" and seen["killable"] and seen["total"] == 600
        assert seen["pct_complete"] == int(seen["num"] / 600 * 100) and seen["message"] == f"step {seen['num']}"
        rb("status_kill", uuid)
        wait_for(lambda: stored(r, uuid).get("status") == "killed", what="the kill")
    finally:
        worker.stop()
    final = rb("status_get", uuid)
    assert final["status"] == "killed" and final["message"].startswith("Killed at ") and not final["killable"]
    assert 5 <= final["num"] < 600
    assert not r.exists("resque:_kill") and not r.exists("resque:failed")
    assert not results(r, "Interop::Report")


def test_our_status_job_runs_on_ruby_worker(rb: Callable[..., Any], resque: Resque, r: redis.Redis) -> None:
    uuid = resque.statuses.create("Interop::Report", {"steps": 2})
    rb("work", "statused")
    record = resque.statuses.get(uuid)
    assert record is not None and record.state == "completed" and record.pct_complete == 100
    assert (record.num, record.total) == (2, 2) and record.name == 'Interop::Report({"steps"=>2})'
    assert [row["by"] for row in results(r, "Interop::Report")] == ["ruby"]


def test_our_failed_job_retried_through_ruby_scheduler(
    rb: Callable[..., Any], plugins_peer: Peer, peers: Peers, resque: Resque, r: redis.Redis
) -> None:
    resque.enqueue("retryq", "Interop::DelayedRetry", "d1")
    name = Keys.retry_name("Interop::DelayedRetry", ["d1"])
    assert rb("retry_key", "Interop::DelayedRetry", '["d1"]')["key"] == name  # the same key as Ruby's
    peers.work("python", "retryq")  # the first run fails: the retry is delayed by 1 s
    assert r.zcard("resque:delayed_queue_schedule") == 1 and r.get("resque:" + name) == b"0"
    assert rb("retry_key", "Interop::DelayedRetry", '["d1"]')["attempt"] == "0"
    scheduler = plugins_peer.start(peers.server, "scheduler")
    try:
        wait_for(lambda: r.llen("resque:queue:retryq") == 1, what="Ruby's scheduler to move the retry")
    finally:
        scheduler.stop()
    peers.work("python", "retryq")
    assert [row["by"] for row in results(r, "Interop::DelayedRetry")] == ["python", "python"]
    assert not r.exists("resque:" + name) and not r.exists("resque:failed")
    assert not r.exists("resque:compat:retries") and not r.exists("resque:delayed_queue_schedule")


def test_attempt_counter_shared_with_ruby_resque_retry(
    rb: Callable[..., Any], peers: Peers, resque: Resque, r: redis.Redis
) -> None:
    resque.enqueue("retryq", "Interop::RetryFlaky", "s", 1)
    rb("work_one", "retryq")  # Ruby's attempt 0 fails; resque-retry requeues it at once
    name = Keys.retry_name("Interop::RetryFlaky", ["s", 1])
    assert r.get("resque:" + name) == b"0" and r.llen("resque:queue:retryq") == 1
    peers.work("python", "retryq")  # ours: attempts 1, 2, 3, then gives up (limit 3)
    assert [row["by"] for row in results(r, "Interop::RetryFlaky")] == ["ruby", "python", "python", "python"]
    assert not r.exists("resque:" + name)
    failures = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert len(failures) == 1 and failures[0]["error"] == "python flaky"
