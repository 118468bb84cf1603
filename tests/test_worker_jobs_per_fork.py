"""``--jobs-per-fork`` / ``--minutes-per-fork``: one forked child runs a batch of jobs, and
every job still looks, in Redis, as in fork-per-job mode; signals and control commands act
on the job in hand and end the batch where the child can no longer be trusted."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from click.testing import CliRunner
from jobs.harness import children_of, cmdline, job_log_lines, registered, spawn_worker, stop
from waiting import wait_for

from resque_compat import Resque
from resque_compat.cli import main as cli_main
from resque_compat.worker import WorkerConfig, WorkerConfigError


def pids_of(log: Path, text: str) -> list[int]:
    """The pids of the processes that logged ``text`` (``<pid> <text>`` lines)."""
    if not log.exists():
        return []
    return [int(line.split(" ", 1)[0]) for line in log.read_text().splitlines() if line.split(" ", 1)[1] == text]


def failures(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]


def test_a_batch_runs_in_one_child_and_every_job_is_recorded_as_its_own(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    env = {"JOB_LOG_FORK_HOOKS": "1"}
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--jobs-per-fork", "3", job_log=log, env=env)
    wid = registered(r, proc.pid)
    resque = Resque(redis_url)
    tracked = [resque.enqueue("default", "GoodJob", n, track=True) for n in range(7)]
    wait_for(lambda: len([x for x in job_log_lines(log) if x.startswith("GoodJob")]) == 7, what="7 jobs")
    wait_for(lambda: r.get("resque:stat:processed") == b"7", what="7 recorded")
    stop(proc)
    assert proc.returncode == 0
    runners = [pids_of(log, f"GoodJob [{n}]")[0] for n in range(7)]
    assert proc.pid not in runners
    assert [runners.count(pid) for pid in dict.fromkeys(runners)] == [3, 3, 1]  # three children, in order
    lines = job_log_lines(log)
    assert lines.count("before_fork GoodJob") == 3 and lines.count("after_fork GoodJob") == 3  # once per child
    assert r.get(f"resque:stat:processed:{wid}") is None  # unregistered at exit, as Ruby
    for job_id in tracked:
        assert json.loads(r.get(f"resque:job:{job_id}:status") or b"{}")["status"] == 4


def test_mid_batch_the_job_in_hand_is_in_worker_record_and_usr1_kills_only_it(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--jobs-per-fork", "100", job_log=log)
    wid = registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    resque.enqueue("default", "Sleep", 30, "held")
    resque.enqueue("default", "GoodJob", "after")
    wait_for(lambda: pids_of(log, "start held"), what="the second job of the batch")
    assert pids_of(log, "start held") == pids_of(log, "GoodJob ['first']")  # the same child
    working = json.loads(r.get(f"resque:worker:{wid}") or b"{}")
    assert working["payload"] == {"class": "Sleep", "args": [30, "held"]} and working["queue"] == "default"
    child = pids_of(log, "start held")[0]
    assert cmdline(child).endswith(f"[Sleep] (worker {proc.pid})")
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: pids_of(log, "GoodJob ['after']"), what="the next job")
    assert pids_of(log, "GoodJob ['after']") != [child]  # a killed child's batch is over
    stop(proc)
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"
    assert record["error"] == f"Child process received unhandled signal pid {child} SIGKILL (signal 9)"
    assert r.get("resque:stat:processed") == b"3" and r.get("resque:stat:failed") == b"1"


@pytest.mark.parametrize("term_child", [False, True], ids=["kill", "term-child"])
def test_term_mid_batch_records_the_job_and_exits(
    redis_url: str, r: redis.Redis, tmp_path: Path, term_child: bool
) -> None:
    log = tmp_path / "log"
    env = {"TERM_CHILD": ""} if term_child else {}
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--jobs-per-fork", "100", job_log=log, env=env)
    registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    resque.enqueue("default", "Sleep", 30, "t")
    wait_for(lambda: pids_of(log, "start t"), what="the second job of the batch")
    child = pids_of(log, "start t")[0]
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or "Z" in _state(child), what="the child to end")
    [record] = failures(r)
    assert record["payload"] == {"class": "Sleep", "args": [30, "t"]}
    assert record["exception"] == ("Resque::TermException" if term_child else "Resque::DirtyExit")
    assert r.get("resque:stat:processed") == b"2"
    assert not r.smembers("resque:workers") and not r.keys("resque:worker:*")


def test_quit_mid_batch_finishes_the_job_and_everything_exits(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--jobs-per-fork", "100", job_log=log)
    registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    resque.enqueue("default", "Sleep", 0.5, "q")
    wait_for(lambda: pids_of(log, "start q"), what="the second job of the batch")
    child = pids_of(log, "start q")[0]
    stop(proc)
    assert proc.returncode == 0
    assert job_log_lines(log)[-1] == "end q" and pids_of(log, "end q") == [child]
    assert not os.path.exists(f"/proc/{child}") or "Z" in _state(child)
    assert r.get("resque:stat:processed") == b"2" and not r.exists("resque:failed")


def test_pause_ends_the_batch_and_kill_job_kills_the_job_in_hand(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--jobs-per-fork", "100", job_log=log)
    wid = registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    wait_for(lambda: pids_of(log, "GoodJob ['first']"), what="the first job")
    first_child = pids_of(log, "GoodJob ['first']")[0]
    assert children_of(proc.pid) == [first_child]  # the batch child waits for its next job
    resque.control(wid, "pause")
    wait_for(lambda: cmdline(proc.pid).endswith(": Paused"), what="paused")
    wait_for(lambda: not children_of(proc.pid), what="the batch to end while paused")
    resque.control(wid, "resume")
    resque.enqueue("default", "Sleep", 30, "k")
    resque.enqueue("default", "GoodJob", "after")
    wait_for(lambda: pids_of(log, "start k"), what="a job in a new batch")
    assert pids_of(log, "start k") != [first_child]
    resque.control(wid, "kill-job")
    wait_for(lambda: pids_of(log, "GoodJob ['after']"), what="the job after the killed one")
    resque.control(wid, "stop")
    proc.wait(20)
    assert proc.returncode == 0
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit" and record["payload"] == {"class": "Sleep", "args": [30, "k"]}


def test_minutes_per_fork_ends_an_idle_batch(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--minutes-per-fork", "0.01", job_log=log)
    registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "a")
    wait_for(lambda: pids_of(log, "GoodJob ['a']"), what="the first job")
    first = pids_of(log, "GoodJob ['a']")[0]
    wait_for(lambda: first not in children_of(proc.pid), what="the batch's 0.6 s to end it")
    resque.enqueue("default", "GoodJob", "b")
    wait_for(lambda: pids_of(log, "GoodJob ['b']"), what="the next job")
    assert pids_of(log, "GoodJob ['b']") != [first]
    stop(proc)
    assert proc.returncode == 0 and r.get("resque:stat:processed") == b"2"


def test_a_batch_child_outliving_its_killed_worker_records_the_job(
    redis_url: str, r: redis.Redis, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--jobs-per-fork", "100", job_log=log)
    old = registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "first")
    job_id = resque.enqueue("default", "Sleep", 1, "orphan", track=True)
    wait_for(lambda: pids_of(log, "start orphan"), what="the second job of the batch")
    child = pids_of(log, "start orphan")[0]
    proc.kill()
    proc.wait()
    wait_for(lambda: not r.exists(f"resque:worker:{old}"), what="the orphaned child to record the job")
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or "Z" in _state(child), what="the child to exit")
    assert r.llen("resque:failed") == 0 and r.get("resque:stat:processed") == b"2"
    assert json.loads(r.get(f"resque:job:{job_id}:status") or b"{}")["status"] == 4


def test_settings_from_flags_and_environment() -> None:
    config = WorkerConfig.build(queues="q", environ={"JOBS_PER_FORK": "50", "MINUTES_PER_FORK": "2"})
    assert (config.jobs_per_fork, config.minutes_per_fork) == (50, 2.0)
    config = WorkerConfig.build(queues="q", jobs_per_fork=7, environ={"JOBS_PER_FORK": "50"})
    assert (config.jobs_per_fork, config.minutes_per_fork) == (7, None)
    assert WorkerConfig.build(queues="q", environ={}).jobs_per_fork is None
    for bad in ({"JOBS_PER_FORK": "0"}, {"JOBS_PER_FORK": "x"}, {"MINUTES_PER_FORK": "-1"}):
        with pytest.raises(WorkerConfigError):
            WorkerConfig.build(queues="q", environ=bad)
    # the variables are moot without forking (a shared environment); the flags are refused
    assert WorkerConfig.build(queues="q", fork=False, environ={"JOBS_PER_FORK": "5"}).jobs_per_fork is None
    with pytest.raises(WorkerConfigError, match="need forking"):
        WorkerConfig.build(queues="q", fork=False, jobs_per_fork=5, environ={})


@pytest.mark.parametrize(
    "args", [["--jobs-per-fork", "0"], ["--minutes-per-fork", "nan"], ["--no-fork", "--jobs-per-fork", "2"]]
)
def test_bad_batch_flags_are_a_one_line_error(redis_url: str, args: list[str]) -> None:
    result = CliRunner().invoke(cli_main, ["--redis", redis_url, "work", "-q", "default", *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"
