"""Worker faults with real processes: kill -9 mid-job (parent, job child, pool child), Redis
restarts and connection cuts mid-load, per-job timeouts.

Every job must end completed, or in ``failed`` with its full payload, or (reliable mode)
requeued and run again: counted, never vanished. Without reliable mode a job runs at most
once; reliable mode is at-least-once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from fault_results import ScenarioResult
from proxy import TcpProxy
from waiting import wait_for
from worker_farm import QUEUE, Accounting, Farm

from resque_compat.testing.redis_server import RedisServer

KILLS = int(os.environ.get("FAULT_KILLS", "30"))


def _mode_args(fork: bool, reliable: bool) -> list[str]:
    return ["--fork" if fork else "--no-fork", *(["--reliable"] if reliable else [])]


def _kill_holders(farm: Farm, result: ScenarioResult, mode: list[str], rounds: int, per_round: int) -> set[str]:
    """``rounds`` times: start ``per_round`` workers, wait until each holds a job, kill -9 them
    all. Returns the jobs they held."""
    victims: set[str] = set()
    for _ in range(rounds):
        workers = [farm.start(*mode) for _ in range(per_round)]
        for proc in workers:
            tag = wait_for(lambda proc=proc: farm.job_held_by(proc.pid), what=f"worker {proc.pid} to hold a job")  # type: ignore[misc]
            victims.add(tag)
        for proc in workers:
            farm.kill(proc.pid)
            result.faults += 1
    return victims


@pytest.mark.scenario("kill -9 worker parent mid-job")
@pytest.mark.parametrize(
    ("fork", "reliable"),
    [(True, False), (True, True), (False, False), (False, True)],
    ids=["fork", "fork-reliable", "nofork", "nofork-reliable"],
)
def test_kill_worker_parent_mid_job(farm: Farm, fault_result: ScenarioResult, fork: bool, reliable: bool) -> None:
    per_round = 3
    rounds = max(1, KILLS // per_round)
    tags = [f"p{i}" for i in range(rounds * per_round + 10)]
    farm.hold()
    farm.enqueue(tags)
    victims = _kill_holders(farm, fault_result, _mode_args(fork, reliable), rounds, per_round)
    farm.release()
    farm.drain(*_mode_args(fork, reliable))
    fault_result.note(f"{len(victims)} distinct job(s) held by a killed worker")
    farm.assert_accounted(tags, fault_result, victims, reliable)
    acc = farm.account(tags)
    if reliable:
        failed = {t: (f.exception, f.error, f.worker) for t, f in acc.failed.items()}
        assert not failed, f"reliable mode requeues, it does not fail: {failed}\n{farm.log_tail()}"
        assert all(tag in acc.completed for tag in victims)
    else:
        # a forked job outlives its killed worker and records itself, unless a pruner took it
        # first (a DirtyExit failure, as Ruby's); an in-process job dies with its worker
        assert all(_ended_as_expected(acc, t, completed_ok=fork) for t in victims), {
            t: (acc.failed[t].exception if t in acc.failed else "completed") for t in victims
        }


@pytest.mark.scenario("kill -9 prefetching worker mid-batch")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_kill_prefetching_worker_mid_batch(farm: Farm, fault_result: ScenarioResult, reliable: bool) -> None:
    """``--no-fork --prefetch 8``: each kill -9 leaves a started job in worker:<id> and up to 7
    unstarted ones in the in-flight list; the next worker's pruner fails (reliable: requeues)
    the started one and puts the rest back at the head of the queue, in order."""
    per_round = 2
    rounds = max(1, KILLS // per_round)
    tags = [f"f{i}" for i in range(rounds * per_round * 4 + 10)]
    farm.hold()
    farm.enqueue(tags)
    mode = ["--no-fork", "--prefetch", "8", *(["--reliable"] if reliable else [])]
    victims = _kill_holders(farm, fault_result, mode, rounds, per_round)
    farm.release()
    farm.drain(*_mode_args(False, reliable))
    fault_result.note(f"{len(victims)} distinct job(s) held by a killed prefetching worker")
    farm.assert_accounted(tags, fault_result, victims, reliable)
    acc = farm.account(tags)
    if reliable:
        assert not acc.failed, f"reliable mode requeues, it does not fail\n{farm.log_tail()}"
        assert all(tag in acc.completed for tag in victims)
    else:
        assert all(_ended_as_expected(acc, t, completed_ok=False) for t in victims), {
            t: (acc.failed[t].exception if t in acc.failed else "completed") for t in victims
        }
        unstarted = [t for t in tags if t not in victims]
        assert all(t in acc.completed for t in unstarted), f"prefetched, never started: completed\n{farm.log_tail()}"


@pytest.mark.scenario("kill -9 concurrency worker mid-jobs")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_kill_concurrency_worker_mid_jobs(farm: Farm, fault_result: ScenarioResult, reliable: bool) -> None:
    """``--concurrency 3``: every kill -9 takes three jobs in flight at once (KILLS jobs in all)."""
    slots = 3
    rounds = max(1, KILLS // slots)
    tags = [f"s{i}" for i in range(rounds * slots + 10)]
    farm.hold()
    farm.enqueue(tags)
    victims: set[str] = set()
    in_flight = 0  # reliable mode runs a requeued victim again, maybe in the next killed worker
    mode = ["--concurrency", str(slots), *(["--reliable"] if reliable else [])]
    for _ in range(rounds):
        proc = farm.start(*mode)

        def held(pid: int = proc.pid) -> set[str] | None:
            tags_held = {tag for tag, (job_pid, _) in farm.running().items() if job_pid == pid}
            return tags_held if len(tags_held) == slots else None

        victims |= wait_for(held, what=f"worker {proc.pid} to hold {slots} jobs at once")
        in_flight += slots
        farm.kill(proc.pid)
        fault_result.faults += 1
    farm.release()
    farm.drain(*_mode_args(False, reliable))
    fault_result.note(f"{in_flight} jobs in flight ({len(victims)} distinct) in {rounds} killed concurrency workers")
    farm.assert_accounted(tags, fault_result, victims, reliable)
    acc = farm.account(tags)
    if reliable:
        assert not acc.failed, f"reliable mode requeues, it does not fail\n{farm.log_tail()}"
        assert all(tag in acc.completed for tag in victims)
    else:  # an in-process job dies with its process: a pruner records each slot's as DirtyExit
        assert all(_ended_as_expected(acc, t, completed_ok=False) for t in victims), {
            t: (acc.failed[t].exception if t in acc.failed else "completed") for t in victims
        }


@pytest.mark.scenario("kill -9 job child mid-job")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_kill_job_child_mid_job(farm: Farm, fault_result: ScenarioResult, reliable: bool) -> None:
    tags = [f"c{i}" for i in range(KILLS + 10)]
    farm.hold()
    farm.enqueue(tags)
    worker = farm.start(*_mode_args(True, reliable))
    victims: set[str] = set()
    for _ in range(KILLS):

        def next_child(worker_pid: int = worker.pid) -> tuple[str, int] | None:
            for tag, (pid, ppid) in farm.running().items():
                if ppid == worker_pid and tag not in victims:
                    return tag, pid
            return None

        tag, pid = wait_for(next_child, what="the worker to fork the next job")
        os.kill(pid, signal.SIGKILL)
        victims.add(tag)
        fault_result.faults += 1
    farm.release()
    farm.wait_idle(tags)
    assert farm.stop(worker) == 0
    assert worker.pid not in {int(w.split(":")[1]) for w in farm.registered()}
    farm.assert_accounted(tags, fault_result, victims, reliable=False)
    acc = farm.account(tags)
    for tag in victims:  # the parent saw its child die: a DirtyExit failure, retryable
        assert acc.failed[tag].exception == "Resque::DirtyExit"
        assert "SIGKILL" in acc.failed[tag].error


@pytest.mark.scenario("kill -9 pool child mid-job")
def test_kill_pool_child_mid_job(farm: Farm, fault_result: ScenarioResult) -> None:
    tags = [f"w{i}" for i in range(KILLS + 10)]
    farm.hold()
    farm.enqueue(tags)
    pool = farm.start("-c", "3")
    victims: set[str] = set()
    for _ in range(KILLS):

        def next_pool_child() -> tuple[str, int] | None:
            for tag, (_pid, ppid) in farm.running().items():
                if tag not in victims and _parent_of(ppid) == pool.pid:
                    return tag, ppid
            return None

        tag, child = wait_for(next_pool_child, what="a pool child to hold a job")
        os.kill(child, signal.SIGKILL)  # the pool child (the worker), not the job's own process
        victims.add(tag)
        fault_result.faults += 1
    farm.release()
    assert farm.stop(pool) == 0
    farm.drain()
    farm.assert_accounted(tags, fault_result, victims, reliable=False)
    acc = farm.account(tags)
    assert all(_ended_as_expected(acc, t, completed_ok=True) for t in victims)


def _ended_as_expected(acc: Accounting, tag: str, *, completed_ok: bool) -> bool:
    """A job held by a killed worker: in ``failed`` as a DirtyExit, or (when its forked child
    outlived the worker and no pruner took it first) completed and recorded once."""
    if tag in acc.failed:
        return bool(acc.failed[tag].exception == "Resque::DirtyExit")
    return completed_ok and tag in acc.completed


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture
def durable_farm() -> Iterator[tuple[RedisServer, Farm]]:
    with RedisServer(None, "--appendonly", "yes", "--appendfsync", "always") as server:
        farm = Farm(server.url)
        yield server, farm
        farm.close()


@pytest.mark.scenario("workers under load, Redis kill -9 + restart")
def test_workers_survive_redis_restarts(durable_farm: tuple[RedisServer, Farm], fault_result: ScenarioResult) -> None:
    server, farm = durable_farm
    tags = [f"r{i}" for i in range(400)]
    farm.enqueue(tags, seconds=0.01)
    workers = [farm.start("--fork"), farm.start("--no-fork"), farm.start("--no-fork", "--reliable")]
    for _ in range(3):
        done = len(farm.account(tags).completed)
        wait_for(lambda done=done: len(farm.account(tags).completed) > done + 30, what="progress")  # type: ignore[misc]
        server.kill()
        fault_result.faults += 1
        server.start()
    farm.wait_idle(tags, timeout=120)
    for proc in workers:
        assert farm.stop(proc) == 0, farm.log_tail()
    farm.assert_accounted(tags, fault_result, set(), reliable=False)
    causes = Counter(f.exception for f in farm.account(tags).failed.values())
    if causes:
        fault_result.note(
            "failed: the job's own Redis call failed during the outage: "
            + ", ".join(f"{n} {name}" for name, n in sorted(causes.items()))
        )
    # a job's own Redis call may meet the outage (refused, or Redis still loading its data)
    allowed = {"ConnectionError", "Redis::ConnectionError", "redis.exceptions.ConnectionError"}
    assert set(causes) <= allowed | {"redis.exceptions.BusyLoadingError"}, causes


@pytest.mark.scenario("workers under load, proxy cuts every connection")
def test_workers_survive_connection_cuts(private_redis: RedisServer, fault_result: ScenarioResult) -> None:
    with TcpProxy(private_redis.port) as proxy:
        farm = Farm(private_redis.url, proxy.url)
        try:
            tags = [f"x{i}" for i in range(600)]
            farm.enqueue(tags, seconds=0.005)
            workers = [farm.start("--fork"), farm.start("--no-fork"), farm.start("--no-fork", "--blocking")]
            for _ in range(20):
                done = len(farm.account(tags).completed)
                wait_for(lambda done=done: len(farm.account(tags).completed) > done + 10, what="progress")  # type: ignore[misc]
                fault_result.faults += proxy.cut()
            farm.wait_idle(tags, timeout=120)
            for proc in workers:
                assert farm.stop(proc) == 0, farm.log_tail()
            farm.assert_accounted(tags, fault_result, set(), reliable=False)
        finally:
            farm.close()


@pytest.mark.scenario("per-job timeout")
@pytest.mark.parametrize("fork", [True, False], ids=["fork", "nofork"])
def test_per_job_timeout_fails_the_job_and_goes_on(farm: Farm, fault_result: ScenarioResult, fork: bool) -> None:
    hung = [f"h{i}" for i in range(3)]
    quick = [f"q{i}" for i in range(5)]
    farm.enqueue(hung, class_name="HangJob")
    farm.enqueue(quick)
    worker = farm.start("--fork" if fork else "--no-fork", "--timeout", "0.5")
    farm.wait_idle(hung + quick)
    assert farm.stop(worker) == 0
    fault_result.faults = len(hung)
    farm.assert_accounted(hung + quick, fault_result, set(), reliable=False)
    acc = farm.account(hung + quick)
    assert set(acc.failed) == set(hung) and acc.completed == set(quick)
    for tag in hung:
        assert "timeout" in acc.failed[tag].error.lower(), acc.failed[tag].error


def test_proxy_cut_reaches_the_worker(private_redis: RedisServer) -> None:
    """Guard for the cut scenario: workers really talk through the proxy."""
    with TcpProxy(private_redis.port) as proxy:
        farm = Farm(private_redis.url, proxy.url)
        try:
            worker = farm.start()
            wait_for(lambda: proxy.open_connections > 0, what="the worker to connect through the proxy")
            assert farm.stop(worker) == 0
            assert threading.active_count() >= 1
            assert QUEUE == "faultq"
        finally:
            farm.close()


def test_a_finish_record_whose_reply_is_lost_counts_once(private_redis: RedisServer) -> None:
    """Guard for the accounting: a job's finish record can reach Redis while its reply is lost
    (a restart between the write and the reply). The job resends it (same run token) rather than
    fail, so a job is never both completed and in ``failed`` (found by the restart scenario)."""
    with TcpProxy(private_redis.port) as proxy:
        farm = Farm(private_redis.url)
        try:
            farm.enqueue(["t0"])
            marker = b"RPUSH\r\n$10\r\nfault:done\r\n"
            entry = len(b"t0 ") + 32  # the tag and a uuid4 hex run token
            proxy.cut_after(len(marker) + len(f"${entry}\r\n") + entry + 2, marker=marker, reply_lost=True)
            worker = farm.start("--no-fork", env={"FAULT_REDIS_URL": proxy.url})  # only the job's calls: proxied
            farm.wait_idle(["t0"])
            assert farm.stop(worker) == 0
            acc = farm.account(["t0"])
            assert proxy.cuts == 1
            assert (acc.completed, set(acc.failed), acc.runs["t0"]) == ({"t0"}, set(), 1), farm.log_tail()
            assert farm.jobs.llen("fault:done") == 2  # it landed twice: the lost reply's write and the resend
        finally:
            farm.close()
