"""``resque-compat doctor``: is this mixed deployment healthy, as seen from its Redis?

Checks what goes wrong when Python joins Ruby, PHP and Node workers on one Redis: the wrong
address or namespace, an old Redis, job classes waiting that no registered Python job
handles, queues that no live worker of any language watches, and dead workers still
registered. Read-only: it never changes a key.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import click
import redis

from resque_compat.activejob.job import is_wrapper, wrapped_job
from resque_compat.client import Resque
from resque_compat.cliutil import CliContext, fail, pass_cli
from resque_compat.connection import ConfigError, redact
from resque_compat.envvars import help_epilog
from resque_compat.plans import QueuedJob, WorkerInfo
from resque_compat.protocol import (
    encode_json,
    normalize_class,
    parse_queue_list,
    resolve_queues,
    timefmt,
)
from resque_compat.registry import JobModuleError, JobRegistry, default_registry, import_job_modules

Level = Literal["ok", "info", "warn", "fail"]

#: Ruby prunes a worker whose heartbeat is older than this (Resque::Worker#prune_dead_workers).
STALE_AFTER = 300.0
#: resque-compat's reliable mode uses LMOVE (Redis 6.2); below 5.0 nothing is tested at all.
MIN_REDIS = (5, 0)
RELIABLE_REDIS = (6, 2)
PAGE = 100


@dataclass
class Check:
    """One line of the report: a named check, its outcome, and what it found."""

    name: str
    level: Level
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    #: a warning that still makes the run fail (nothing is broken, but nothing will run)
    blocking: bool = False


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, level: Level, message: str, *, blocking: bool = False, **details: Any) -> Check:
        check = Check(name, level, message, details, blocking)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        return all(c.level != "fail" and not c.blocking for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "level": c.level, "message": c.message}
                | ({"blocking": True} if c.blocking else {})
                | ({"details": c.details} if c.details else {})
                for c in self.checks
            ],
        }


@dataclass
class Doctor:
    """Runs the checks against one deployment. ``python_queues`` are the queues the Python
    workers watch (worker syntax: names, globs, ``*``, ``!exclude``); classes waiting there
    must be registered. ``sample`` caps the items read per queue."""

    resque: Resque
    registry: JobRegistry | None = None
    python_queues: Sequence[str] = ("*",)
    sample: int = 1000
    stale_after: float = STALE_AFTER
    now: float = field(default_factory=time.time)

    def run(self) -> Report:
        report = Report()
        if not self._connectivity(report):
            return report
        self._redis_version(report)
        queues = self.resque.queues()
        self._namespace(report, queues)
        workers = self.resque.workers()
        live = self._stale_workers(report, workers)
        self._unwatched_queues(report, queues, live)
        self._paused_workers(report, queues, live)
        self._worker_classes(report, queues, live)
        self._unhandled_classes(report, queues)
        return report

    # -- checks -----------------------------------------------------------------------
    def _connectivity(self, report: Report) -> bool:
        try:
            self.resque.ping()
        except redis.RedisError as exc:
            report.add("connectivity", "fail", f"cannot reach Redis: {redact(str(exc))}")
            return False
        report.add("connectivity", "ok", "Redis answers PING")
        return True

    def _redis_version(self, report: Report) -> None:
        info = self.resque.server_info("server")
        text = str(info.get("redis_version", "0"))
        version = tuple(int(p) for p in text.split(".")[:2] if p.isdigit())
        if version < MIN_REDIS:
            report.add(
                "redis_version", "fail", f"Redis {text} is too old: resque-compat needs 5.0 or later", version=text
            )
        elif version < RELIABLE_REDIS:
            report.add(
                "redis_version", "warn", f"Redis {text}: reliable mode (--reliable) needs 6.2 or later", version=text
            )
        else:
            report.add("redis_version", "ok", f"Redis {text}", version=text)

    def _namespace(self, report: Report, queues: list[str]) -> None:
        keys = self.resque.keys
        shown = keys.namespace or "(none)"
        if self.resque.namespace_used():
            report.add("namespace", "ok", f"namespace {shown}: {len(queues)} queues known", namespace=keys.namespace)
            return
        others = sorted({name or "(none)" for name in self.resque.namespaces()} - {shown})
        hint = f"; Resque keys exist under: {', '.join(others)}" if others else ""
        report.add(
            "namespace",
            "warn",
            f"nothing under namespace {shown} yet (no queues, workers, stats){hint}",
            namespace=keys.namespace,
            others=others,
        )

    def _heartbeat_age(self, worker: WorkerInfo) -> float | None:
        """Seconds since the worker last proved alive: Ruby's heartbeat, else node-resque's
        ``worker:ping``; None when it writes neither (php-resque, pyres)."""
        beat = timefmt.parse(worker.heartbeat) if worker.heartbeat else None
        if beat is not None:
            return self.now - beat.timestamp()
        detail = self.resque.worker_detail(worker.id)
        ping = detail.node_ping_time if detail is not None else None
        return None if ping is None else self.now - ping

    def _stale_workers(self, report: Report, workers: list[WorkerInfo]) -> list[WorkerInfo]:
        live: list[WorkerInfo] = []
        stale: list[dict[str, Any]] = []
        silent = 0
        for worker in workers:
            age = self._heartbeat_age(worker)
            if age is not None and age > self.stale_after:
                stale.append({"id": worker.id, "seconds_since_heartbeat": int(age), "working": bool(worker.job_raw)})
            else:
                live.append(worker)
                silent += age is None
        if stale:
            report.add(
                "stale_workers",
                "fail",
                f"{len(stale)} registered workers silent for over {int(self.stale_after)} s "
                "(dead; their jobs in hand are lost until pruned)",
                workers=stale,
            )
        else:
            note = f" ({silent} write no heartbeat: php-resque/pyres)" if silent else ""
            report.add("stale_workers", "ok", f"{len(live)} live workers{note}", workers=len(live))
        return live

    def _unwatched_queues(self, report: Report, queues: list[str], live: list[WorkerInfo]) -> None:
        watched: set[str] = set()
        for worker in live:
            watched.update(resolve_queues(worker.queues, queues))
        sizes = self.resque.queue_sizes()
        waiting = {q: n for q, n in sizes.items() if q not in watched and n > 0}
        idle = sorted(q for q, n in sizes.items() if q not in watched and n == 0)
        if waiting:
            listed = ", ".join(f"{q} ({n})" for q, n in sorted(waiting.items()))
            report.add(
                "unwatched_queues",
                "fail",
                f"jobs wait in queues no live worker watches: {listed}",
                queues=waiting,
                empty=idle,
            )
        elif idle:
            report.add(
                "unwatched_queues",
                "info",
                f"empty queues no live worker watches: {', '.join(idle)}",
                queues={},
                empty=idle,
            )
        else:
            report.add("unwatched_queues", "ok", "every queue is watched by a live worker")

    def _paused_workers(self, report: Report, queues: list[str], live: list[WorkerInfo]) -> None:
        """Paused workers (their own pause or pause-all-workers) while their queues hold jobs:
        those jobs wait for a resume that may never come."""
        sizes = self.resque.queue_sizes()
        stalled: list[dict[str, Any]] = []
        for worker in live:
            if worker.paused_by is None:
                continue
            waiting = {q: sizes[q] for q in resolve_queues(worker.queues, queues) if sizes.get(q)}
            if waiting:
                stalled.append({"id": worker.id, "paused_by": worker.paused_by, "waiting": waiting})
        if not stalled:
            paused = sum(1 for w in live if w.paused_by)
            report.add("paused_workers", "ok", f"{paused} paused workers, none with jobs waiting" if paused else
                       "no worker is paused")  # fmt: skip
            return
        by_all = any(s["paused_by"] == "pause-all" for s in stalled)
        listed = ", ".join(
            f"{s['id']} ({'pause-all' if s['paused_by'] == 'pause-all' else 'paused'}: "
            + ", ".join(f"{q} {n}" for q, n in s["waiting"].items())
            + ")"
            for s in stalled
        )
        hint = "resume-all, or resume them" if by_all else "resume them (dashboard Resume, kill -CONT)"
        message = f"{len(stalled)} paused workers while jobs wait in their queues: {listed}; {hint}"
        report.add("paused_workers", "warn", message, blocking=True, workers=stalled)

    def _worker_classes(self, report: Report, queues: list[str], live: list[WorkerInfo]) -> None:
        """resque-compat workers publish the job classes they can run: jobs of any other class
        waiting in their queues will fail there (UnknownJobError) unless another worker takes them."""
        known = [w for w in live if w.classes is not None]
        if not known:
            report.add("worker_classes", "info", "no resque-compat worker publishes its job classes")
            return
        samples: dict[str, Counter[str]] = {}
        problems: list[dict[str, Any]] = []
        for worker in known:
            registered = {normalize_class(c) for c in worker.classes or []}
            missing: dict[str, dict[str, int]] = {}
            for queue in resolve_queues(worker.queues, queues):
                if queue not in samples:
                    samples[queue] = self._classes_waiting(queue)
                for name, n in samples[queue].items():
                    if normalize_class(name) not in registered:
                        missing.setdefault(queue, {})[name] = n
            if missing:
                problems.append({"id": worker.id, "registered": len(registered), "missing": missing})
        if not problems:
            report.add(
                "worker_classes", "ok", f"{len(known)} resque-compat workers can run every class waiting for them"
            )
            return
        listed = "; ".join(
            f"{p['id']} ({p['registered']} classes registered) cannot run "
            + ", ".join(f"{name} in {q}" for q, per in p["missing"].items() for name in per)
            for p in problems
        )
        report.add(
            "worker_classes", "warn", f"workers that will never run jobs waiting in their queues: {listed} "
            "(start them with --import MODULE / APP_INCLUDE)", blocking=True, workers=problems,
        )  # fmt: skip

    def _classes_waiting(self, queue: str) -> Counter[str]:
        """Classes in the head of ``queue``; an ActiveJob wrapper counts as the job it wraps
        (what a worker must have registered to run it)."""
        found: Counter[str] = Counter()
        for item in self._sample(queue):
            payload = item.payload
            if payload is None:
                continue
            inner = wrapped_job(payload) if is_wrapper(payload.class_) else None
            found[inner.job_class if inner is not None else payload.class_] += 1
        return found

    def _unhandled_classes(self, report: Report, queues: list[str]) -> None:
        if self.registry is None or not len(self.registry):
            report.add(
                "job_classes", "info", "no Python jobs registered: pass --import MODULE to check the waiting classes"
            )
            return
        mine = resolve_queues(self.python_queues, queues)
        missing: dict[str, Counter[str]] = {}
        wrapped: dict[str, Counter[str]] = {}
        broken: dict[str, int] = {}
        for queue in mine:
            for item in self._sample(queue):
                payload = item.payload
                if payload is None:
                    broken[queue] = broken.get(queue, 0) + 1
                    continue
                name = payload.class_
                if is_wrapper(name) and name not in self.registry:  # ActiveJob: its job_class must be handled
                    inner = wrapped_job(payload)
                    if inner is None:
                        broken[queue] = broken.get(queue, 0) + 1
                        continue
                    name = inner.job_class
                    if name not in self.registry:
                        wrapped.setdefault(name, Counter())[queue] += 1
                if name not in self.registry:
                    missing.setdefault(name, Counter())[queue] += 1
        details: dict[str, Any] = {"registered": list(self.registry), "queues": mine}
        if broken:
            details["undecodable"] = broken
        if wrapped:
            details["unhandled_active_job"] = {name: dict(per) for name, per in sorted(wrapped.items())}
        if missing:
            details["unhandled"] = {name: dict(per) for name, per in sorted(missing.items())}
            listed = ", ".join(
                f"{name}{' (ActiveJob)' if name in wrapped else ''} in {', '.join(sorted(per))}"
                for name, per in sorted(missing.items())
            )
            report.add("job_classes", "fail", f"waiting jobs no registered Python job handles: {listed}", **details)
        elif broken:
            report.add(
                "job_classes", "fail", f"items that are not jobs wait in: {', '.join(sorted(broken))}", **details
            )
        else:
            report.add("job_classes", "ok", f"every sampled job in {len(mine)} queues has a Python handler", **details)

    def _sample(self, queue: str) -> Iterable[QueuedJob]:
        """Up to ``sample`` items from the head of the queue, read in pages."""
        start = 0
        while start < self.sample:
            count = min(PAGE, self.sample - start)
            page = self.resque.peek(queue, start, count)
            yield from page
            if len(page) < count:
                return
            start += count


_MARK = {"ok": "ok  ", "info": "info", "warn": "warn", "fail": "FAIL"}


@click.command(epilog=help_epilog("doctor"))
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help="Module that registers your jobs (repeatable), as for the worker. [env: APP_INCLUDE]",
)
@click.option(
    "--queues",
    "queue_spec",
    default="*",
    show_default=True,
    metavar="Q1,Q2",
    help="Queues the Python workers watch (names, globs, !exclude): classes waiting there must be registered.",
)
@click.option(
    "--sample",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items read from the head of each queue when checking classes.",
)
@click.option(
    "--stale-after",
    default=STALE_AFTER,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds without a heartbeat after which a registered worker counts as dead.",
)
@pass_cli
def doctor(cli: CliContext, imports: tuple[str, ...], queue_spec: str, sample: int, stale_after: float) -> None:
    """Check a mixed deployment: Redis, namespace, unhandled job classes, unwatched queues, dead workers.

    Exits 1 when a check fails, 3 when Redis cannot be reached.
    """
    names = list(imports) or parse_queue_list(os.environ.get("APP_INCLUDE", ""))
    queues = parse_queue_list(queue_spec)
    if not queues:
        fail("--queues must name at least one queue or pattern", 2)
    try:
        import_job_modules(names)
        report = Doctor(
            cli.resque, default_registry if names or len(default_registry) else None, queues, sample, stale_after
        ).run()
    except (ConfigError, JobModuleError) as exc:
        fail(str(exc), 2)
        return
    except redis.RedisError as exc:
        fail(f"Redis error: {redact(str(exc))}", 3)
        return
    if cli.json:
        click.echo(encode_json(report.to_dict()).decode())
    else:
        click.echo(f"resque-compat doctor: {cli.redis_shown}, namespace {cli.resque.keys.namespace or '(none)'}")
        for check in report.checks:
            click.echo(f"[{_MARK[check.level]}] {check.name}: {check.message}")
        click.echo("all checks passed" if report.ok else "problems found")
    if not report.ok:
        unreachable = report.checks and report.checks[0].name == "connectivity" and report.checks[0].level == "fail"
        sys.exit(3 if unreachable else 1)
