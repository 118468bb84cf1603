"""Redis Sentinel failover: clients given ``redis+sentinel://`` follow the new primary."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from fault_helpers import run_cli
from fault_results import ScenarioResult
from sentinel import SentinelSetup, sentinel_binary

from resque_compat import Resque
from resque_compat.protocol import JobPayload

pytestmark = pytest.mark.skipif(
    sentinel_binary() is None, reason="redis-sentinel is not installed (Debian: apt-get install redis-sentinel)"
)


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    with SentinelSetup() as setup:
        yield setup


def _enqueue_following(resque: Resque, tag: str, result: ScenarioResult) -> None:
    """Enqueue once, as an application would: the first call after a failover may meet the
    demoted primary (a clear ``ConnectionError``); the next one reaches the new primary."""
    for _ in range(5):
        try:
            resque.enqueue("q", "FaultJob", tag, track=True)
            result.jobs += 1
            return
        except redis.ConnectionError as exc:
            result.refused += 1
            result.note(f"one enqueue refused during the switch: {exc}")
    raise AssertionError("enqueue never reached the new primary")


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
