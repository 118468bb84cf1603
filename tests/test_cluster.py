"""Redis Cluster: client, worker modes, scheduler, failures, dashboard and CLI on a real
cluster of three primaries (``redis-server --cluster-enabled yes`` + ``redis-cli --cluster
create``), with the namespace ``{resque}`` so every key lives in one hash slot."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import msgspec
import pytest
import redis
from click.testing import CliRunner
from jobs.harness import job_log_lines, spawn_worker, stop, worker_id_of
from skip_policy import needs_binary
from tls_certs import make_certs
from waiting import wait_for

from resque_compat import Resque
from resque_compat.aio import AsyncResque
from resque_compat.cli import main
from resque_compat.cluster import slot_of
from resque_compat.connection import ConfigError, parse_address
from resque_compat.protocol import Failure, JobPayload, Keys
from resque_compat.protocol.keys import hash_tag
from resque_compat.scheduler.delayed import DelayedQueue
from resque_compat.testing.redis_cluster import LocalCluster
from resque_compat.testing.redis_server import RedisServer

NS = "{resque}"
pytestmark = needs_binary("redis-cli", "redis-tools")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(masters=3) as started:
        yield started


@pytest.fixture
def url(cluster: LocalCluster) -> str:
    """The cluster's address, every primary emptied first."""
    for server in cluster.servers:
        with server.client() as client:
            client.flushall()
    return cluster.url


@pytest.fixture
def owner(cluster: LocalCluster, url: str) -> Iterator[redis.Redis]:
    """A plain client on the primary that serves the ``{resque}`` slot."""
    with cluster.owner(slot_of(NS)).client() as client:
        yield client


@pytest.fixture
def resque(url: str) -> Iterator[Resque]:
    client = Resque(url, namespace=NS)
    yield client
    client.redis.close()


def others(cluster: LocalCluster, owner: redis.Redis) -> list[RedisServer]:
    port = owner.connection_pool.connection_kwargs["port"]
    return [s for s in cluster.servers if s.port != port]


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--redis", url, *args], env={"RESQUE_NAMESPACE": NS})
    return result.exit_code, result.output


# -- addresses and the namespace rule ---------------------------------------------------------
def test_cluster_addresses_parse() -> None:
    address = parse_address("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002?socket_timeout=2")
    assert address.cluster == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002))
    assert address.node_url == "redis://:s3cret@10.0.0.1:7000/0?socket_timeout=2"
    assert "s3cret" not in address.redacted()
    tls = parse_address("rediss+cluster://h:7000/0?ssl_cert_reqs=none")
    assert tls.cluster == (("h", 7000),) and tls.node_url == "rediss://h:7000/0?ssl_cert_reqs=none"
    for bad, reason in [
        ("redis+cluster://h:7000/1", "only database 0"),
        ("redis+cluster://h:7000,h", "bad cluster node address 'h'"),
        ("redis+cluster://h:7000?nope=1", "unknown Redis URL option 'nope'"),
    ]:
        with pytest.raises(ConfigError, match=reason):
            parse_address(bad)


@pytest.mark.parametrize(
    ("namespace", "tag"),
    [("{resque}", "resque"), ("app{jobs}", "jobs"), ("{resque}:", "resque"), ("resque", None), ("{}x", None),
     ("{resque", None), ("", None)],
)  # fmt: skip
def test_hash_tag_must_close_inside_the_namespace(namespace: str, tag: str | None) -> None:
    assert hash_tag(namespace) == tag


def test_untagged_namespace_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"namespace 'resque' has no hash tag.*'\{resque\}'"):
        Resque(url, namespace="resque")
    with pytest.raises(ConfigError, match="no hash tag"):
        AsyncResque(url, namespace="mail")
    for args in (["queues"], ["work", "--burst", "-q", "mail"], ["scheduler", "--once"]):
        result = CliRunner().invoke(main, ["--redis", url, *args], env={"RESQUE_NAMESPACE": "resque"})
        assert result.exit_code == 2, result.output
        [line] = result.output.splitlines()
        assert line.startswith("resque-compat: namespace 'resque' has no hash tag"), line


# -- the client --------------------------------------------------------------------------------
def test_client_keeps_every_key_on_the_slot_owner(cluster: LocalCluster, resque: Resque, owner: redis.Redis) -> None:
    job_id = resque.enqueue("mail", "Mailer", 1, track=True)
    resque.enqueue_many("mail", [("Mailer", [2]), ("Other", [3])])
    resque.push_raw("raw", b'{"class":"Raw","args":[]}')
    resque.enqueue_active_job("WelcomeJob", 7, queue="mail")
    assert resque.queues() == ["mail", "raw"] and resque.size("mail") == 4
    assert owner.llen("{resque}:queue:mail") == 4 and owner.sismember("{resque}:queues", "raw")
    assert job_id is not None and resque.status(job_id) is not None
    assert resque.dequeue("mail", "Other") == 1
    assert resque.info()["pending"] == 4
    for server in others(cluster, owner):
        with server.client() as client:
            assert client.dbsize() == 0
    resque.remove_queue("raw")
    assert resque.queues() == ["mail"]


def test_a_key_outside_the_namespace_is_a_clear_error(resque: Resque, owner: redis.Redis) -> None:
    """A MOVED for another slot is not followed (it would re-point the namespace's client)."""
    outside = next(f"other:{i}" for i in range(1000) if not _served_by(owner, f"other:{i}"))
    with pytest.raises(redis.exceptions.MovedError):
        resque.redis.get(outside)
    assert resque.enqueue("mail", "Mailer") is None and resque.size("mail") == 1


def test_async_client(url: str, owner: redis.Redis) -> None:
    async def scenario() -> int:
        async with AsyncResque(url, namespace=NS) as client:
            await client.enqueue("mail", "Mailer", 1)
            return await client.size("mail")

    assert asyncio.run(scenario()) == 1
    assert owner.llen("{resque}:queue:mail") == 1


@needs_binary("openssl")
def test_rediss_cluster(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """``rediss+cluster://``: discovery (``CLUSTER SLOTS`` over TLS names the TLS ports), the
    client, the CLI and a worker all over TLS."""
    with LocalCluster(masters=3, tls=make_certs(tmp_path_factory.mktemp("certs"))) as tls_cluster:
        resque = Resque(tls_cluster.tls_url, namespace=NS)
        resque.enqueue("mail", "GoodJob", "tls")
        assert resque.redis.connection_pool.connection_kwargs["port"] in tls_cluster.tls_ports
        code, out = cli(tls_cluster.tls_url, "queues")
        assert code == 0 and "mail" in out, out
        log = tmp_path / "log"
        proc = spawn_worker(tls_cluster.tls_url, "-q", "mail", "--burst", job_log=log, env={"RESQUE_NAMESPACE": NS})
        out = stop(proc, 0)
        assert proc.returncode == 0, out
        assert [line for line in job_log_lines(log) if "GoodJob" in line] == ["GoodJob ['tls']"]
        with tls_cluster.owner(slot_of(NS)).client() as owner:  # the plain port of the same node
            assert owner.get("{resque}:stat:processed") == b"1"
        resque.redis.close()


# -- workers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mode", [("--fork",), ("--no-fork",), ("--no-fork", "--reliable"), ("--blocking",), ("--blocking", "--reliable")]
)
def test_worker_modes(url: str, resque: Resque, owner: redis.Redis, tmp_path: Path, mode: tuple[str, ...]) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(url, "-q", "mail", "--interval", "0.1", *mode, job_log=log, env={"RESQUE_NAMESPACE": NS})
    try:
        wid = wait_for(lambda: worker_id_of(owner, proc.pid, NS), what="the worker to register")
        resque.enqueue_many("mail", [("GoodJob", [i]) for i in range(3)] + [("BadJob", ["x"])])
        wait_for(lambda: owner.get("{resque}:stat:processed") == b"4", what="four jobs processed")
        assert sorted(line for line in job_log_lines(log) if "GoodJob" in line) == [f"GoodJob [{i}]" for i in range(3)]
        [record] = [Failure.decode(raw) for raw in owner.lrange("{resque}:failed", 0, -1)]
        assert record.worker == wid and record.exception.endswith("ArgumentError")
        assert not list(owner.scan_iter(match="{resque}:compat:inflight:*", count=1000))
    finally:
        out = stop(proc, signal.SIGQUIT)
    assert proc.returncode == 0, out
    assert not owner.smembers("{resque}:workers")


# -- failures, scheduler --------------------------------------------------------------------------
def test_failures_retry_and_clear(url: str, resque: Resque, owner: redis.Redis) -> None:
    payload = JobPayload.new("BadJob", ["x"])
    owner.rpush("{resque}:failed", failure(payload))
    assert resque.failures.count() == 1
    resque.failures.retry(0)
    assert owner.lrange("{resque}:queue:mail", 0, -1) == [payload.encode()]
    code, out = cli(url, "failed", "list")
    assert code == 0 and "BadJob" in out, out
    code, out = cli(url, "failed", "clear-retried", "--yes")
    assert code == 0, out
    assert resque.failures.count() == 0


def test_scheduler_moves_due_delayed_jobs(url: str, resque: Resque, owner: redis.Redis) -> None:
    delayed = DelayedQueue(resque)
    delayed.push_raw(
        int(time.time()) - 5, b'{"class":"Mailer","args":["due"],"queue":"mail"}'
    )  # due: as a peer left it
    delayed.enqueue_at(time.time() + 3600, "mail", "Mailer", "later")
    code, out = cli(url, "delayed", "count")
    assert code == 0 and "2" in out, out
    code, out = cli(url, "schedule", "add", "tick", "--cron", "* * * * *", "--class", "Tick", "--queue", "cron")
    assert code == 0, out
    code, out = cli(url, "scheduler", "--once")
    assert code == 0, out
    assert [JobPayload.decode(raw).args for raw in owner.lrange("{resque}:queue:mail", 0, -1)] == [["due"]]
    assert owner.zcard("{resque}:delayed_queue_schedule") == 1
    assert owner.hexists(Keys(NS).persistent_schedules, "tick")
    code, out = cli(url, "schedule", "list")
    assert code == 0 and "tick" in out, out


# -- dashboard and CLI ------------------------------------------------------------------------------
def test_dashboard_pages(resque: Resque, owner: redis.Redis) -> None:
    with warnings.catch_warnings():  # starlette's note about httpx
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient  # noqa: PLC0415 - the web extra

    from resque_compat.web import create_app  # noqa: PLC0415 - the web extra

    resque.enqueue("mail", "Mailer", 1)
    owner.rpush("{resque}:failed", failure(JobPayload.new("Bad", [])))
    DelayedQueue(resque).enqueue_at(time.time() + 60, "mail", "Later")
    pages = [
        "/overview", "/queues", "/queues/mail", "/working", "/workers", "/failed", "/stats/resque",
        "/stats/redis", "/stats/keys", "/stats/keys/queue:mail", "/schedule", "/delayed", "/retrying",
        "/statuses", "/history", "/enqueue", "/stats.txt", "/metrics", "/api/raw/queue:mail?index=0",
    ]  # fmt: skip
    with TestClient(create_app(resque), base_url="http://localhost") as client:
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, (page, response.text[:300])
        assert "Mailer" in client.get("/queues/mail").text
        keys = {row["key"] for row in client.get("/api/stats/keys").json()["keys"]}  # SCAN on the slot owner
        assert {"queue:mail", "queues", "failed", "delayed_queue_schedule"} <= keys
        assert "boom" in client.get("/failed").text


def test_cli_commands(url: str, owner: redis.Redis) -> None:
    code, out = cli(url, "doctor")
    assert code == 0 and "[ok  ] connectivity" in out, out
    code, out = cli(url, "--json", "enqueue", "mail", "Mailer", "[1]", "--track")
    assert code == 0, out
    job_id = json.loads(out)["id"]
    for args, expect in [
        (["queues"], "mail"), (["peek", "mail"], "Mailer"), (["stats"], "pending"), (["status", job_id], "waiting"),
        (["workers"], ""), (["failed", "count"], "0"), (["delayed", "list"], ""),
        (["pause-all"], ""), (["resume-all"], ""), (["dequeue", "mail", "Mailer", "--yes"], "1"),
        (["remove-queue", "mail", "--yes"], ""),
    ]:  # fmt: skip
        code, out = cli(url, *args)
        assert code == 0 and expect in out, (args, out)
    assert not owner.exists("{resque}:queue:mail") and not owner.exists("{resque}:pause-all-workers")


def failure(payload: JobPayload) -> bytes:
    return Failure(
        failed_at="2026/01/01 00:00:00 UTC", payload=msgspec.Raw(payload.encode()), exception="ArgumentError",
        error="boom", worker="host:1:mail", queue="mail",
    ).encode()  # fmt: skip


def _served_by(client: redis.Redis, key: str) -> bool:
    try:
        client.exists(key)
    except redis.exceptions.MovedError:
        return False
    return True
