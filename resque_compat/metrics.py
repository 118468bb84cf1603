"""Prometheus metrics (the ``metrics`` extra): what Redis holds, and what one worker did.

Two sources, two kinds of target:

* :class:`ResqueCollector` reads the shared Redis on every scrape (the dashboard serves it at
  ``/metrics``) through the client's read model: queue sizes, the ``stat:processed``/``stat:failed``
  totals, failed-list lengths, workers by host and state, delayed items. It counts every peer's
  jobs and workers, Ruby, PHP and Node alike, and never reads a job payload.
* :class:`WorkerMetrics` lives in one ``resque-compat work`` process (``--metrics-port``):
  a job-duration histogram by class and outcome and processed/failed counters by class, for
  the jobs this process ran, served by prometheus-client's HTTP server.

Names differ (``resque_*`` vs ``resque_worker_*``) so both can be scraped into one Prometheus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.protocol import WorkerId
from resque_compat.protocol.keys import Stat
from resque_compat.scheduler.delayed import DelayedQueue

log = logging.getLogger("resque_compat.metrics")

PAGE = 1000
#: the media type of :func:`exposition`'s output
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: seconds; from a no-op job (~1 ms with fork) to a long batch job
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
OUTCOMES = ("ok", "failed", "skipped")


# -- the Redis side: read on scrape ------------------------------------------------------
class ResqueCollector(Collector):
    """Reads one Resque deployment's Redis on each ``collect()``.

    A Redis error yields ``resque_up 0`` alone (and a warning), so a scrape never fails and an
    alert can fire on it."""

    def __init__(self, resque: Resque, page: int = PAGE) -> None:
        self.resque = resque
        self.page = page

    def describe(self) -> Iterable[Metric]:
        return []  # names depend on Redis contents; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._read())
        except redis.RedisError as exc:
            log.warning("metrics: cannot read Redis: %s", redact(str(exc)))
            yield _gauge("resque_up", "1 when Redis answered this scrape, else 0", 0)
            return
        yield _gauge("resque_up", "1 when Redis answered this scrape, else 0", 1)
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        resque = self.resque
        queues = GaugeMetricFamily("resque_queue_size", "Jobs waiting in each queue (LLEN)", labels=["queue"])
        for name, size in resque.queue_sizes().items():
            queues.add_metric([name], size)
        yield queues

        yield _counter(
            "resque_processed", "Jobs processed by every worker (stat:processed)", resque.stat(Stat.PROCESSED)
        )
        yield _counter("resque_failed", "Jobs failed on every worker (stat:failed)", resque.stat(Stat.FAILED))
        yield _gauge("resque_paused_all", "1 while pause-all-workers is set", int(resque.paused_all()))

        failed_family = GaugeMetricFamily("resque_failed_list_length", "Entries in each failed list", labels=["list"])
        for name in resque.failures.list_names():
            failed_family.add_metric([name], resque.failures.count(name))
        yield failed_family

        yield self._workers()
        delayed = DelayedQueue(resque)
        timestamps = delayed.timestamp_count()
        yield _gauge("resque_delayed_timestamps", "Timestamps holding delayed jobs (resque-scheduler)", timestamps)
        yield _gauge("resque_delayed_jobs", "Delayed jobs waiting for their time (resque-scheduler)", delayed.count())

    def _workers(self) -> Metric:
        """By host and state (busy, idle, paused, shutting-down; see ``plans.worker_state``),
        ``page`` workers a round trip."""
        counts: dict[tuple[str, str], int] = {}
        for wid, state in self.resque.worker_states(self.resque.worker_ids(), self.page).items():
            key = (WorkerId.parse(wid).host, state)
            counts[key] = counts.get(key, 0) + 1
        family = GaugeMetricFamily(
            "resque_workers",
            "Registered workers of every language, by host and state (busy, idle, paused, shutting-down)",
            labels=["host", "state"],
        )
        for (host, state), n in sorted(counts.items()):
            family.add_metric([host, state], n)
        return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def resque_registry(resque: Resque) -> CollectorRegistry:
    """A registry holding only the Redis collector (the dashboard's ``/metrics``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResqueCollector(resque))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition format of everything in ``registry`` (reads Redis: call off the event loop)."""
    return generate_latest(registry)


# -- the worker side: observed per job ---------------------------------------------------
class WorkerMetrics:
    """One worker process's job metrics. ``observe`` is the only per-job call; the worker
    skips even that when metrics are off."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if registry is None:
            ProcessCollector(registry=self.registry)  # CPU, memory, fds of this worker
        self.duration = Histogram(
            "resque_worker_job_duration_seconds",
            "Time a job took in this worker, by class and outcome (ok, failed, skipped)",
            ["class", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.processed = Counter(
            "resque_worker_jobs_processed", "Jobs this worker processed, by class", ["class"], registry=self.registry
        )
        self.failed = Counter(
            "resque_worker_jobs_failed", "Jobs that failed in this worker, by class", ["class"], registry=self.registry
        )
        self._children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}

    def observe(self, class_name: str, outcome: str, seconds: float) -> None:
        """Record one finished job (``outcome``: ok, failed or skipped)."""
        key = (class_name, outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.duration.labels(class_name, outcome),
                self.processed.labels(class_name),
                self.failed.labels(class_name),
            )
        duration, processed, failed = children
        duration.observe(seconds)
        processed.inc()
        if outcome == "failed":
            failed.inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread. Raises OSError when the
        port cannot be bound."""
        start_http_server(port, addr=host, registry=self.registry)


__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "OUTCOMES",
    "ResqueCollector",
    "WorkerMetrics",
    "exposition",
    "resque_registry",
]
