"""The client: what a web app or an operator does with a Resque deployment.

It writes the exact bytes Ruby's ``Resque.enqueue`` writes (or php-resque's tracked form),
and reads whatever any peer wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis

from resque_compat.connection import RedisAddress, connect, parse_address
from resque_compat.failures import BackendName, Failures, default_backend
from resque_compat.jobs.progress import DEFAULT_QUEUE, ResqueStatuses
from resque_compat.jobs.retrying import PendingRetries
from resque_compat.plans import (
    REMOVE_PAGE,
    JobMatcher,
    QueuedJob,
    StoredStatus,
    WorkerDetail,
    WorkerInfo,
    busy_commands,
    check_control,
    class_matcher,
    decode_busy,
    decode_stored_status,
    decode_worker_detail,
    decode_worker_states,
    decode_workers,
    dequeue_matcher,
    destroy_payload,
    enqueue_plan,
    info_dict,
    is_true,
    namespace_names,
    namespace_used_command,
    push_raw_commands,
    queued,
    removal_page,
    remove_queue_commands,
    server_url,
    stored_status_commands,
    worker_detail_commands,
    worker_row_commands,
    worker_state_commands,
)
from resque_compat.protocol import (
    Keys,
    StatusRecord,
    decode_json,
)
from resque_compat.protocol.keys import ANY_QUEUES_SET, DEFAULT_NAMESPACE, Stat
from resque_compat.protocol.progress import ResqueStatus
from resque_compat.replies import raw, text, to_int
from resque_compat.resp import Command, queue_commands, transaction


def default_namespace() -> str:
    """``$RESQUE_NAMESPACE``, else php-resque's ``$PREFIX``, else ``resque``."""
    for var in ("RESQUE_NAMESPACE", "PREFIX"):
        value = os.environ.get(var)
        if value is not None:
            return value
    return DEFAULT_NAMESPACE


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
        if not isinstance(redis_client, redis.Redis) and not isinstance(redis_client, RedisAddress):
            redis_client = parse_address(redis_client)
        address_namespace = redis_client.namespace if isinstance(redis_client, RedisAddress) else None
        ns = namespace if namespace is not None else (address_namespace or default_namespace())
        # the namespace is known first: on Redis Cluster it picks the node to talk to
        self.redis = redis_client if isinstance(redis_client, redis.Redis) else connect(redis_client, ns)
        self.keys = Keys(ns)
        self.failures = Failures(self.redis, self.keys, failure_backend or default_backend())

    # -- enqueue ----------------------------------------------------------------
    def enqueue(self, queue: str, class_name: str, *args: Any, track: bool = False) -> str | None:
        """Push one job; returns its id when ``track`` is set (php-resque's status tracking)."""
        return self.enqueue_many(queue, [(class_name, args)], track=track)[0]

    def enqueue_many(
        self, queue: str, jobs: Iterable[tuple[str, Sequence[Any]]], *, track: bool = False
    ) -> list[str | None]:
        """Push many jobs in one MULTI/EXEC round trip (order kept): all land, or none."""
        ids, commands = enqueue_plan(self.keys, queue, jobs, track=track)
        if commands:
            transaction(self.redis, commands)
        return ids

    def enqueue_active_job(
        self,
        job_class: str,
        *args: Any,
        queue: str = "default",
        kwargs: Mapping[str, Any] | None = None,
        at: float | datetime | None = None,
        wait: float | None = None,
        **job: Any,
    ) -> str:
        """``JobClass.set(queue:, wait:).perform_later(*args, **kwargs)`` as a Rails app writes it,
        for a Rails worker (or ours) to run; returns the ActiveJob job id. ``at``/``wait``
        schedule it through resque-scheduler's layout (``enqueue_at_with_queue``); ``job``:
        ``job_id``, ``priority``, ``locale``, ``timezone``. Values as in
        :mod:`resque_compat.activejob.values`."""
        from resque_compat.activejob.enqueue import active_job_plan  # noqa: PLC0415 - loads the scheduler

        serialized, _, commands = active_job_plan(
            self.keys, job_class, args, kwargs, queue=queue, at=at, wait=wait, **job
        )
        pipe = self.redis.pipeline(transaction=True)
        queue_commands(pipe, commands)
        pipe.execute()
        return str(serialized.job_id)

    def push_raw(self, queue: str, payload: bytes) -> None:
        """Push bytes as they are (a repaired payload, a peer's item)."""
        pipe = self.redis.pipeline(transaction=True)
        queue_commands(pipe, push_raw_commands(self.keys, queue, payload))
        pipe.execute()

    # -- queues -------------------------------------------------------------------
    def queues(self) -> list[str]:
        return sorted(text(m) for m in self.redis.smembers(self.keys.queues))

    def size(self, queue: str) -> int:
        return int(self.redis.llen(self.keys.queue(queue)))

    def queue_sizes(self) -> dict[str, int]:
        names = self.queues()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.keys.queue(name))
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))

    def queue_kind(self, queue: str) -> str:
        """What ``queue:<name>`` holds: ``list``, ``none``, or whatever else a person or a bug put there."""
        return text(self.redis.type(self.keys.queue(queue)))

    def peek(self, queue: str, start: int = 0, count: int = 1) -> list[QueuedJob]:
        """Items without removing them (LRANGE), decoded where they are jobs."""
        if count <= 0:
            return []
        return [queued(raw(item)) for item in self.redis.lrange(self.keys.queue(queue), start, start + count - 1)]

    def remove_queue(self, queue: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        queue_commands(pipe, remove_queue_commands(self.keys, queue))
        pipe.execute()

    def destroy(self, queue: str, class_name: str, *args: Any) -> int:
        """Ruby's ``Resque::Job.destroy``: with args, remove items whose bytes equal Ruby's
        encoding of ``{class,args}``; without, every item of that class."""
        if args:
            return int(self.redis.lrem(self.keys.queue(queue), 0, destroy_payload(class_name, args)))  # type: ignore[arg-type]
        return self._remove_matching(queue, class_matcher(class_name))

    def dequeue(
        self, queue: str, class_name: str, *, job_id: str | None = None, args: dict[str, Any] | None = None
    ) -> int:
        """php-resque's ``Resque::dequeue`` rules: by class, by class + id, or by class +
        args (the job's ``args[0]`` values all found among ``args``'s values)."""
        return self._remove_matching(queue, dequeue_matcher(class_name, job_id, args))

    def _remove_matching(self, queue: str, matches: JobMatcher) -> int:
        """Scan in pages and LREM each matching item (see :func:`removal_page`)."""
        key = self.keys.queue(queue)
        removed = 0
        start = 0
        while True:
            raws = [raw(item) for item in self.redis.lrange(key, start, start + REMOVE_PAGE - 1)]
            commands = removal_page(self.keys, queue, raws, matches)
            if commands:
                pipe = self.redis.pipeline(transaction=False)
                queue_commands(pipe, commands)
                removed += sum(int(n) for n in pipe.execute())
            if len(raws) < REMOVE_PAGE:
                return removed
            start += REMOVE_PAGE - len(commands)

    # -- delayed (resque-scheduler's layout) --------------------------------------------
    def enqueue_at(self, at: float | int | datetime, queue: str, class_name: str, *args: Any) -> int | None:
        """Schedule a job for a resque-scheduler (Ruby, or ``resque-compat scheduler``) to
        enqueue at ``at`` (unix seconds or a datetime); returns the timestamp, or None when
        ``at`` is not in the future and the job was enqueued now. The same bytes as
        :meth:`resque_compat.scheduler.DelayedQueue.enqueue_at`."""
        from resque_compat.scheduler.delayed import schedule_plan  # noqa: PLC0415 - the scheduler imports the client

        ts, commands = schedule_plan(self.keys, at, queue, class_name, args)
        pipe = self.redis.pipeline(transaction=True)
        queue_commands(pipe, commands)
        pipe.execute()
        return ts

    def enqueue_in(self, seconds: float, queue: str, class_name: str, *args: Any) -> int | None:
        """``enqueue_at(now + seconds, ...)``."""
        from resque_compat.scheduler.delayed import delay_to_time  # noqa: PLC0415 - the scheduler imports the client

        return self.enqueue_at(delay_to_time(seconds), queue, class_name, *args)

    # -- status -------------------------------------------------------------------
    def status(self, job_id: str, prefix: str = "") -> StatusRecord | None:
        """The php-resque status of a tracked job, or None when it is not tracked (or expired)."""
        raw = self.redis.get(self.keys.status(job_id, prefix))
        return None if raw is None else StatusRecord.decode(raw)

    def stored_status(self, job_id: str, prefix: str = "") -> StoredStatus | None:
        """A status key as stored, with its TTL, even when its bytes do not decode."""
        return decode_stored_status(self._read(stored_status_commands(self.keys, job_id, prefix)))

    def follow_status(
        self, job_id: str, prefix: str = "", interval: float = 0.1, timeout: float | None = None
    ) -> Iterator[StatusRecord]:
        """Yield the status record each time its status number changes, until a final one.

        Polls (php-resque's status has no notification). Raises LookupError when the job is
        not tracked or its key vanishes, TimeoutError when ``timeout`` s pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: int | None = None
        while True:
            record = self.status(job_id, prefix)
            if record is None:
                raise LookupError(f"no status for job {job_id} (not tracked, or expired)")
            if record.status != last:
                last = record.status
                yield record
                if record.state is not None and record.state.final:
                    return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still has status {record.status} after {timeout} s")
            time.sleep(interval)

    @property
    def statuses(self) -> ResqueStatuses:
        """resque-status's records: ``create`` a job with options (returns its uuid), ``get``,
        ``records``, ``kill``, ``remove``, ``clear``."""
        return ResqueStatuses(self.redis, self.keys)

    @property
    def retries(self) -> PendingRetries:
        """Pending retries (jobs with a ``Retry`` policy): ``entries``, ``retry_now``, ``give_up``."""
        return PendingRetries(self.redis, self.keys, self.failures.backend)

    def create_status_job(
        self, class_name: str, options: dict[str, Any] | None = None, *, queue: str = DEFAULT_QUEUE
    ) -> str:
        """resque-status's ``MyJob.create(options)``; the uuid (``statuses.create``)."""
        return self.statuses.create(class_name, options, queue=queue)

    def resque_status(self, uuid: str) -> ResqueStatus | None:
        """A resque-status record (``status:<uuid>``), or None."""
        return self.statuses.get(uuid)

    def kill_status_job(self, uuid: str) -> None:
        """Ask a resque-status job to stop at its next progress report (``SADD _kill``)."""
        self.statuses.kill(uuid)

    def stop_tracking(self, job_id: str, prefix: str = "") -> None:
        """php-resque's ``Resque_Job_Status::stop``."""
        self.redis.delete(self.keys.status(job_id, prefix))

    # -- workers ------------------------------------------------------------------
    def worker_ids(self) -> list[str]:
        return sorted(text(m) for m in self.redis.smembers(self.keys.workers))

    def worker_count(self) -> int:
        return int(self.redis.scard(self.keys.workers))

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker with its start time, heartbeat, counters and job."""
        return self.worker_rows(self.worker_ids())

    def worker_rows(self, ids: Sequence[str]) -> list[WorkerInfo]:
        """The rows of ``ids`` only (a page of a large deployment), in one round trip."""
        if not ids:
            return []
        return decode_workers(ids, self._read(worker_row_commands(self.keys, ids)))

    def busy_workers(self, ids: Sequence[str]) -> dict[str, bytes]:
        """Which of ``ids`` hold a job, with their ``worker:<id>`` bytes (MGET in chunks)."""
        return decode_busy(ids, self._read(busy_commands(self.keys, ids))) if ids else {}

    def worker_states(self, ids: Sequence[str], page: int = 1000) -> dict[str, str]:
        """Each worker's state (busy, idle, paused, shutting-down) without reading its job,
        ``page`` workers a round trip."""
        out: dict[str, str] = {}
        for start in range(0, len(ids), page):
            chunk = ids[start : start + page]
            out.update(decode_worker_states(chunk, self._read(worker_state_commands(self.keys, chunk))))
        return out

    def worker_detail(self, worker_id: str) -> WorkerDetail | None:
        """One worker with its control list and node-resque's keys; None when not registered."""
        return decode_worker_detail(worker_id, self._read(worker_detail_commands(self.keys, worker_id)))

    def working(self) -> list[WorkerInfo]:
        return [w for w in self.workers() if w.job_raw]

    def pause_all(self) -> None:
        """Ruby's ``pause-all-workers`` key: every Ruby and resque-compat worker stops reserving."""
        self.redis.set(self.keys.pause_all, "true")

    def resume_all(self) -> None:
        self.redis.delete(self.keys.pause_all)

    def paused_all(self) -> bool:
        return is_true(self.redis.get(self.keys.pause_all))

    def control(self, worker_id: str, command: str) -> None:
        """Send a :class:`ControlCommand` (pause, resume, stop, kill-job) to one resque-compat
        worker, on any host; ValueError for any other word."""
        self.redis.rpush(self.keys.control(worker_id), check_control(command).value)

    # -- the server -----------------------------------------------------------------
    def ping(self) -> bool:
        """True when Redis answers (a Redis error otherwise)."""
        return bool(self.redis.ping())

    def server_info(self, section: str | None = None) -> dict[str, Any]:
        """Redis's INFO (one ``section``, or the default ones)."""
        info: dict[str, Any] = self.redis.info(section) if section else self.redis.info()
        return info

    def namespace_used(self) -> bool:
        """Whether this namespace holds any of queues, workers, stat:processed, failed."""
        return bool(self._read([namespace_used_command(self.keys)])[0])

    def namespaces(self) -> list[str]:
        """Every namespace holding a ``queues`` set (a SCAN of the whole database)."""
        return namespace_names(self.redis.scan_iter(match=ANY_QUEUES_SET, count=1000))

    def _read(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        queue_commands(pipe, commands)
        return pipe.execute()

    # -- stats --------------------------------------------------------------------
    def stat(self, name: str) -> int:
        return to_int(self.redis.get(self.keys.stat(name)))

    def info(self) -> dict[str, Any]:
        """Ruby's ``Resque.info``."""
        server = server_url(self.redis.connection_pool.connection_kwargs)
        return info_dict(self.queue_sizes(), self.workers(), self.stat(Stat.PROCESSED), self.stat(Stat.FAILED), server)


__all__ = ["QueuedJob", "Resque", "WorkerInfo", "decode_json"]
