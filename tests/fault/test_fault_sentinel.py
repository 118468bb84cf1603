"""Redis Sentinel failover: clients given ``redis+sentinel://`` follow the new primary."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from fault_helpers import run_cli
from fault_results import ScenarioResult
from sentinel import SentinelSetup
from skip_policy import needs_binary
from waiting import wait_for
from worker_farm import QUEUE, Farm

from resque_compat import Resque
from resque_compat.protocol import Failure, JobPayload
from resque_compat.testing.redis_server import RedisServer

needs_sentinel = needs_binary("redis-sentinel")


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    with SentinelSetup() as setup:
        yield setup


def _enqueue_following(
    resque: Resque, tag: str, result: ScenarioResult, queue: str = "q", args: tuple[object, ...] = ()
) -> None:
    """Enqueue once, as an application would: the first call after a failover may meet the
    demoted primary (a clear ``ConnectionError``); the next one reaches the new primary."""
    for _ in range(5):
        try:
            resque.enqueue(queue, "FaultJob", tag, *args, track=True)
            result.jobs += 1
            return
        except redis.ConnectionError as exc:
            result.refused += 1
            result.note(f"one enqueue refused during the switch: {exc}")
    raise AssertionError("enqueue never reached the new primary")


@needs_sentinel
@pytest.mark.scenario("Sentinel failover (SENTINEL FAILOVER)")
def test_enqueue_follows_sentinel_failover(sentinel: SentinelSetup, fault_result: ScenarioResult) -> None:
    resque = Resque(sentinel.url)
    old_primary = sentinel.primary
    for i in range(10):
        _enqueue_following(resque, f"before:{i}", fault_result)
    assert old_primary.client().llen("resque:queue:q") == 10

    sentinel.failover()
    fault_result.faults += 1
    assert sentinel.primary is not old_primary
    for i in range(10):
        _enqueue_following(resque, f"after:{i}", fault_result)

    # The CLI, given the same address, writes to the new primary too.
    proc = run_cli("--redis", sentinel.url, "--json", "enqueue", "q", "FaultJob", '["cli"]', "--track")
    assert proc.returncode == 0, proc.stderr
    fault_result.jobs += 1
    job_id = json.loads(proc.stdout)["id"]

    new = sentinel.primary.client()
    assert new.info("replication")["role"] == "master"
    tags = [JobPayload.decode(raw).args[0] for raw in new.lrange("resque:queue:q", 0, -1)]
    fault_result.lost = fault_result.jobs - len(set(tags))
    fault_result.doubled = len(tags) - len(set(tags))
    assert tags == [f"before:{i}" for i in range(10)] + [f"after:{i}" for i in range(10)] + ["cli"]
    assert new.exists(f"resque:job:{job_id}:status")
    status = resque.status(job_id)
    assert status is not None and status.status == 1


@needs_sentinel
@pytest.mark.scenario("Sentinel failover under running workers")
def test_workers_follow_sentinel_failover(
    sentinel: SentinelSetup, private_redis: RedisServer, fault_result: ScenarioResult
) -> None:
    """Real ``resque-compat work`` processes on ``redis+sentinel://`` keep working across
    ``SENTINEL FAILOVER``: a forking worker and a reliable in-process one each hold a job
    through the switch, a blocking worker waits in BLMOVE on the primary being demoted. Jobs
    enqueued before and after the failover each run exactly once; a job in flight at the
    switch may instead end in ``failed`` (counted), never lost.

    The failover happens while every worker is busy or blocked: a job reserved on the old
    primary after the promotion and before its demotion is a write Redis's asynchronous
    replication drops, whatever the client (see the README)."""
    farm = Farm(private_redis.url, sentinel.url)  # job runs are recorded outside the failover
    resque = Resque(sentinel.url)
    try:
        before = [f"before:{i}" for i in range(10)]
        for tag in before:
            _enqueue_following(resque, tag, fault_result, QUEUE, (0.0,))
        forking = farm.start("--fork")
        reliable = farm.start("--no-fork", "--reliable")
        wait_for(lambda: set(before) <= farm.runs().keys(), what="the jobs enqueued before to run")

        farm.hold()  # the next jobs stay mid-job until released
        switch = ["switch:0", "switch:1"]
        for tag in switch:
            _enqueue_following(resque, tag, fault_result, QUEUE, (0.0,))
        wait_for(lambda: farm.job_held_by(forking.pid) and farm.job_held_by(reliable.pid), what="both to hold a job")
        blocking = farm.start("--blocking")
        old = sentinel.primary.client()
        wait_for(lambda: any(c.get("cmd") == "blmove" for c in old.client_list()), what="a worker blocked in BLMOVE")

        sentinel.failover()
        fault_result.faults += 1
        farm.release()
        after = [f"after:{i}" for i in range(10)]
        for tag in after:
            _enqueue_following(resque, tag, fault_result, QUEUE, (0.0,))

        tags = before + switch + after
        new = sentinel.primary.client()
        wait_for(lambda: set(tags) <= farm.runs().keys() | _failed(new), timeout=60, what="every job to end")
        wait_for(lambda: not new.llen(f"resque:queue:{QUEUE}") and not farm.running(), what="the queue to drain")
        alive = {p.pid: p.poll() for p in (forking, reliable, blocking)}
        assert all(code is None for code in alive.values()), f"a worker died: {alive}\n{farm.log_tail()}"
        registered = {int(_text(w).split(":")[1]) for w in new.smembers("resque:workers")}
        assert registered == set(alive), f"{registered} on the new primary\n{farm.log_tail()}"
        for proc in (forking, reliable, blocking):
            assert farm.stop(proc) == 0, farm.log_tail()
    finally:
        farm.close()
        resque.redis.close()

    runs = farm.runs()
    failed = _failed(new)
    fault_result.completed = sum(1 for t in tags if t in runs and t not in failed)
    fault_result.failed = len(failed & set(tags))
    fault_result.lost = sum(1 for t in tags if t not in runs and t not in failed)
    fault_result.doubled = sum(1 for t in tags if runs.get(t, 0) > 1)
    if failed:
        fault_result.note(f"in flight at the switch, ended in failed: {sorted(failed)}")
    assert fault_result.lost == 0 and fault_result.doubled == 0, (runs, failed, farm.log_tail())
    assert failed <= set(switch), failed
    assert not new.keys("resque:compat:inflight:*")
    assert int(new.get("resque:stat:processed") or 0) == len(tags), "each job counted once, on the new primary"


@pytest.mark.scenario("blocked worker unblocked by a role change")
def test_blocked_worker_survives_an_unblocked_error(private_redis: RedisServer, fault_result: ScenarioResult) -> None:
    """A primary that turns replica (a failover's demotion, ``REPLICAOF``) answers every
    blocked BLPOP / BLMOVE with ``-UNBLOCKED``; ``CLIENT UNBLOCK … ERROR`` sends the same reply
    on demand. A blocking worker takes it as "reconnect and go on", not as a fatal error."""
    farm = Farm(private_redis.url)
    try:
        plain = farm.start("--blocking")
        reliable = farm.start("--blocking", "--reliable")
        client = private_redis.client()

        def blocked() -> list[int]:
            ids = [int(c["id"]) for c in client.client_list() if c.get("cmd") in ("blpop", "blmove")]
            return ids if len(ids) == 2 else []

        for _ in range(3):
            for conn in wait_for(blocked, what="both workers blocked"):
                client.client_unblock(conn, error=True)
                fault_result.faults += 1
        tags = [f"u{i}" for i in range(10)]
        farm.enqueue(tags)
        farm.wait_idle(tags)
        for proc in (plain, reliable):
            assert proc.poll() is None, farm.log_tail()
            assert farm.stop(proc) == 0, farm.log_tail()
        acc = farm.record(tags, fault_result, victims=set(), reliable=False, retries_allowed=False)
        assert acc.completed == set(tags) and not acc.failed and not acc.lost, acc
        assert fault_result.completed == len(tags) and fault_result.doubled == 0
    finally:
        farm.close()


def _failed(client: redis.Redis) -> set[str]:
    return {
        str(JobPayload.decode(bytes(Failure.decode(raw).payload)).args[0])
        for raw in client.lrange("resque:failed", 0, -1)
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
