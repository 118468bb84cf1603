"""Recovery without waiting: how soon a dead worker's job is out of its hands, pops that a
kill cannot lose, TERM as Kubernetes and systemd send it, and Redis refusing writes mid-run.

Recovery seconds are measured from the kill to the job being in ``failed`` (default mode)
or back on its queue / running again (reliable mode, and every job a blocking pop held), and
printed in the results table (p50 / max). Only loose upper bounds are asserted: the targets
(10 s for kill -9 + restart; PRUNE_INTERVAL + HEARTBEAT_INTERVAL for a worker on another
host) are read from the table, not asserted under a loaded CI machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import pytest
import redis
from fault_results import ScenarioResult
from proxy import TcpProxy
from waiting import wait_for
from worker_farm import QUEUE, Farm

from resque_compat.protocol import Failure, JobPayload, ProtocolError, timefmt
from resque_compat.scheduler.delayed import DelayedQueue
from resque_compat.testing.redis_server import RedisServer

ROUNDS = int(os.environ.get("FAULT_RECOVERY_ROUNDS", "4"))
#: a bound no healthy run comes near (the target is 10 s), safe on a loaded 2-core machine
LOOSE = 60.0


def _mode(fork: bool, reliable: bool) -> list[str]:
    return ["--fork" if fork else "--no-fork", *(["--reliable"] if reliable else [])]


def _tag_of(raw: bytes) -> str | None:
    try:
        return str(JobPayload.decode(raw).args[0])
    except (ProtocolError, IndexError):
        return None


def _failed_tags(farm: Farm) -> set[str]:
    out = set()
    for raw in farm.raw.lrange("resque:failed", 0, -1):
        try:
            tag = _tag_of(bytes(Failure.decode(raw).payload))
        except ProtocolError:
            continue
        if tag is not None:
            out.add(tag)
    return out


def _out_of_dead_hands(farm: Farm, tag: str, dead: set[int]) -> bool:
    """The job left the dead worker: failed, queued, in a live worker's hands, or done."""
    if tag in _failed_tags(farm) or tag in farm.account([tag]).completed:
        return True
    if any(_tag_of(raw) == tag for raw in farm.raw.lrange(f"resque:queue:{QUEUE}", 0, -1)):
        return True
    running = farm.running().get(tag)
    if running is not None and not (set(running) & dead):
        return True
    for key in farm.raw.scan_iter(match="resque:compat:inflight:*"):
        pid = key.decode().split(":")[-2] if key.count(b":") >= 4 else ""
        if pid.isdigit() and int(pid) in dead:
            continue
        if any(_tag_of(raw) == tag for raw in farm.raw.lrange(key, 0, -1)):
            return True
    return False


def _kill_tree(pid: int, farm: Farm | None = None) -> list[int]:
    """SIGKILL a worker and its job child together (systemd's KillMode=control-group, the OOM
    killer of a cgroup): nobody is left to record the job. Returns the pids killed."""
    children = set(_children(pid))
    if farm is not None:
        children |= {child for child, parent in farm.running().values() if parent == pid}
    os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    return [pid, *children]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


# -- kill -9 and an immediate restart ------------------------------------------------------
@pytest.mark.scenario("kill -9 worker + immediate restart: recovery")
@pytest.mark.parametrize(
    ("fork", "reliable"),
    [(True, False), (True, True), (False, False), (False, True)],
    ids=["fork", "fork-reliable", "nofork", "nofork-reliable"],
)
def test_kill_and_restart_recovers_the_job_at_once(
    farm: Farm, fault_result: ScenarioResult, fork: bool, reliable: bool
) -> None:
    tags = [f"k{i}" for i in range(ROUNDS)]
    farm.hold()
    farm.enqueue(tags)
    # HEARTBEAT_INTERVAL 60 (Ruby's default): the prune lock lasts a minute, so only a
    # released lock or a broken dead holder's lock lets the restarted worker prune at once
    env = {"HEARTBEAT_INTERVAL": "60"}
    worker = farm.start(*_mode(fork, reliable), env=env)
    victims: set[str] = set()
    for _ in range(ROUNDS):
        tag = wait_for(lambda w=worker: farm.job_held_by(w.pid), timeout=60, what="the worker to hold a job")  # type: ignore[misc]
        dead = set(_kill_tree(worker.pid, farm))
        killed_at = time.monotonic()
        farm.kill(worker.pid)
        fault_result.faults += 1
        victims.add(tag)
        worker = farm.start(*_mode(fork, reliable), env=env)  # systemd's Restart=always
        wait_for(lambda t=tag, d=dead: _out_of_dead_hands(farm, t, d), timeout=LOOSE, what=f"{tag} to be recovered")  # type: ignore[misc]
        fault_result.recovery.append(round(time.monotonic() - killed_at, 2))
    farm.release()
    farm.wait_idle(tags, timeout=120)
    assert farm.stop(worker) == 0
    fault_result.note(f"HEARTBEAT_INTERVAL=60; {len(victims)} distinct job(s) held by a killed worker")
    farm.assert_accounted(tags, fault_result, victims, reliable=reliable)
    acc = farm.account(tags)
    if reliable:
        assert not acc.failed, {t: f.exception for t, f in acc.failed.items()}
    else:
        assert set(acc.failed) == victims and all(f.exception == "Resque::DirtyExit" for f in acc.failed.values())


@pytest.mark.scenario("worker on another host dies, never comes back: recovery")
def test_a_worker_dead_on_another_host_is_pruned_by_live_workers(farm: Farm, fault_result: ScenarioResult) -> None:
    """HEARTBEAT_INTERVAL=1, PRUNE_INTERVAL=3: the target is 4 s after its last heartbeat."""
    env = {"HEARTBEAT_INTERVAL": "1", "PRUNE_INTERVAL": "3"}
    worker = farm.start(env=env)
    wait_for(lambda: worker.pid in {int(w.split(":")[1]) for w in farm.registered()}, what="the worker to register")
    tags = [f"o{i}" for i in range(ROUNDS)]
    for i, tag in enumerate(tags):
        dead = f"otherhost:{4000 + i}:{QUEUE}"
        item = JobPayload.new("FaultJob", [tag, 0.0]).encode()
        farm.payloads[tag] = item
        secs, _ = farm.raw.time()
        pipe = farm.raw.pipeline(transaction=False)
        pipe.sadd("resque:workers", dead)
        pipe.set(f"resque:worker:{dead}", b'{"queue":"faultq","run_at":"2026-01-01T00:00:00Z","payload":' + item + b"}")
        pipe.hset("resque:workers:heartbeat", dead, timefmt.heartbeat(float(secs)))  # its last heartbeat: now
        pipe.execute()
        last_beat = time.monotonic()
        fault_result.faults += 1
        wait_for(lambda t=tag: t in _failed_tags(farm), timeout=LOOSE, what=f"{dead} to be pruned")  # type: ignore[misc]
        fault_result.recovery.append(round(time.monotonic() - last_beat, 2))
    assert farm.stop(worker) == 0
    fault_result.note("HEARTBEAT_INTERVAL=1, PRUNE_INTERVAL=3: target 4 s after the last heartbeat")
    farm.assert_accounted(tags, fault_result, set(tags), reliable=False)
    assert all(f.exception == "Resque::PruneDeadWorkerDirtyExit" for f in farm.account(tags).failed.values())


# -- blocking mode: a kill while the pop's reply is in flight -------------------------------
@pytest.mark.scenario("blocking pop: kill -9 while the proxy holds the reply")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_blocking_pop_killed_before_the_reply_loses_nothing(
    private_redis: RedisServer, fault_result: ScenarioResult, fork: bool, reliable: bool
) -> None:
    with TcpProxy(private_redis.port) as proxy:
        farm = Farm(private_redis.url, proxy.url)
        try:
            _blocking_kills(farm, proxy, fault_result, _mode(fork, reliable), reliable=reliable)
        finally:
            farm.close()


def _blocking_kills(farm: Farm, proxy: TcpProxy, result: ScenarioResult, mode: list[str], *, reliable: bool) -> None:
    tags = [f"b{i}" for i in range(ROUNDS)]
    hits = 0
    args = ["--blocking", *mode]
    worker = farm.start(*args, interval="5")
    for tag in tags:
        wait_for(lambda w=worker: f"{w.pid}" in " ".join(farm.registered()), what="the worker to register")  # type: ignore[misc]
        time.sleep(0.3)  # into its BLMOVE (1 s at a time)
        proxy.set_drop(True)  # from now on nothing reaches the worker: the pop's reply is held
        farm.enqueue([tag])
        moved = _wait_moved(farm, worker.pid)
        hits += moved
        dead = set(_kill_tree(worker.pid))
        killed_at = time.monotonic()
        farm.kill(worker.pid)
        result.faults += 1
        proxy.heal()
        worker = farm.start(*args, interval="5")
        wait_for(lambda t=tag, d=dead: _out_of_dead_hands(farm, t, d), timeout=LOOSE, what=f"{tag} to be recovered")  # type: ignore[misc]
        result.recovery.append(round(time.monotonic() - killed_at, 2))
    farm.wait_idle(tags, timeout=120)
    assert farm.stop(worker) == 0
    result.note(f"{hits} of {len(tags)} kills hit the window: item moved into the in-flight list, reply held")
    farm.assert_accounted(
        tags, result, set(tags), reliable=True
    )  # a popped, unrecorded job goes back: counted requeued
    acc = farm.account(tags)
    assert not acc.failed
    if not reliable:  # a job popped and never recorded had not started: it runs once
        assert max(acc.runs.values()) == 1, acc.runs
    assert hits, "no kill landed between the pop and its record"


def _wait_moved(farm: Farm, pid: int, timeout: float = 3.0) -> bool:
    """True once the worker's BLMOVE took the item (queue empty, its in-flight list holds it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in farm.raw.scan_iter(match="resque:compat:inflight:*"):
            if f":{pid}:" in key.decode() and farm.raw.llen(key):
                return True
        time.sleep(0.02)
    return False


@pytest.mark.scenario("blocking pop: reply lost, worker lives")
def test_blocking_pop_whose_reply_is_lost_is_adopted(private_redis: RedisServer, fault_result: ScenarioResult) -> None:
    with TcpProxy(private_redis.port) as proxy:
        farm = Farm(private_redis.url, proxy.url)
        try:
            tags = [f"l{i}" for i in range(ROUNDS)]
            worker = farm.start("--blocking", "--no-fork", interval="5")
            hits = 0
            for tag in tags:
                wait_for(lambda: str(worker.pid) in " ".join(farm.registered()), what="the worker to register")
                time.sleep(0.3)
                proxy.set_drop(True)
                farm.enqueue([tag])
                hits += _wait_moved(farm, worker.pid)
                proxy.heal()
                fault_result.faults += proxy.cut()
                wait_for(lambda t=tag: t in farm.account([t]).completed, timeout=LOOSE, what=f"{tag} to run")  # type: ignore[misc]
            assert farm.stop(worker) == 0
            fault_result.note(f"{hits} of {len(tags)} cuts lost a BLMOVE reply that had moved the item")
            farm.assert_accounted(tags, fault_result, set(), reliable=False)
            assert farm.account(tags).completed == set(tags)
        finally:
            farm.close()


# -- TERM under load ----------------------------------------------------------------------
@pytest.mark.scenario("TERM under load, replacement started at once")
@pytest.mark.parametrize("term_child", [False, True], ids=["kill-child", "TERM_CHILD"])
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_term_under_load(farm: Farm, fault_result: ScenarioResult, reliable: bool, term_child: bool) -> None:
    """Default mode: the interrupted job is in ``failed`` (DirtyExit, or TermException with
    TERM_CHILD); reliable mode: back at the head of its queue and run again, never failed."""
    tags = [f"t{i}" for i in range(60)]
    farm.enqueue(tags, seconds=0.3)
    env = {"TERM_CHILD": "1", "RESQUE_TERM_TIMEOUT": "5"} if term_child else {}
    mode = _mode(True, reliable)
    workers = [farm.start(*mode, env=env) for _ in range(2)]
    victims: set[str] = set()
    exits: list[float] = []
    for round_ in range(6):
        victim = workers[round_ % 2]
        tag = wait_for(lambda v=victim: farm.job_held_by(v.pid), timeout=60, what="a worker mid-job")  # type: ignore[misc]
        victim.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert victim.wait(LOOSE) == 0, farm.log_tail()
        exits.append(time.monotonic() - sent)
        fault_result.faults += 1
        victims.add(tag)
        workers[round_ % 2] = farm.start(*mode, env=env)
    farm.wait_idle(tags, timeout=180)
    for proc in workers:
        assert farm.stop(proc) == 0
    fault_result.note(f"worker exit after TERM: max {max(exits):.2f} s")
    farm.assert_accounted(tags, fault_result, victims if reliable else set(), reliable=reliable)
    acc = farm.account(tags)
    if reliable:
        assert not acc.failed, {t: f.exception for t, f in acc.failed.items()}
        assert victims <= acc.completed
    else:
        expected = "Resque::TermException" if term_child else "Resque::DirtyExit"
        assert {f.exception for f in acc.failed.values()} <= {expected}, {t: f.error for t, f in acc.failed.items()}
        assert set(acc.failed) <= victims


@pytest.mark.scenario("second TERM while a job will not stop; Redis unreachable")
def test_second_term_and_unreachable_redis_exit_at_once(
    private_redis: RedisServer, fault_result: ScenarioResult
) -> None:
    with TcpProxy(private_redis.port) as proxy:
        farm = Farm(private_redis.url, proxy.url)
        try:
            # a job that ignores its TermException; RESQUE_TERM_TIMEOUT far away: the second TERM cuts it short
            worker = farm.start(env={"TERM_CHILD": "1", "RESQUE_TERM_TIMEOUT": "120", "HEARTBEAT_INTERVAL": "60"})
            farm.enqueue(["s0"], class_name="StubbornJob")
            wait_for(lambda: farm.job_held_by(worker.pid), what="the stubborn job to start")
            worker.send_signal(signal.SIGTERM)
            wait_for(lambda: farm.jobs.hexists("fault:termed", "s0"), what="the job to see its TermException")
            assert worker.poll() is None  # still waiting for the job
            worker.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            assert worker.wait(LOOSE) == 0
            second = time.monotonic() - sent
            fault_result.faults += 2
            # the job was left to the pruner: the next worker (same host, same queues) fails it at once
            successor = farm.start(env={"HEARTBEAT_INTERVAL": "60"})
            wait_for(lambda: "s0" in _failed_tags(farm), timeout=LOOSE, what="the pruner to fail the job")
            assert farm.stop(successor) == 0
            # idle, Redis unreachable: TERM ends it within seconds, not after reconnect backoffs
            idle = farm.start(env={"HEARTBEAT_INTERVAL": "60"})
            wait_for(lambda: str(idle.pid) in " ".join(farm.registered()), what="the worker to register")
            proxy.set_refuse(True)
            proxy.cut()
            time.sleep(1.5)
            idle.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            idle.wait(LOOSE)
            unreachable = time.monotonic() - sent
            fault_result.faults += 1
            fault_result.note(
                f"exit after the second TERM {second:.2f} s; idle worker, Redis unreachable: {unreachable:.2f} s"
            )
            fault_result.jobs = 1
            fault_result.failed = len(_failed_tags(farm))
            assert _failed_tags(farm) == {"s0"}
            assert (
                farm.raw.lrange("resque:failed", 0, 0)
                and Failure.decode(farm.raw.lrange("resque:failed", 0, 0)[0]).exception == "Resque::DirtyExit"
            )
            assert unreachable < 10, f"{unreachable:.1f} s\n{farm.log_tail()}"
        finally:
            proxy.heal()
            farm.close()


# -- Redis refusing writes mid-run ----------------------------------------------------------
@pytest.mark.scenario("Redis out of memory mid-run (workers + scheduler)")
def test_out_of_memory_mid_run(fault_result: ScenarioResult) -> None:
    """Workers and the scheduler wait out an OOM Redis and carry on; a completed job is never
    recorded as failed. The jobs record their runs on a second server."""
    with RedisServer(None) as server, RedisServer(None) as jobs_server:
        farm = Farm(server.url, jobs_url=jobs_server.url)
        scheduler: subprocess.Popen[bytes] | None = None
        try:
            tags = [f"m{i}" for i in range(300)]
            farm.enqueue(tags, seconds=0.01)
            modes: list[list[str]] = [["--fork"], ["--no-fork"], ["--no-fork", "--reliable"], ["--blocking"]]
            workers = [farm.start(*m) for m in modes]
            scheduler = _start_scheduler(farm)
            wait_for(lambda: len(farm.account(tags).completed) > 40, timeout=60, what="progress")
            raw = farm.raw
            raw.config_set("maxmemory", "0")
            raw.set("other-app:blob", b"x" * 3_000_000)
            raw.config_set("maxmemory", "1mb")
            fault_result.faults += 1
            due = int(time.time()) + 2
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                DelayedQueue(farm.resque).enqueue_at(due, QUEUE, "FaultJob", "sched", 0.0)
            time.sleep(4)  # workers and scheduler meet refused writes for a while
            raw.delete("other-app:blob")
            raw.config_set("maxmemory", "0")
            DelayedQueue(farm.resque).enqueue_at(due, QUEUE, "FaultJob", "sched", 0.0)
            farm.payloads["sched"] = JobPayload.new("FaultJob", ["sched", 0.0]).encode()
            tags.append("sched")
            farm.wait_idle(tags, timeout=180)
            for proc in workers:
                assert farm.stop(proc) == 0, farm.log_tail()
            assert scheduler.poll() is None, "the scheduler died"
            logs = farm.log_tail(200)
            assert "Redis refuses writes: out of memory" in logs, logs
            farm.assert_accounted(tags, fault_result, set(), reliable=False)
            assert not farm.account(tags).failed
        finally:
            if scheduler is not None:
                scheduler.send_signal(signal.SIGTERM)
                try:
                    scheduler.wait(30)
                except subprocess.TimeoutExpired:
                    scheduler.kill()
                    scheduler.wait()
            farm.close()


def _start_scheduler(farm: Farm) -> subprocess.Popen[bytes]:
    from worker_farm import CLI  # noqa: PLC0415

    log = open(farm.logdir / "worker-scheduler.log", "wb")  # noqa: SIM115 - closed by the child's exit
    proc = subprocess.Popen(
        [*CLI, "--redis", farm.worker_url, "scheduler", "--interval", "0.2"],
        env=farm.env(), stdout=log, stderr=subprocess.STDOUT, cwd=farm.logdir,
    )  # fmt: skip
    log.close()
    return proc
