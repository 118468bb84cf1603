"""Peers on one Redis Cluster: each enqueues for resque-compat's worker and runs what resque-compat
enqueued, through its own cluster client, in the namespace ``{resque}`` (docs/redis-cluster.md).

resque/php-resque ("php-fork") is left out: its worker calls ``ping()`` without arguments, which
phpredis's ``RedisCluster`` refuses, so it stops at once (its enqueue works)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from harness import HERE, RUN_TIMEOUT, Peer, our_env
from skip_policy import needs_binary

from resque_compat import Resque
from resque_compat.testing.redis_cluster import LocalCluster

NS = "{resque}"
pytestmark = needs_binary("redis-cli", "redis-tools")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(masters=3) as started:
        yield started


@pytest.fixture
def deployment(cluster: LocalCluster) -> Iterator[Resque]:
    for server in cluster.servers:
        with server.client() as client:
            client.flushall()
    resque = Resque(cluster.url, namespace=NS)
    yield resque
    resque.redis.close()


@pytest.mark.parametrize(("name", "job"), [("ruby", "Interop::Echo"), ("php-cb", "Interop_Echo"), ("node", "echo")])
def test_peer_and_resque_compat_share_a_cluster(
    peer_table: dict[str, Peer], cluster: LocalCluster, deployment: Resque, name: str, job: str
) -> None:
    peer = peer_table[name].require()
    env = {
        "PEER_CLUSTER": ",".join(f"127.0.0.1:{s.port}" for s in cluster.servers),
        "PEER_NAMESPACE": NS, "REDIS_URL": cluster.url, "RESQUE_NAMESPACE": NS,
    }  # fmt: skip
    deployment.enqueue("mail", job, {"from": "python"})
    report = peer.run(cluster.servers[0], "work", "mail", env=env)
    assert report["processed"] == 1 and report["failed"] == 0, report

    assert peer.run(cluster.servers[0], "enqueue", "mail", job, json.dumps({"from": name}), env=env)
    assert deployment.size("mail") == 1
    ours = subprocess.run(
        [sys.executable, "-m", "resque_compat", "work", "-q", "mail", "--burst", "--no-fork", "--import", "pyjobs"],
        env={**our_env(), **env}, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=HERE, check=False,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr

    results = [json.loads(raw) for raw in deployment.redis.lrange(deployment.keys.key("interop:results"), 0, -1)]
    assert [r["by"] for r in results] == [name, "python"], results
    assert deployment.size("mail") == 0 and not deployment.failures.count()
    assert int(deployment.redis.get(deployment.keys.stat("processed")) or 0) == 2
