"""Redis Cluster failover: clients and workers given ``redis+cluster://`` follow the slot of
their ``{resque}`` namespace to the promoted replica (``CLUSTER FAILOVER``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from fault_helpers import run_cli
from fault_results import ScenarioResult
from skip_policy import needs_binary
from waiting import wait_for
from worker_farm import QUEUE, Farm

from resque_compat import Resque
from resque_compat.aio import AsyncResque
from resque_compat.cluster import slot_of
from resque_compat.protocol import Failure, JobPayload, Keys
from resque_compat.testing.redis_cluster import LocalCluster
from resque_compat.testing.redis_server import RedisServer

NS = "{resque}"
KEYS = Keys(NS)
SLOT = slot_of(NS)
pytestmark = needs_binary("redis-cli", "redis-tools")


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """Three primaries, each with a replica."""
    with LocalCluster(masters=3, replicas=1) as started:
        yield started


def _enqueue_following(resque: Resque, tag: str, result: ScenarioResult) -> None:
    """Enqueue once, as an application would, retrying on ``ConnectionError``: after the switch
    a call may meet the demoted primary (its MOVED: the command did not run) or the killed one
    (refused); a later one reaches the new primary."""

    def attempt() -> bool | None:
        try:
            resque.enqueue(QUEUE, "FaultJob", tag, 0.0)
        except redis.ConnectionError as exc:
            _refused(result, exc)
            return None
        return True

    wait_for(attempt, what=f"enqueue of {tag} to reach the new primary")
    result.jobs += 1


async def _enqueue_following_async(resque: AsyncResque, tag: str, result: ScenarioResult) -> None:
    """The same from asyncio: the asyncio pool follows the slot too."""
    for _ in range(600):
        try:
            await resque.enqueue(QUEUE, "FaultJob", tag, 0.0)
        except redis.ConnectionError as exc:
            _refused(result, exc)
            await asyncio.sleep(0.05)
            continue
        result.jobs += 1
        return
    raise AssertionError(f"the asyncio enqueue of {tag} never reached the new primary")


def _refused(result: ScenarioResult, exc: Exception) -> None:
    result.refused += 1
    if result.refused == 1:
        result.note(f"enqueues refused during the switch, first: {exc}")


@pytest.mark.parametrize("kill", [False, True], ids=["CLUSTER FAILOVER", "kill -9 of the primary"])
@pytest.mark.scenario("Cluster failover under running workers")
def test_workers_follow_cluster_failover(
    cluster: LocalCluster, private_redis: RedisServer, fault_result: ScenarioResult, kill: bool
) -> None:
    """As the Sentinel scenario: a forking and a reliable worker each hold a job through the
    switch, a blocking worker waits in BLMOVE on the primary being demoted (or killed, once its
    replica has every write). Every job enqueued before and after runs exactly once; a job in
    flight at the switch may end in ``failed`` (counted), never lost. The CLI, given the same
    address, and an asyncio client opened before the switch reach the new primary too."""
    farm = Farm(private_redis.url, cluster.url)  # job runs are recorded outside the cluster
    env = {"RESQUE_NAMESPACE": NS}
    resque = Resque(cluster.url, namespace=NS)
    runner = asyncio.Runner()
    aresque = runner.run(_open_async(cluster.url))
    try:
        before = [f"before:{i}" for i in range(10)]
        for tag in before:
            _enqueue_following(resque, tag, fault_result)
        runner.run(_enqueue_following_async(aresque, "async:before", fault_result))
        forking = farm.start("--fork", env=env)
        reliable = farm.start("--no-fork", "--reliable", env=env)
        wait_for(lambda: {*before, "async:before"} <= farm.runs().keys(), what="the jobs enqueued before to run")

        farm.hold()  # the next jobs stay mid-job until released
        switch = ["switch:0", "switch:1"]
        for tag in switch:
            _enqueue_following(resque, tag, fault_result)
        wait_for(lambda: farm.job_held_by(forking.pid) and farm.job_held_by(reliable.pid), what="both to hold a job")
        blocking = farm.start("--blocking", env=env)
        old = cluster.owner(SLOT)
        with old.client() as client:
            wait_for(lambda: any(c.get("cmd") == "blmove" for c in client.client_list()), what="a BLMOVE")

        new_owner = cluster.failover(SLOT, kill=kill)
        fault_result.faults += 1
        assert new_owner is not old
        farm.release()
        after = [f"after:{i}" for i in range(10)]
        for tag in after:
            _enqueue_following(resque, tag, fault_result)
        runner.run(_enqueue_following_async(aresque, "async:after", fault_result))
        proc = run_cli("--redis", cluster.url, "--namespace", NS, "enqueue", QUEUE, "FaultJob", '["cli", 0.0]')
        assert proc.returncode == 0, proc.stderr
        fault_result.jobs += 1

        tags = [*before, "async:before", *switch, *after, "async:after", "cli"]
        new = new_owner.client()
        wait_for(lambda: set(tags) <= farm.runs().keys() | _failed(new), timeout=60, what="every job to end")
        wait_for(lambda: not new.llen(KEYS.queue(QUEUE)) and not farm.running(), what="the queue to drain")
        alive = {p.pid: p.poll() for p in (forking, reliable, blocking)}
        assert all(code is None for code in alive.values()), f"a worker died: {alive}\n{farm.log_tail()}"
        registered = {int(_text(w).split(":")[1]) for w in new.smembers(KEYS.workers)}
        assert registered == set(alive), f"{registered} on the new primary\n{farm.log_tail()}"
        for worker in (forking, reliable, blocking):
            assert farm.stop(worker) == 0, farm.log_tail()
    finally:
        farm.close()
        resque.redis.close()
        runner.run(aresque.aclose())
        runner.close()

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
    assert not list(new.scan_iter(match=KEYS.inflight_pattern))
    assert int(new.get(KEYS.stat("processed")) or 0) == len(tags), "each job counted once, on the new primary"


async def _open_async(url: str) -> AsyncResque:
    return AsyncResque(url, namespace=NS)


def _failed(client: redis.Redis) -> set[str]:
    return {
        str(JobPayload.decode(bytes(Failure.decode(raw).payload)).args[0]) for raw in client.lrange(KEYS.failed, 0, -1)
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
