"""Prometheus metrics: the dashboard's ``/metrics`` read from peer-shaped Redis data, and a
real worker's ``--metrics-port`` after it ran jobs (fork, no fork, a pool)."""

from __future__ import annotations

import socket
import urllib.request
import warnings
from collections.abc import Iterator

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
import web_seed
from jobs.harness import registered, spawn_worker, stop
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_for

from resque_compat import Resque
from resque_compat.metrics import ResqueCollector, WorkerMetrics, exposition, resque_registry
from resque_compat.testing.redis_server import RedisServer, free_port
from resque_compat.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """``(name, sorted labels) -> value`` for every sample of an exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Resque(redis_url)), base_url="http://localhost") as c:
        yield c


# -- the dashboard: Redis read on scrape ----------------------------------------------------------
def test_dashboard_metrics_count_every_peers_data(client: TestClient, r: redis.Redis) -> None:
    web_seed.seed(r)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "resque_up") == 1
    assert value(found, "resque_queue_size", queue="default") == 5
    assert value(found, "resque_queue_size", queue="math") == 2
    assert value(found, "resque_queue_size", queue="other") == 1
    assert value(found, "resque_processed_total") == 12
    assert value(found, "resque_failed_total") == 5
    assert value(found, "resque_failed_list_length", list="failed") == len(web_seed.FAILURES)
    assert value(found, "resque_paused_all") == 0
    # vm: Ruby, PHP and the broken record hold a job; the PHP fork worker and IDLE_WORKER do not
    assert value(found, "resque_workers", host="vm", state="busy") == 3
    assert value(found, "resque_workers", host="vm", state="idle") == 2
    assert value(found, "resque_workers", host="nodebox", state="busy") == 1
    assert value(found, "resque_workers", host="pybox", state="busy") == 1
    assert value(found, "resque_delayed_jobs") == 3
    assert value(found, "resque_delayed_timestamps") == 2
    assert "hunter" not in response.text and "GoodJob" not in response.text  # counts only, never payloads


def test_pause_all_turns_idle_workers_paused(client: TestClient, r: redis.Redis) -> None:
    web_seed.seed(r)
    r.set("resque:pause-all-workers", "TRUE")
    found = samples(client.get("/metrics").text)
    assert value(found, "resque_paused_all") == 1
    assert value(found, "resque_workers", host="vm", state="paused") == 1  # Ruby's: it reads the key
    assert value(found, "resque_workers", host="vm", state="busy") == 3
    assert value(found, "resque_workers", host="vm", state="idle") == 1  # php-resque's: no heartbeat, ignores it


def test_empty_redis_and_multi_queue_failures(client: TestClient, r: redis.Redis) -> None:
    found = samples(client.get("/metrics").text)
    assert value(found, "resque_up") == 1 and value(found, "resque_processed_total") == 0
    assert value(found, "resque_failed_list_length", list="failed") == 0
    assert value(found, "resque_delayed_jobs") == 0
    assert not [k for k in found if k[0] in ("resque_queue_size", "resque_workers")]
    r.sadd("resque:failed_queues", "default_failed")
    r.rpush("resque:default_failed", b"{}", b"{}")
    found = samples(client.get("/metrics").text)
    assert value(found, "resque_failed_list_length", list="default_failed") == 2


def test_metrics_need_the_dashboards_auth(redis_url: str) -> None:
    app = create_app(Resque(redis_url), credentials=("admin", "pw"))
    with TestClient(app) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", auth=("admin", "nope")).status_code == 401
        assert c.get("/metrics", auth=("admin", "pw")).status_code == 200


def test_collector_pages_through_many_queues_and_workers(redis_url: str, r: redis.Redis) -> None:
    pipe = r.pipeline()
    for i in range(23):
        pipe.sadd("app:queues", f"q{i}")
        if i:
            pipe.rpush(f"app:queue:q{i}", *[b"{}"] * i)
        pipe.sadd("app:workers", f"h{i % 3}:{i}:q{i}")
        if i % 2:
            pipe.set(f"app:worker:h{i % 3}:{i}:q{i}", b'{"queue":"q","run_at":"x","payload":{}}')
        pipe.rpush(f"app:delayed:{2000000000 + i}", *[b"{}"] * 2)
        pipe.zadd("app:delayed_queue_schedule", {str(2000000000 + i): 2000000000 + i})
    pipe.execute()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResqueCollector(Resque(redis_url, namespace="app"), page=4))  # many pages
    found = samples(exposition(registry).decode())
    assert all(value(found, "resque_queue_size", queue=f"q{i}") == i for i in range(23))
    by_state: dict[str, float] = {}
    for (name, labels), n in found.items():
        if name == "resque_workers":
            state = dict(labels)["state"]
            by_state[state] = by_state.get(state, 0) + n
    assert by_state == {"busy": 11, "idle": 12}
    assert value(found, "resque_delayed_jobs") == 46 and value(found, "resque_delayed_timestamps") == 23


def test_redis_down_is_resque_up_zero(private_redis: RedisServer) -> None:
    resque = Resque(private_redis.url + "?socket_connect_timeout=0.5&socket_timeout=0.5")
    registry = resque_registry(resque)
    private_redis.stop()
    found = samples(exposition(registry).decode())
    assert found == {("resque_up", ()): 0}


# -- a worker's own metrics ------------------------------------------------------------------------
def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


def scrape_when(port: int, done: int) -> Samples:
    """Scrape until ``done`` jobs are counted (the worker records a job after running it)."""

    def ready() -> Samples | None:
        try:
            found = scrape(port)
        except OSError:
            return None
        total = sum(v for (name, _), v in found.items() if name == "resque_worker_jobs_processed_total")
        return found if total >= done else None

    found = wait_for(ready, what=f"{done} jobs in the metrics")
    assert found is not None
    return found


def enqueue_mix(resque: Resque) -> None:
    for i in range(3):
        resque.enqueue("default", "GoodJob", i)
    resque.enqueue("default", "BadJob", "x")
    resque.enqueue("default", "NoSuchJob")


def check_mix(found: Samples) -> None:
    assert value(found, "resque_worker_job_duration_seconds_count", **{"class": "GoodJob", "outcome": "ok"}) == 3
    assert value(found, "resque_worker_job_duration_seconds_count", **{"class": "BadJob", "outcome": "failed"}) == 1
    assert value(found, "resque_worker_job_duration_seconds_count", **{"class": "NoSuchJob", "outcome": "failed"}) == 1
    assert value(found, "resque_worker_job_duration_seconds_bucket", **{"class": "GoodJob", "outcome": "ok",
                                                                       "le": "+Inf"}) == 3  # fmt: skip
    assert (value(found, "resque_worker_job_duration_seconds_sum", **{"class": "GoodJob", "outcome": "ok"}) or 0) > 0
    assert value(found, "resque_worker_jobs_processed_total", **{"class": "GoodJob"}) == 3
    assert value(found, "resque_worker_jobs_failed_total", **{"class": "GoodJob"}) == 0
    assert value(found, "resque_worker_jobs_failed_total", **{"class": "BadJob"}) == 1
    assert value(found, "resque_worker_jobs_processed_total", **{"class": "BadJob"}) == 1


@pytest.mark.parametrize("fork", [True, False])
def test_worker_serves_job_metrics(redis_url: str, r: redis.Redis, fork: bool) -> None:
    port = free_port()
    proc = spawn_worker(
        redis_url, "-q", "default", "--interval", "0.1", "--fork" if fork else "--no-fork", "--metrics-port", str(port)
    )
    try:
        registered(r, proc.pid)
        enqueue_mix(Resque(redis_url))
        found = scrape_when(port, 5)
        check_mix(found)
        assert value(found, "process_open_fds") is not None  # the worker process's own collector
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_pool_workers_serve_one_port_each(redis_url: str, r: redis.Redis) -> None:
    port = free_port()
    while True:  # two consecutive free ports
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                port = free_port()
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "-c", "2", env={"METRICS_PORT": str(port)})
    try:
        wait_for(lambda: len(r.smembers("resque:workers")) == 2, what="two workers")
        enqueue_mix(Resque(redis_url))

        def total() -> float | None:
            try:
                both = [scrape(port), scrape(port + 1)]
            except OSError:
                return None
            n = sum(v for f in both for (name, _), v in f.items() if name == "resque_worker_jobs_processed_total")
            return n if n >= 5 else None

        assert wait_for(total, what="jobs in both workers' metrics") == 5
    finally:
        stop(proc)


def test_port_in_use_is_one_line_and_exit_2(redis_url: str, r: redis.Redis) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = spawn_worker(redis_url, "-q", "default", "--metrics-port", str(port))
        out = stop(proc, sig=0)
    assert proc.returncode == 2
    assert f"resque-compat: cannot serve metrics on 127.0.0.1:{port}" in out and "Traceback" not in out
    assert not r.smembers("resque:workers")  # failed before registering


def test_worker_metrics_observe_without_a_server() -> None:
    metrics = WorkerMetrics()
    metrics.observe("A", "ok", 0.02)
    metrics.observe("A", "skipped", 0.001)
    metrics.observe("A", "failed", 3.0)
    found = samples(exposition(metrics.registry).decode())
    assert value(found, "resque_worker_jobs_processed_total", **{"class": "A"}) == 3
    assert value(found, "resque_worker_jobs_failed_total", **{"class": "A"}) == 1
    bucket = "resque_worker_job_duration_seconds_bucket"
    assert value(found, bucket, **{"class": "A", "outcome": "ok", "le": "0.025"}) == 1
    assert value(found, bucket, **{"class": "A", "outcome": "failed", "le": "2.5"}) == 0
