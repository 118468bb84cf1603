"""Prometheus metrics (the ``metrics`` extra): what Redis holds, and what one worker did.

Two sources, two kinds of target:

* :class:`ResqueCollector` reads the shared Redis on every scrape (the dashboard serves it at
  ``/metrics``): queue sizes, the ``stat:processed``/``stat:failed`` totals, failed-list
  lengths, workers by host and state, delayed items. It counts every peer's jobs and
  workers, Ruby, PHP and Node alike. Reads are paged (SSCAN, pipelined LLEN/STRLEN in pages
  of ``page``): never KEYS, never a whole list or a job payload.
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
from resque_compat.plans import decode_worker_state, is_true, worker_state
from resque_compat.protocol import WorkerId
from resque_compat.protocol.keys import FAILED_LIST, Stat
from resque_compat.replies import text, to_int
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
        self.redis = resque.redis
        self.keys = resque.keys
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
        keys = self.keys
        queues = GaugeMetricFamily("resque_queue_size", "Jobs waiting in each queue (LLEN)", labels=["queue"])
        for names, sizes in self._paged(self._members(keys.queues), lambda p, n: p.llen(keys.queue(n))):
            for name, size in zip(names, sizes, strict=True):
                queues.add_metric([name], int(size))
        yield queues

        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.stat(Stat.PROCESSED))
        pipe.get(keys.stat(Stat.FAILED))
        pipe.get(keys.pause_all)
        pipe.smembers(keys.failed_queues)
        pipe.zcard(keys.delayed_schedule)
        processed, failed, pause_all, failed_lists, timestamps = pipe.execute()
        yield _counter("resque_processed", "Jobs processed by every worker (stat:processed)", to_int(processed))
        yield _counter("resque_failed", "Jobs failed on every worker (stat:failed)", to_int(failed))
        paused = is_true(pause_all)
        yield _gauge("resque_paused_all", "1 while pause-all-workers is set", int(paused))

        lists = sorted({FAILED_LIST} | {text(m) for m in failed_lists})
        pipe = self.redis.pipeline(transaction=False)
        for name in lists:
            pipe.llen(keys.failed_list(name))
        failed_family = GaugeMetricFamily("resque_failed_list_length", "Entries in each failed list", labels=["list"])
        for name, n in zip(lists, pipe.execute(), strict=True):
            failed_family.add_metric([name], int(n))
        yield failed_family

        yield self._workers(paused)
        yield _gauge("resque_delayed_timestamps", "Timestamps holding delayed jobs (resque-scheduler)", int(timestamps))
        yield _gauge("resque_delayed_jobs", "Delayed jobs waiting for their time (resque-scheduler)", self._delayed())

    def _workers(self, paused_all: bool) -> Metric:
        """By host and state (busy, idle, paused, shutting-down; see ``commands.worker_state``):
        paged STRLEN of ``worker:<id>``, GET of our ``compat:state:<id>``, HEXISTS heartbeat."""
        counts: dict[tuple[str, str], int] = {}
        keys = self.keys

        def reads(pipe: Any, wid: str) -> None:
            pipe.strlen(keys.worker(wid))
            pipe.get(keys.worker_state(wid))
            pipe.hexists(keys.heartbeat, wid)

        ids = self._members(keys.workers)
        for i in range(0, len(ids), self.page):
            chunk = ids[i : i + self.page]
            pipe = self.redis.pipeline(transaction=False)
            for wid in chunk:
                reads(pipe, wid)
            replies = pipe.execute()
            for n, wid in enumerate(chunk):
                length, raw_state, beats = replies[3 * n : 3 * n + 3]
                state = worker_state(bool(int(length)), decode_worker_state(raw_state), bool(beats), paused_all)
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

    def _delayed(self) -> int:
        """Items in every ``delayed:<ts>`` list (the scheduler's own paged count)."""
        return DelayedQueue(self.resque).count()

    def _members(self, key: str) -> list[str]:
        """A set's members by SSCAN (SSCAN may repeat a member; each counts once)."""
        return sorted({text(m) for m in self.redis.sscan_iter(key, count=self.page)})

    def _paged(self, names: list[str], command: Any) -> Iterator[tuple[list[str], list[Any]]]:
        for i in range(0, len(names), self.page):
            chunk = names[i : i + self.page]
            pipe = self.redis.pipeline(transaction=False)
            for name in chunk:
                command(pipe, name)
            yield chunk, pipe.execute()


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
