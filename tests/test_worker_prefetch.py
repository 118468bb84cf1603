"""``work --prefetch K`` (no fork): K jobs reserved per call into the in-flight list, every
job still recorded on its own (worker record, stats, failure record, status) in queue order,
and the unstarted rest given back on stop or recovered by our pruner after a kill -9."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from click.testing import CliRunner
from jobs.harness import job_log_lines, registered, run_burst, spawn_worker, stop
from waiting import wait_for

from resque_compat import Resque
from resque_compat.cli import main as cli_main
from resque_compat.failures import Failures
from resque_compat.protocol import Keys
from resque_compat.worker import WorkerConfig, WorkerConfigError
from resque_compat.worker.pruning import unregister


def enqueue_mix(resque: Resque) -> list[str]:
    """Successes, failures and tracked jobs over two queues (``high`` first)."""
    ids = []
    for n in range(40):
        queue = "high" if n % 7 == 0 else "default"
        if n % 5 == 0:
            resque.enqueue(queue, "BadJob", n)
        elif n % 3 == 0:
            ids.append(resque.enqueue(queue, "GoodJob", n, track=True))
        else:
            resque.enqueue(queue, "GoodJob", n)
    return [i for i in ids if i]


def outcome(r: redis.Redis, ids: list[str], log: Path) -> dict[str, Any]:
    """What a run leaves, without times and worker ids."""
    failed = []
    for raw in r.lrange("resque:failed", 0, -1):
        record = json.loads(raw)
        failed.append((record["payload"], record["exception"], record["error"], record["queue"]))
    statuses = [json.loads(r.get(f"resque:job:{i}:status") or b"{}")["status"] for i in ids]
    return {
        "processed": r.get("resque:stat:processed"),
        "failed_count": r.get("resque:stat:failed"),
        "failed": failed,
        "statuses": statuses,
        "order": job_log_lines(log),
        "left": sorted(k.decode() for k in r.keys("resque:compat:inflight:*") + r.keys("resque:worker:*")),
    }


@pytest.mark.parametrize("reliable", [False, True])
def test_prefetched_jobs_are_recorded_as_one_call_per_job_would(
    redis_url: str, r: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliable: bool
) -> None:
    runs = []
    for prefetch in (0, 64):
        r.flushall()
        log = tmp_path / f"log{prefetch}"
        monkeypatch.setenv("JOB_LOG", str(log))
        ids = enqueue_mix(Resque(redis_url))
        worker = run_burst(redis_url, ("high", "default"), prefetch=prefetch, reliable=reliable)
        assert (worker.jobs_done, worker.jobs_failed) == (40, 8)
        runs.append(outcome(r, ids, log))
    assert runs[0] == runs[1]
    assert runs[1]["processed"] == b"40" and len(runs[1]["failed"]) == 8 and set(runs[1]["statuses"]) == {4}


def test_prefetch_needs_no_fork_and_says_so_in_one_line(redis_url: str) -> None:
    result = CliRunner().invoke(cli_main, ["--redis", redis_url, "work", "-q", "q", "--prefetch", "8"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "--no-fork" in result.output
    with pytest.raises(WorkerConfigError):
        WorkerConfig(queues=("q",), fork=False, concurrency=2, prefetch=8)
    assert WorkerConfig.build(queues="q", fork=False, environ={"PREFETCH": "16"}).prefetch == 16
    assert WorkerConfig.build(queues="q", environ={}).prefetch == 0


def test_quit_mid_batch_gives_the_unstarted_jobs_back_in_order(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    resque.enqueue("default", "Sleep", 1, "held")
    for n in range(5):
        resque.enqueue("default", "GoodJob", n)
    proc = spawn_worker(redis_url, "-q", "default", "--no-fork", "--prefetch", "16", "--interval", "0.1", job_log=log)
    wid = registered(r, proc.pid)
    wait_for(lambda: "start held" in job_log_lines(log), what="the held job")
    assert r.llen("resque:queue:default") == 0 and r.llen(f"resque:compat:inflight:{wid}") == 5  # prefetched
    working = json.loads(r.get(f"resque:worker:{wid}") or b"{}")
    assert working["payload"] == {"class": "Sleep", "args": [1, "held"]}
    stop(proc)  # QUIT: the held job ends, the rest goes back
    assert proc.returncode == 0
    assert [json.loads(x)["args"] for x in r.lrange("resque:queue:default", 0, -1)] == [[n] for n in range(5)]
    assert r.get("resque:stat:processed") == b"2" and not r.keys("resque:compat:inflight:*")


def kill_mid_batch(redis_url: str, r: redis.Redis, log: Path, reliable: bool) -> str | None:
    """A ``--prefetch 16`` worker killed -9 while it runs the ``held`` job, then what our pruner
    does for its dead pid (``unregister``)."""
    extra = ("--reliable",) if reliable else ()
    proc = spawn_worker(redis_url, "-q", "default", "--no-fork", "--prefetch", "16", "--interval", "0.1", *extra,
                        job_log=log)  # fmt: skip
    wid = registered(r, proc.pid)
    wait_for(lambda: "start held" in job_log_lines(log), what="the held job")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    keys = Keys("resque")
    return unregister(r, keys, Failures(r, keys, "redis"), wid)


@pytest.mark.parametrize("reliable", [False, True])
def test_kill_9_mid_batch_loses_nothing(redis_url: str, r: redis.Redis, tmp_path: Path, reliable: bool) -> None:
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    resque.enqueue("default", "Sleep", 30, "held")
    for n in range(5):
        resque.enqueue("default", "GoodJob", n)
    what = kill_mid_batch(redis_url, r, tmp_path / "log", reliable)
    queue = [json.loads(x)["args"] for x in r.lrange("resque:queue:default", 0, -1)]
    if reliable:
        assert what == "requeued" and queue == [[30, "held"], *([n] for n in range(5))]
        assert r.llen("resque:failed") == 0
    else:
        assert what == "failed" and queue == [[n] for n in range(5)]
        [record] = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
        assert record["exception"] == "Resque::DirtyExit" and record["payload"]["args"] == [30, "held"]
    assert not r.keys("resque:compat:inflight:*") and not r.keys("resque:worker:*")


@pytest.mark.parametrize("reliable", [False, True])
def test_kill_9_with_identical_jobs_back_to_back_loses_nothing(
    redis_url: str, r: redis.Redis, tmp_path: Path, reliable: bool
) -> None:
    """The started job and the next one have the same bytes: only the record's mark tells them apart."""
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    for _ in range(3):
        resque.enqueue("default", "Sleep", 30, "held")
    what = kill_mid_batch(redis_url, r, tmp_path / "log", reliable)
    queue = [json.loads(x)["args"] for x in r.lrange("resque:queue:default", 0, -1)]
    failed = [json.loads(x)["payload"]["args"] for x in r.lrange("resque:failed", 0, -1)]
    if reliable:
        assert (what, queue, failed) == ("requeued", [[30, "held"]] * 3, [])
    else:
        assert (what, queue, failed) == ("failed", [[30, "held"]] * 2, [[30, "held"]])
    assert not r.keys("resque:compat:inflight:*") and not r.keys("resque:worker:*")
