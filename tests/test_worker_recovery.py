"""Statuses that always end, shutdown as Ruby 3.0 (TERM_CHILD, GRACEFUL_TERM, reliable
requeue), Ruby's polling back-off settings, and the log lines an operator acts on.

Real ``resque-compat work`` processes on a real Redis; the fault suite (``tests/fault``)
covers the same paths under load and measures recovery times."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import job_log_lines, registered, spawn_worker, stop, worker_env
from waiting import wait_for

from resque_compat import Resque
from resque_compat.worker.config import WorkerConfig, WorkerConfigError


def started(log: Path, tag: str) -> bool:
    return f"start {tag}" in job_log_lines(log)


def status_of(r: redis.Redis, job_id: str) -> dict[str, object]:
    raw = r.get(f"resque:job:{job_id}:status")
    assert raw is not None
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


# -- statuses -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_a_killed_jobs_status_ends_failed_with_its_ttl(
    redis_url: str, r: redis.Redis, tmp_path: Path, fork: bool
) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--fork" if fork else "--no-fork", job_log=log)
    registered(r, proc.pid)
    job_id = Resque(redis_url).enqueue("default", "Sleep", 30, "k", track=True)
    assert job_id
    wait_for(lambda: started(log, "k"), what="job start")
    assert status_of(r, job_id)["status"] == 2
    proc.send_signal(signal.SIGUSR1)  # kill-job, as the dashboard's button
    wait_for(lambda: status_of(r, job_id)["status"] == 3, what="status 3")
    assert 86000 < r.ttl(f"resque:job:{job_id}:status") <= 86400
    stop(proc)


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_reliable_term_requeues_the_job_at_the_head_with_status_waiting(
    redis_url: str, r: redis.Redis, tmp_path: Path, fork: bool
) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(
        redis_url, "-q", "default", "--interval", "0.1", "--reliable", "--fork" if fork else "--no-fork", job_log=log
    )
    registered(r, proc.pid)
    resque = Resque(redis_url)
    job_id = resque.enqueue("default", "Sleep", 30, "r", track=True)
    assert job_id
    wait_for(lambda: started(log, "r"), what="job start")
    resque.enqueue("default", "GoodJob", "behind")
    out = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, out
    queued = [json.loads(x) for x in r.lrange("resque:queue:default", 0, -1)]
    assert [q["args"] for q in queued] == [[30, "r"], ["behind"]]  # back at the head
    assert not r.exists("resque:failed") and not r.keys("resque:compat:inflight:*")
    assert status_of(r, job_id)["status"] == 1 and r.ttl(f"resque:job:{job_id}:status") == -1
    assert "requeued (Job{default} | Sleep) interrupted by shutdown" in out


# -- TERM as Ruby 3.0 -----------------------------------------------------------------------------
def test_term_child_raises_term_exception_in_the_job(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(
        redis_url,
        "-q",
        "default",
        "--interval",
        "0.1",
        job_log=log,
        env={"TERM_CHILD": "1", "RESQUE_TERM_TIMEOUT": "10"},
    )
    registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "Sleep", 30, "tc")
    wait_for(lambda: started(log, "tc"), what="job start")
    out = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, out
    [raw] = r.lrange("resque:failed", 0, -1)
    record = json.loads(raw)
    assert record["exception"] == "Resque::TermException" and record["error"] == "SIGTERM"
    assert record["backtrace"]  # raised inside the job: its frames are there


def test_graceful_term_finishes_the_job(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log, env={"GRACEFUL_TERM": ""})
    registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "Sleep", 1, "g")
    wait_for(lambda: started(log, "g"), what="job start")
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert job_log_lines(log)[-1] == "end g" and not r.exists("resque:failed")


# -- settings ---------------------------------------------------------------------------------------
def test_ruby_polling_and_term_settings() -> None:
    config = WorkerConfig.build(
        queues="q",
        environ={
            "INTERVAL": "5", "MIN_INTERVAL": "0.5", "MAX_INTERVAL": "10", "BACKOFF_INTERVAL": "2",
            "TERM_CHILD": "", "RESQUE_TERM_TIMEOUT": "7", "GRACEFUL_TERM": "",
        },
    )  # fmt: skip
    assert config.poll_intervals() == (0.5, 10.0, 2.0)
    assert config.term_child and config.term_timeout == 7.0 and config.graceful_term  # set at all, as Ruby
    plain = WorkerConfig.build(queues="q", environ={"INTERVAL": "3"})
    assert plain.poll_intervals() == (3.0, 3.0, 0.1)  # Ruby's defaults: a constant INTERVAL
    assert not plain.term_child and plain.term_timeout == 4.0 and not plain.graceful_term
    # Ruby clamps min and backoff to max
    assert WorkerConfig.build(queues="q", environ={"MIN_INTERVAL": "9", "MAX_INTERVAL": "2"}).poll_intervals() == (
        2.0, 2.0, 0.1,
    )  # fmt: skip
    with pytest.raises(WorkerConfigError, match="MIN_INTERVAL"):
        WorkerConfig.build(queues="q", environ={"MIN_INTERVAL": "-1"})


# -- logs ---------------------------------------------------------------------------------------------
def _burst(redis_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from resque_compat.cli import main; main()", "--redis", redis_url, "work", *args]
    return subprocess.run(
        cmd, env={**worker_env(), **(env or {})}, capture_output=True, text=True, timeout=60, check=False
    )


def test_default_logs_say_what_happened(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    job_id = resque.enqueue("default", "BadJob", "x", track=True)
    resque.enqueue("default", "GoodJob", "y")
    proc = _burst(redis_url, "-q", "default", "--burst", "-i", "jobs.worker_jobs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any("started: queues default; fork per job" in line and "job class(es) registered" in line for line in lines)
    [failed] = [line for line in lines if " WARNING " in line and "failed:" in line]
    assert "(Job{default} | BadJob): jobs.worker_jobs.ArgumentError: boom: ['x']" in failed
    assert f"[id={job_id} " in failed
    assert "worker_jobs.py" not in proc.stderr  # the backtrace only at -v
    assert "done:" not in proc.stderr  # one line per job only at -v
    assert lines[-1].endswith("processed 2, failed 1 in " + lines[-1].rsplit(" in ", 1)[1])
    assert "exited: processed 2, failed 1 in " in lines[-1]


def test_a_worker_without_job_classes_names_import(redis_url: str) -> None:
    proc = _burst(redis_url, "-q", "default", "--burst")
    assert proc.returncode == 0
    warning = [line for line in proc.stderr.splitlines() if " WARNING " in line]
    assert len(warning) == 1 and "--import" in warning[0] and "APP_INCLUDE" in warning[0]


def test_failure_json_lines_carry_the_exception_and_backtrace(redis_url: str) -> None:
    Resque(redis_url).enqueue("default", "BadJob", "j")
    proc = _burst(redis_url, "-q", "default", "--burst", "-i", "jobs.worker_jobs", "--log-format", "json")
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    [failed] = [rec for rec in records if rec.get("outcome") == "failed"]
    assert failed["level"] == "WARNING" and failed["logger"] == "resque_compat.worker.job"
    assert failed["exception"] == "jobs.worker_jobs.ArgumentError" and failed["error"] == "boom: ['j']"
    assert any("worker_jobs.py" in frame for frame in failed["backtrace"])


def test_verbose_adds_job_lines_and_backtraces(redis_url: str) -> None:
    Resque(redis_url).enqueue("default", "BadJob", "v")
    Resque(redis_url).enqueue("default", "GoodJob", "w")
    proc = _burst(redis_url, "-q", "default", "--burst", "-i", "jobs.worker_jobs", "-v")
    assert "done: (Job{default} | GoodJob)" in proc.stderr
    failed_at = proc.stderr.index("failed: (Job{default} | BadJob)")
    assert "worker_jobs.py" in proc.stderr[failed_at:].splitlines()[1]


def test_a_long_running_worker_logs_a_summary(redis_url: str, r: redis.Redis) -> None:
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", env={"RESQUE_SUMMARY_INTERVAL": "0.5"})
    registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "GoodJob", "s")
    assert proc.stdout is not None
    line = wait_for(lambda: _summary_line(proc), what="a summary line")
    assert "processed" in line and "jobs/s" in line
    stop(proc)


def _summary_line(proc: subprocess.Popen[bytes]) -> str | None:
    assert proc.stdout is not None
    text = proc.stdout.readline().decode(errors="replace")
    return text if "summary: processed 1 " in text else None
