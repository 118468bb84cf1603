"""``work --concurrency N``: N slots in one real process, each a Resque worker of its own.

The jobs (``jobs.concurrency_jobs``) push their tag when they start and wait at a gate the test
opens, so "N jobs in flight at once" is seen in Redis, never inferred from timings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import jobs.concurrency_jobs as gates
import pytest
import redis
from click.testing import CliRunner
from jobs.harness import cmdline, spawn_worker, stop
from waiting import wait_for

from resque_compat import Resque
from resque_compat.cli import main as cli_main
from resque_compat.protocol import WorkerId, slot_id
from resque_compat.protocol.records import WorkerState
from resque_compat.worker.config import WorkerConfig, WorkerConfigError

HOST = os.uname().nodename


def spawn(redis_url: str, concurrency: int, *args: str) -> subprocess.Popen[bytes]:
    return spawn_worker(
        redis_url, "-q", "default", "--interval", "0.05", "--concurrency", str(concurrency),
        "-i", "jobs.concurrency_jobs", *args, env={"GATE_REDIS": redis_url},
    )  # fmt: skip


def slots_of(pid: int, n: int, queues: str = "default") -> list[str]:
    return [slot_id(f"{HOST}:{pid}:{queues}", k) for k in range(1, n + 1)]


def members(r: redis.Redis) -> set[str]:
    return {m.decode() for m in r.smembers("resque:workers")}


def all_registered(r: redis.Redis, proc: subprocess.Popen[bytes], n: int) -> list[str]:
    ids = slots_of(proc.pid, n)
    wait_for(lambda: set(ids) <= members(r), what=f"{n} slots to register")
    return ids


def tags(r: redis.Redis, key: str) -> list[str]:
    return [t.decode() for t in r.lrange(key, 0, -1)]


def held(r: redis.Redis, wid: str) -> str | None:
    """The tag of the job slot ``wid`` is working on."""
    raw = r.get(f"resque:worker:{wid}")
    return None if raw is None else str(json.loads(raw)["payload"]["args"][0])


def failures(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]


def state(r: redis.Redis, wid: str) -> WorkerState | None:
    raw = r.get(f"resque:compat:state:{wid}")
    return None if raw is None else WorkerState.decode(raw)


# -- ids ------------------------------------------------------------------------------------
def test_slot_ids_keep_the_pid_where_every_peer_reads_it() -> None:
    wid = slot_id("web-1:4242:high,low", 7)
    assert wid == "web-1:4242:high,low:slot-7"
    parsed = WorkerId.parse(wid)
    assert (parsed.host, parsed.pid, parsed.queue_list, parsed.slot) == ("web-1", "4242", ["high", "low"], "7")
    assert str(parsed) == wid
    host, pid, queues = wid.split(":")[:3]  # Ruby's prune_dead_workers: id.split(':')
    assert (host, pid, queues) == ("web-1", "4242", "high,low")
    # a plain id whose queue holds a colon is not a slot
    assert WorkerId.parse("h:1:a:b") == WorkerId("h", "1", "a:b")
    assert WorkerId.parse("h:1:a:slot-x").slot == ""
    assert WorkerId.parse("h:1:a:slot-٣").slot == ""  # only ASCII digits


def test_configuration() -> None:
    assert WorkerConfig.build(queues="q", environ={"CONCURRENCY": "20"}).concurrency == 20
    config = WorkerConfig.build(queues="q", concurrency=5, environ={})
    assert config.concurrency == 5 and not config.fork  # slots run their jobs in the process
    with pytest.raises(WorkerConfigError, match="cannot be combined with --fork"):
        WorkerConfig.build(queues="q", concurrency=5, fork=True, environ={})
    with pytest.raises(WorkerConfigError, match="concurrency must be >= 1"):
        WorkerConfig.build(queues="q", environ={"CONCURRENCY": "0"})
    result = CliRunner().invoke(cli_main, ["work", "-q", "q", "--concurrency", "3", "--fork"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "--fork" in result.output


# -- slots at work --------------------------------------------------------------------------
@pytest.mark.parametrize("job", ["Gate", "AsyncGate"])
def test_n_jobs_in_flight_at_once_each_slot_a_worker(redis_url: str, r: redis.Redis, job: str) -> None:
    n = 4
    proc = spawn(redis_url, n)
    ids = all_registered(r, proc, n)
    for wid in ids:
        assert r.exists(f"resque:worker:{wid}:started")
        assert r.hget("resque:workers:heartbeat", wid)
    resque = Resque(redis_url)
    for k in range(n):
        resque.enqueue("default", job, f"j{k}")
    wait_for(lambda: len(tags(r, gates.STARTED)) == n, what=f"{n} jobs started")
    # every job has started and none has finished: all n are in flight at once, one per slot
    assert tags(r, gates.FINISHED) == []
    assert sorted(held(r, wid) or "" for wid in ids) == [f"j{k}" for k in range(n)]
    # our own readers see n workers of this pid, on the queue "default", each working
    working = {w.id: w for w in resque.working()}
    assert set(working) == set(ids)
    assert {(w.host, w.pid, tuple(w.queues)) for w in working.values()} == {(HOST, str(proc.pid), ("default",))}
    wait_for(lambda: re.search(rf"resque-[0-9][^:]*: Processing {n} of {n} slots", cmdline(proc.pid)))
    r.set(gates.OPEN, 1)
    wait_for(lambda: len(tags(r, gates.FINISHED)) == n, what="jobs finished")
    wait_for(lambda: not any(r.exists(f"resque:worker:{wid}") for wid in ids), what="slots idle")
    assert sum(int(r.get(f"resque:stat:processed:{wid}") or 0) for wid in ids) == n
    stop(proc)
    assert proc.returncode == 0
    assert r.get("resque:stat:processed") == b"4" and not r.exists("resque:failed")
    assert not r.smembers("resque:workers") and not r.hgetall("resque:workers:heartbeat")
    assert not r.keys("resque:worker:*") and not r.keys("resque:stat:processed:*")


@pytest.mark.parametrize("job", ["Gate", "AsyncGate"])
def test_kill_job_interrupts_one_slot_only(redis_url: str, r: redis.Redis, job: str) -> None:
    proc = spawn(redis_url, 2)
    ids = all_registered(r, proc, 2)
    resque = Resque(redis_url)
    resque.enqueue("default", job, "a")
    resque.enqueue("default", job, "b")
    wait_for(lambda: len(tags(r, gates.STARTED)) == 2, what="both jobs running")
    victim = next(wid for wid in ids if held(r, wid) == "a")
    other = next(wid for wid in ids if wid != victim)
    resque.control(victim, "kill-job")
    [record] = wait_for(lambda: failures(r), what="the killed job's failure")
    assert record["exception"] == "Resque::TermException" and record["error"] == "kill-job"
    assert record["worker"] == victim and record["payload"] == {"class": job, "args": ["a"]}
    assert held(r, other) == "b"  # the other slot's job goes on
    r.set(gates.OPEN, 1)
    wait_for(lambda: tags(r, gates.FINISHED) == ["b"], what="b to finish")
    stop(proc)
    assert proc.returncode == 0 and len(failures(r)) == 1


@pytest.mark.parametrize("job", ["Gate", "AsyncGate"])
def test_timeout_fails_the_job_and_the_slot_goes_on(redis_url: str, r: redis.Redis, job: str) -> None:
    proc = spawn(redis_url, 2, "--timeout", "0.5")
    all_registered(r, proc, 2)
    resque = Resque(redis_url)
    resque.enqueue("default", job, "late")
    [record] = wait_for(lambda: failures(r), what="the timeout")
    assert record["exception"] == "Resque::JobTimeout"
    assert record["error"] == "Job exceeded the 0.5 s timeout"
    r.set(gates.OPEN, 1)
    resque.enqueue("default", job, "quick")
    wait_for(lambda: "quick" in tags(r, gates.FINISHED), what="the next job")
    stop(proc)
    assert proc.returncode == 0


def test_pause_resume_and_stop_per_slot_and_per_process(redis_url: str, r: redis.Redis) -> None:
    proc = spawn(redis_url, 2)
    first, second = all_registered(r, proc, 2)
    resque = Resque(redis_url)
    resque.control(first, "pause")
    wait_for(lambda: (s := state(r, first)) is not None and s.paused, what="slot 1 paused")
    assert (s := state(r, second)) is not None and not s.paused
    resque.enqueue("default", "Gate", "one")
    resque.enqueue("default", "Gate", "two")
    wait_for(lambda: held(r, second) == "one", what="slot 2 to take a job")
    assert held(r, first) is None and r.llen("resque:queue:default") == 1
    resque.control(first, "resume")
    wait_for(lambda: held(r, first) == "two", what="slot 1 to take a job once resumed")
    r.set(gates.OPEN, 1)
    wait_for(lambda: len(tags(r, gates.FINISHED)) == 2, what="both jobs")
    # the process: USR2 pauses every slot, CONT resumes them
    proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: all((s := state(r, w)) is not None and s.paused for w in (first, second)), what="all paused")
    proc.send_signal(signal.SIGCONT)
    wait_for(lambda: not any((s := state(r, w)) is not None and s.paused for w in (first, second)), what="resumed")
    # one slot stopped: it unregisters, the other works on
    resque.control(first, "stop")
    wait_for(lambda: first not in members(r), what="slot 1 to unregister")
    assert second in members(r) and proc.poll() is None
    resque.enqueue("default", "Gate", "three")
    wait_for(lambda: "three" in tags(r, gates.FINISHED), what="slot 2 still working")
    stop(proc)
    assert proc.returncode == 0 and not r.smembers("resque:workers")


@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_term_interrupts_every_slot_and_exits(redis_url: str, r: redis.Redis, reliable: bool) -> None:
    proc = spawn(redis_url, 3, *(["--reliable"] if reliable else []))
    ids = all_registered(r, proc, 3)
    resque = Resque(redis_url)
    for job, tag in (("Gate", "t1"), ("Gate", "t2"), ("AsyncGate", "a1")):
        resque.enqueue("default", job, tag)
    wait_for(lambda: len(tags(r, gates.STARTED)) == 3, what="3 jobs in flight")
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert not r.smembers("resque:workers") and not r.keys("resque:worker:*")
    if reliable:  # back at the head of the queue, nothing failed
        queued = sorted(json.loads(x)["args"][0] for x in r.lrange("resque:queue:default", 0, -1))
        assert queued == ["a1", "t1", "t2"] and not failures(r)
        return
    records = failures(r)
    assert sorted(str(f["worker"]) for f in records) == sorted(ids)
    assert {(f["exception"], f["error"]) for f in records} == {("Resque::TermException", "SIGTERM")}
    assert r.llen("resque:queue:default") == 0


@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_our_pruner_recovers_the_slots_of_a_dead_process(redis_url: str, r: redis.Redis, reliable: bool) -> None:
    mode = ["--reliable"] if reliable else []
    proc = spawn(redis_url, 3, *mode)
    ids = all_registered(r, proc, 3)
    resque = Resque(redis_url)
    for k in range(3):
        resque.enqueue("default", "Gate", f"k{k}")
    wait_for(lambda: len(tags(r, gates.STARTED)) == 3, what="3 jobs in flight")
    proc.kill()
    proc.wait()
    assert set(ids) <= members(r)  # left behind, as any worker killed -9
    successor = spawn(redis_url, 1, *mode)
    wait_for(lambda: not set(ids) & members(r), what="the successor's pruner to take the slots")
    if reliable:
        r.set(gates.OPEN, 1)
        wait_for(lambda: sorted(set(tags(r, gates.FINISHED))) == ["k0", "k1", "k2"], what="the jobs to run again")
        assert not failures(r)
    else:
        records = failures(r)
        assert sorted(str(f["worker"]) for f in records) == sorted(ids)
        assert {f["exception"] for f in records} == {"Resque::DirtyExit"}
        assert sorted(f["payload"]["args"][0] for f in records) == ["k0", "k1", "k2"]  # type: ignore[index]
    stop(successor)
    assert successor.returncode == 0


def test_many_slots_outgrow_the_default_connection_pool(redis_url: str, r: redis.Redis) -> None:
    """120 slots hold 120 connections for their cycle calls: more than redis-py's default pool
    of 100, which the worker grows to fit."""
    n = 120
    proc = spawn(redis_url, n)
    all_registered(r, proc, n)
    Resque(redis_url).enqueue_many("default", [("AsyncGate", [f"m{k}"]) for k in range(n)])
    wait_for(lambda: len(tags(r, gates.STARTED)) == n, what=f"{n} jobs in flight at once")
    r.set(gates.OPEN, 1)
    wait_for(lambda: len(tags(r, gates.FINISHED)) == n, what="every job to finish")
    stop(proc)
    assert proc.returncode == 0 and not r.exists("resque:failed")


def test_usr1_interrupts_every_job_and_quit_waits_for_every_slot(redis_url: str, r: redis.Redis) -> None:
    proc = spawn(redis_url, 2)
    ids = all_registered(r, proc, 2)
    resque = Resque(redis_url)
    resque.enqueue("default", "Gate", "a")
    resque.enqueue("default", "AsyncGate", "b")
    wait_for(lambda: len(tags(r, gates.STARTED)) == 2, what="two jobs in flight")
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: len(failures(r)) == 2, what="both jobs interrupted")
    assert {(f["exception"], f["error"]) for f in failures(r)} == {("Resque::TermException", "SIGUSR1")}
    assert set(ids) <= members(r) and proc.poll() is None  # the process works on
    resque.enqueue("default", "Gate", "c")
    resque.enqueue("default", "AsyncGate", "d")
    wait_for(lambda: len(tags(r, gates.STARTED)) == 4, what="two more jobs in flight")
    proc.send_signal(signal.SIGQUIT)
    wait_for(lambda: all((s := state(r, w)) is not None and s.stopping for w in ids), what="QUIT seen by every slot")
    assert proc.poll() is None and sorted(held(r, w) or "" for w in ids) == ["c", "d"]  # waiting for its jobs
    r.set(gates.OPEN, 1)
    stop(proc, 0)
    assert proc.returncode == 0
    assert sorted(tags(r, gates.FINISHED)) == ["c", "d"] and len(failures(r)) == 2
    assert not r.smembers("resque:workers")


def test_a_thread_in_one_c_call_fails_with_its_timeout_when_the_call_returns(redis_url: str, r: redis.Redis) -> None:
    """A thread cannot be killed: the timeout is raised in it at its next Python instruction,
    here right after ``time.sleep`` returns, so the line after the sleep never runs."""
    proc = spawn(redis_url, 2, "--timeout", "0.2")
    all_registered(r, proc, 2)
    Resque(redis_url).enqueue("default", "Nap", "nap", 1.0)
    [record] = wait_for(lambda: failures(r), what="the timeout")
    assert record["exception"] == "Resque::JobTimeout" and record["error"] == "Job exceeded the 0.2 s timeout"
    assert tags(r, gates.FINISHED) == []  # it was raised before the job's next line
    stop(proc)
    assert proc.returncode == 0


def test_async_jobs_run_on_the_loop_unless_the_class_asks_for_a_thread(redis_url: str, r: redis.Redis) -> None:
    proc = spawn(redis_url, 2)
    all_registered(r, proc, 2)
    resque = Resque(redis_url)
    resque.enqueue("default", "WhereAsync", "loop")
    resque.enqueue("default", "WhereOwnLoop", "own")
    ran = dict(t.split(" ", 1) for t in wait_for(lambda: len(tags(r, gates.THREADS)) == 2 and tags(r, gates.THREADS)))
    assert ran["loop"] == "resque-asyncio" and ran["own"].startswith("resque-slot-")
    stop(proc)
    assert proc.returncode == 0 and not r.exists("resque:failed")


def test_term_child_gives_the_jobs_the_pre_shutdown_time(redis_url: str, r: redis.Redis) -> None:
    """``TERM_CHILD`` + ``RESQUE_PRE_SHUTDOWN_TIMEOUT``: after TERM the slots take no new job, and
    a job that ends within that time completes (it is not interrupted)."""
    proc = spawn_worker(
        redis_url, "-q", "default", "--interval", "0.05", "--concurrency", "2", "-i", "jobs.concurrency_jobs",
        env={"GATE_REDIS": redis_url, "TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "60"},
    )  # fmt: skip
    ids = all_registered(r, proc, 2)
    resque = Resque(redis_url)
    resque.enqueue("default", "Gate", "g")
    resque.enqueue("default", "AsyncGate", "a")
    wait_for(lambda: len(tags(r, gates.STARTED)) == 2, what="both jobs in flight")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: all((s := state(r, w)) is not None and s.stopping for w in ids), what="TERM seen by every slot")
    r.set(gates.OPEN, 1)
    stop(proc, 0)
    assert proc.returncode == 0
    assert sorted(tags(r, gates.FINISHED)) == ["a", "g"] and not failures(r)


def test_a_second_term_leaves_at_once_when_a_thread_cannot_be_interrupted(redis_url: str, r: redis.Redis) -> None:
    """A job in one long C call ignores the first TERM until the call returns; the second TERM
    exits at once, the slots left registered for a pruner (as any worker's second TERM)."""
    proc = spawn(redis_url, 2)
    ids = all_registered(r, proc, 2)
    Resque(redis_url).enqueue("default", "Nap", "long", 120.0)
    busy = wait_for(lambda: next((w for w in ids if held(r, w) == "long"), None), what="the job in hand")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: (s := state(r, busy)) is not None and s.stopping, what="TERM seen by the busy slot")
    assert proc.poll() is None  # still in time.sleep(120)
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert held(r, busy) == "long" and busy in members(r)  # left to a pruner
