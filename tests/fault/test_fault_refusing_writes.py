"""Redis that answers but refuses writes: out of memory (noeviction), a read-only replica.

An enqueue refused this way must raise a clear ``redis.RedisError`` (the CLI: one line,
non-zero exit), leave no half-written batch, and lose nothing already stored.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from fault_helpers import one_line_error, run_cli
from fault_results import ScenarioResult
from sentinel import FAST_REPLICATION
from waiting import wait_for

from resque_compat import Resque
from resque_compat.testing.redis_server import RedisServer

BATCH = 10


def _batch(start: int) -> list[tuple[str, list[object]]]:
    return [("FaultJob", [start + i, "x" * 2000]) for i in range(BATCH)]


@pytest.mark.scenario("Redis out of memory (maxmemory, noeviction)")
def test_out_of_memory_refuses_whole_batches(fault_result: ScenarioResult) -> None:
    with RedisServer(None, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction") as server:
        raw = server.client()
        resque = Resque(server.url)
        # Another app's data takes Redis past its 1 MB: the next write is refused.
        raw.config_set("maxmemory", "0")
        raw.set("other-app:blob", b"x" * 2_000_000)
        raw.config_set("maxmemory", "1mb")
        fault_result.faults += 1
        with pytest.raises(redis.OutOfMemoryError):
            resque.enqueue("q", "FaultJob", -1, track=True)
        fault_result.refused += 1
        line = one_line_error(run_cli("--redis", server.url, "enqueue", "q", "FaultJob", "[-2]"))
        assert "maxmemory" in line
        fault_result.faults += 1
        fault_result.refused += 1
        assert raw.keys("resque:*") == []
        raw.delete("other-app:blob")

        # Room for a few batches, then full: every acknowledged batch is whole, the refused one absent.
        used = int(raw.info("memory")["used_memory"])
        raw.config_set("maxmemory", str(used + 200_000))
        acked = 0
        refusals = 0
        while refusals < 3:
            try:
                resque.enqueue_many("q", _batch(acked), track=True)
                acked += BATCH
            except redis.OutOfMemoryError:
                refusals += 1
        fault_result.faults += refusals
        fault_result.refused += refusals
        stored = raw.llen("resque:queue:q")
        statuses = len(list(raw.scan_iter(match="resque:job:*:status", count=1000)))
        fault_result.jobs = acked
        fault_result.lost = max(0, acked - stored)
        fault_result.doubled = max(0, stored - acked)
        assert acked > 0 and stored == acked and statuses == acked

        # Memory freed (the operator raised the limit): the same client goes on.
        raw.config_set("maxmemory", "0")
        resque.enqueue_many("q", _batch(acked), track=True)
        fault_result.jobs += BATCH
        assert raw.llen("resque:queue:q") == acked + BATCH


@pytest.mark.scenario("Redis read-only replica")
def test_read_only_replica_refuses_cleanly(fault_result: ScenarioResult) -> None:
    with RedisServer(None, *FAST_REPLICATION) as primary, RedisServer(None, *FAST_REPLICATION) as replica:
        Resque(primary.url).enqueue_many("q", _batch(0), track=True)
        replica.client().replicaof("127.0.0.1", primary.port)
        wait_for(lambda: replica.client().llen("resque:queue:q") == BATCH, what="the replica to sync")
        before = sorted(replica.client().keys("*"))
        resque = Resque(replica.url)
        attempts: list[Callable[[], object]] = [
            lambda: resque.enqueue("q", "FaultJob", 99),
            lambda: resque.enqueue_many("q", _batch(100), track=True),
            lambda: resque.push_raw("q", b'{"class":"FaultJob","args":[]}'),
        ]
        for attempt in attempts:
            fault_result.faults += 1
            with pytest.raises(redis.ReadOnlyError):
                attempt()
            fault_result.refused += 1
        line = one_line_error(run_cli("--redis", replica.url, "enqueue", "q", "FaultJob", "[1]", "--track"))
        assert "read only replica" in line
        fault_result.faults += 1
        fault_result.refused += 1
        # Reads still work there, and nothing the primary held went missing.
        assert resque.size("q") == BATCH
        assert sorted(replica.client().keys("*")) == before
        assert primary.client().llen("resque:queue:q") == BATCH
        fault_result.jobs = BATCH
        fault_result.lost = BATCH - primary.client().llen("resque:queue:q")
