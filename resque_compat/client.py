"""The client: what a web app or an operator does with a Resque deployment.

It writes the exact bytes Ruby's ``Resque.enqueue`` writes (or php-resque's tracked form),
and reads whatever any peer wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from resque_compat.connection import RedisAddress, connect, parse_address
from resque_compat.failure import BackendName, Failures
from resque_compat.protocol import (
    JobPayload,
    Keys,
    ProtocolError,
    StatusRecord,
    WorkerId,
    WorkingOn,
    decode_json,
    new_job_id,
    normalize_class,
)


def default_namespace() -> str:
    """``$RESQUE_NAMESPACE``, else php-resque's ``$PREFIX``, else ``resque``."""
    for var in ("RESQUE_NAMESPACE", "PREFIX"):
        value = os.environ.get(var)
        if value is not None:
            return value
    return "resque"


@dataclass(frozen=True)
class QueuedJob:
    """One queue item as stored, with its decoded payload (None when it is not a job)."""

    raw: bytes
    payload: JobPayload | None
    problem: str | None = None


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker of any implementation, as resque-web shows it."""

    id: str
    host: str
    pid: str
    queues: list[str]
    started: str | None
    heartbeat: str | None
    processed: int
    failed: int
    job: WorkingOn | None
    job_raw: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "working" if self.job_raw else "idle"


class Resque:
    """A handle on one Resque deployment (a Redis and a namespace).

    >>> r = Resque("redis://localhost:6379/0")
    >>> r.enqueue("default", "Mailer::Welcome", 42)            # Ruby's bytes
    >>> job_id = r.enqueue("default", "App\\\\Jobs\\\\SendMail", {"to": "a@b"}, track=True)
    >>> r.status(job_id).status                                  # 1 waiting … 4 complete
    """

    def __init__(
        self,
        redis_client: redis.Redis | str | RedisAddress | None = None,
        namespace: str | None = None,
        failure_backend: BackendName | None = None,
    ) -> None:
        if isinstance(redis_client, redis.Redis):
            self.redis = redis_client
            address_namespace = None
        else:
            address = redis_client if isinstance(redis_client, RedisAddress) else parse_address(redis_client)
            self.redis = connect(address)
            address_namespace = address.namespace
        ns = namespace if namespace is not None else (address_namespace or default_namespace())
        self.keys = Keys(ns)
        backend = failure_backend or os.environ.get("FAILURE_BACKEND") or "redis"
        self.failures = Failures(self.redis, self.keys, backend)  # type: ignore[arg-type]

    # -- enqueue ----------------------------------------------------------------
    def enqueue(self, queue: str, class_name: str, *args: Any, track: bool = False) -> str | None:
        """Push one job; returns its id when ``track`` is set (php-resque's status tracking)."""
        return self.enqueue_many(queue, [(class_name, args)], track=track)[0]

    def enqueue_many(
        self, queue: str, jobs: Iterable[tuple[str, Sequence[Any]]], *, track: bool = False
    ) -> list[str | None]:
        """Push many jobs in one pipeline round trip (order kept)."""
        _check_name("queue", queue)
        payloads: list[bytes] = []
        ids: list[str | None] = []
        now = time.time()
        for class_name, args in jobs:
            _check_name("class", class_name)
            job_id = new_job_id() if track else None
            payloads.append(JobPayload.new(class_name, list(args), job_id, now).encode())
            ids.append(job_id)
        if not payloads:
            return []
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(self.keys.queues, queue)
        pipe.rpush(self.keys.queue(queue), *payloads)
        if track:
            waiting = StatusRecord.waiting(int(now)).encode()
            for job_id in ids:
                assert job_id is not None
                pipe.set(self.keys.status(job_id), waiting)
        pipe.execute()
        return ids

    def push_raw(self, queue: str, payload: bytes) -> None:
        """Push bytes as they are (a repaired payload, a peer's item)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(self.keys.queues, queue)
        pipe.rpush(self.keys.queue(queue), payload)
        pipe.execute()

    # -- queues -------------------------------------------------------------------
    def queues(self) -> list[str]:
        return sorted(m.decode() for m in self.redis.smembers(self.keys.queues))

    def size(self, queue: str) -> int:
        return int(self.redis.llen(self.keys.queue(queue)))

    def queue_sizes(self) -> dict[str, int]:
        names = self.queues()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.keys.queue(name))
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))

    def peek(self, queue: str, start: int = 0, count: int = 1) -> list[QueuedJob]:
        """Items without removing them (LRANGE), decoded where they are jobs."""
        if count <= 0:
            return []
        raws: list[bytes] = self.redis.lrange(self.keys.queue(queue), start, start + count - 1)
        return [_queued(raw) for raw in raws]

    def remove_queue(self, queue: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self.keys.queues, queue)
        pipe.delete(self.keys.queue(queue))
        pipe.execute()

    def destroy(self, queue: str, class_name: str, *args: Any) -> int:
        """Ruby's ``Resque::Job.destroy``: with args, remove items whose bytes equal Ruby's
        encoding of ``{class,args}``; without, every item of that class."""
        key = self.keys.queue(queue)
        if args:
            return int(self.redis.lrem(key, 0, JobPayload.new(class_name, list(args)).encode()))
        return self._remove_matching(queue, lambda job: job.class_ == class_name)

    def dequeue(
        self, queue: str, class_name: str, *, job_id: str | None = None, args: dict[str, Any] | None = None
    ) -> int:
        """php-resque's ``Resque::dequeue`` rules: by class, by class + id, or by class +
        args (the job's ``args[0]`` values all found among ``args``'s values)."""
        want_class = normalize_class(class_name)

        def matches(job: JobPayload) -> bool:
            if normalize_class(job.class_) != want_class:
                return False
            if job_id is not None:
                return job.job_id == job_id
            if args is not None:
                first = job.args[0] if job.args else None
                if not isinstance(first, dict) or not first:
                    return False
                given = list(args.values())
                return all(v in given for v in first.values())
            return True

        return self._remove_matching(queue, matches)

    def _remove_matching(self, queue: str, matches: Any) -> int:
        """Scan in pages and LREM each matching item by its exact bytes (count 1 per copy
        seen), so jobs pushed or popped meanwhile are never touched."""
        key = self.keys.queue(queue)
        removed = 0
        start = 0
        page = 1000
        while True:
            raws: list[bytes] = self.redis.lrange(key, start, start + page - 1)
            hits = [raw for raw in raws if (job := _queued(raw).payload) is not None and matches(job)]
            if hits:
                pipe = self.redis.pipeline(transaction=False)
                for raw in hits:
                    pipe.lrem(key, 1, raw)
                removed += sum(int(n) for n in pipe.execute())
            if len(raws) < page:
                return removed
            start += page - len(hits)

    # -- status -------------------------------------------------------------------
    def status(self, job_id: str, prefix: str = "") -> StatusRecord | None:
        """The php-resque status of a tracked job, or None when it is not tracked (or expired)."""
        raw = self.redis.get(self.keys.status(job_id, prefix))
        return None if raw is None else StatusRecord.decode(raw)

    def stop_tracking(self, job_id: str, prefix: str = "") -> None:
        """php-resque's ``Resque_Job_Status::stop``."""
        self.redis.delete(self.keys.status(job_id, prefix))

    # -- workers ------------------------------------------------------------------
    def worker_ids(self) -> list[str]:
        return sorted(m.decode() for m in self.redis.smembers(self.keys.workers))

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker with its start time, heartbeat, counters and job."""
        ids = self.worker_ids()
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.heartbeat)
        for wid in ids:
            pipe.get(self.keys.worker(wid))
            pipe.get(self.keys.worker_started(wid))
            pipe.get(self.keys.stat("processed", wid))
            pipe.get(self.keys.stat("failed", wid))
        results = pipe.execute()
        beats = {k.decode(): v.decode() for k, v in results[0].items()}
        out = []
        for i, wid in enumerate(ids):
            job_raw, started, processed, failed = results[1 + 4 * i : 5 + 4 * i]
            parsed = WorkerId.parse(wid)
            job = None
            if job_raw:
                try:
                    job = WorkingOn.decode(job_raw)
                except ProtocolError:
                    job = None
            out.append(
                WorkerInfo(
                    id=wid,
                    host=parsed.host,
                    pid=parsed.pid,
                    queues=parsed.queue_list,
                    started=started.decode(errors="replace") if started else None,
                    heartbeat=beats.get(wid),
                    processed=_int(processed),
                    failed=_int(failed),
                    job=job,
                    job_raw=job_raw,
                )
            )
        return out

    def working(self) -> list[WorkerInfo]:
        return [w for w in self.workers() if w.job_raw]

    def pause_all(self) -> None:
        """Ruby's ``pause-all-workers`` key: every Ruby and resque-compat worker stops reserving."""
        self.redis.set(self.keys.pause_all, "true")

    def resume_all(self) -> None:
        self.redis.delete(self.keys.pause_all)

    def paused_all(self) -> bool:
        value = self.redis.get(self.keys.pause_all)
        return value is not None and value.decode(errors="replace").strip().lower() == "true"

    def control(self, worker_id: str, command: str) -> None:
        """Send pause / resume / stop / kill-job to one resque-compat worker, on any host."""
        if command not in ("pause", "resume", "stop", "kill-job"):
            raise ValueError(f"unknown worker command {command!r} (pause, resume, stop, kill-job)")
        self.redis.rpush(self.keys.control(worker_id), command)

    # -- stats --------------------------------------------------------------------
    def stat(self, name: str) -> int:
        return _int(self.redis.get(self.keys.stat(name)))

    def info(self) -> dict[str, Any]:
        """Ruby's ``Resque.info``."""
        sizes = self.queue_sizes()
        workers = self.workers()
        conn = self.redis.connection_pool.connection_kwargs
        server = f"redis://{conn.get('host', 'localhost')}:{conn.get('port', 6379)}/{conn.get('db', 0)}"
        if "path" in conn:
            server = f"unix://{conn['path']}"
        return {
            "pending": sum(sizes.values()),
            "processed": self.stat("processed"),
            "queues": len(sizes),
            "workers": len(workers),
            "working": sum(1 for w in workers if w.job_raw),
            "failed": self.stat("failed"),
            "servers": [server],
            "environment": os.environ.get("RAILS_ENV") or os.environ.get("RACK_ENV") or "development",
        }


def _int(value: bytes | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _queued(raw: bytes) -> QueuedJob:
    try:
        return QueuedJob(raw, JobPayload.decode(raw))
    except ProtocolError as exc:
        return QueuedJob(raw, None, str(exc))


def _check_name(what: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} name must be a non-empty string")


__all__ = ["QueuedJob", "Resque", "WorkerInfo", "decode_json"]
