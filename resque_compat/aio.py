"""The client for asyncio apps (FastAPI, Starlette, aiohttp), on ``redis.asyncio``.

Same operations and the same bytes as :class:`resque_compat.client.Resque`: both take their
commands and decoders from :mod:`resque_compat.plans` and the protocol layer, and only
the awaiting differs.

>>> async with AsyncResque("redis://localhost:6379/0") as r:
...     job_id = await r.enqueue("default", "App\\\\Jobs\\\\SendMail", {"to": "a@b"}, track=True)
...     (await r.status(job_id)).status                     # 1 waiting … 4 complete
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from resque_compat import replies
from resque_compat.activejob.enqueue import active_job_plan
from resque_compat.client import default_namespace
from resque_compat.connection import RedisAddress, build_client, parse_address
from resque_compat.failures import (
    BULK_BATCH,
    BackendName,
    BatchOutcome,
    FailureEntry,
    FailureError,
    Requeue,
    changed_while_clearing,
    check_backend,
    clear_commands,
    decode_entry,
    default_backend,
    failure_list_name,
    mark_batch_args,
    not_a_list,
    removal_marker,
    retry_batch_call,
    save_commands,
    status_reads,
    status_resets,
)
from resque_compat.jobs.progress import DEFAULT_QUEUE, create_plan, read_status
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
    requeue_commands,
    retry_plan,
    server_url,
    stored_status_commands,
    worker_detail_commands,
    worker_row_commands,
    worker_state_commands,
)
from resque_compat.protocol import Failure, Keys, ProtocolError, StatusRecord
from resque_compat.protocol.keys import ANY_QUEUES_SET, FAILED_LIST, Stat
from resque_compat.protocol.progress import ResqueStatus
from resque_compat.protocol.scripts import MARK_BATCH, RETRY_BATCH, SET_OR_REMOVE_AT
from resque_compat.resp import Command, queue_commands
from resque_compat.scheduler.delayed import delay_to_time, schedule_plan


def connect_async(
    spec: str | RedisAddress | None = None, namespace: str | None = None, **options: Any
) -> aioredis.Redis:
    """An asyncio client for any address :func:`resque_compat.connection.parse_address` accepts
    (``namespace``: see :func:`resque_compat.connection.build_client`)."""
    client: aioredis.Redis = build_client(spec, aioredis.Redis, Sentinel, namespace, **options)
    return client


class AsyncFailures:
    """Recorded failures, read and acted on from asyncio (see :class:`resque_compat.failures.Failures`)."""

    def __init__(self, client: aioredis.Redis, keys: Keys, backend: BackendName = "redis") -> None:
        self.redis = client
        self.keys = keys
        self.backend = check_backend(backend)
        self._set_or_remove = client.register_script(SET_OR_REMOVE_AT)
        self._retry_batch = client.register_script(RETRY_BATCH)
        self._mark_batch = client.register_script(MARK_BATCH)

    def list_for(self, queue: str) -> str:
        return failure_list_name(self.backend, queue)

    async def list_names(self) -> list[str]:
        members = await self.redis.smembers(self.keys.failed_queues)
        return sorted({FAILED_LIST} | {replies.text(m) for m in members})

    async def count(self, list_name: str = FAILED_LIST) -> int:
        return int(await self.redis.llen(self.keys.failed_list(list_name)))

    async def all(self, start: int = 0, count: int = 20, list_name: str = FAILED_LIST) -> list[FailureEntry]:
        """A page of entries, oldest first (``start`` may be negative, as LRANGE's)."""
        if count <= 0:
            return []
        key = self.keys.failed_list(list_name)
        raws = [replies.raw(raw) for raw in await self.redis.lrange(key, start, start + count - 1)]
        first = start if start >= 0 else max(0, int(await self.redis.llen(key)) + start)
        return [decode_entry(list_name, first + i, raw) for i, raw in enumerate(raws)]

    async def get(self, index: int, list_name: str = FAILED_LIST) -> FailureEntry:
        raw = await self.redis.lindex(self.keys.failed_list(list_name), index)
        if raw is None:
            raise FailureError(f"no failure at index {index} in {list_name!r}")
        return decode_entry(list_name, index, replies.raw(raw))

    async def iter(self, list_name: str = FAILED_LIST, page: int = 500) -> AsyncIterator[FailureEntry]:
        start = 0
        while True:
            batch = await self.all(start, page, list_name)
            for entry in batch:
                yield entry
            if len(batch) < page:
                return
            start += page

    async def retry(self, index: int, list_name: str = FAILED_LIST) -> str:
        """Requeue one failure whole and mark it ``retried_at``; returns its queue."""
        entry = await self.get(index, list_name)
        if entry.record is None:
            raise FailureError(f"failure {index} is not a valid failure record: {entry.problem}")
        record = entry.record
        try:
            payload, job, marked = retry_plan(record)
        except ProtocolError as exc:
            raise FailureError(f"failure {index} holds no job payload ({exc}); fix it before retrying") from None
        key = self.keys.failed_list(list_name)
        if not await self._set_or_remove(keys=[key], args=[index, entry.raw, marked, "0"]):
            raise FailureError(f"failure {index} changed while retrying; list it again")
        job_id = job.job_id
        current = await self.redis.get(self.keys.status(job_id, job.status_prefix)) if job_id else None
        await _run(self.redis, requeue_commands(self.keys, record.queue, payload, job, current), transaction=False)
        return record.queue

    async def remove(self, index: int, list_name: str = FAILED_LIST) -> None:
        """Remove one entry, guarded against a list that shifted meanwhile."""
        entry = await self.get(index, list_name)
        key = self.keys.failed_list(list_name)
        if not await self._set_or_remove(keys=[key], args=[index, entry.raw, removal_marker(), "1"]):
            raise FailureError(f"failure {index} changed while removing; list it again")

    async def save(self, record: Failure, pipe: aioredis.client.Pipeline | None = None) -> None:
        """Record a failure (``stat:failed`` is the caller's, as in the sync client)."""
        commands = save_commands(self.keys, self.backend, record)
        if pipe is not None:
            queue_commands(pipe, commands)
        else:
            await _run(self.redis, commands, transaction=False)

    async def retry_all(
        self, list_name: str = FAILED_LIST, queue: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Requeue every entry (Ruby's ``requeue_all``; ``queue`` = ``requeue_queue``);
        ``progress(1)`` after each entry looked at."""
        done = 0
        for i in range(await self.count(list_name)):
            entry = await self.get(i, list_name)
            if entry.record is not None and (queue is None or entry.record.queue == queue):
                try:
                    await self.retry(i, list_name)
                    done += 1
                except FailureError:
                    pass
            if progress is not None:
                progress(1)
        return done

    async def clear(self, list_name: str = FAILED_LIST) -> int:
        """Delete a failure list; refused (nothing deleted) when the key is not a list."""
        key = self.keys.failed_list(list_name)
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            kind = replies.text(await pipe.type(key))
            if kind not in ("list", "none"):
                raise not_a_list(list_name, kind)
            pipe.multi()  # type: ignore[no-untyped-call]
            queue_commands(pipe, clear_commands(self.keys, list_name))
            try:
                return int((await pipe.execute())[0])
            except redis.WatchError:
                raise changed_while_clearing(list_name) from None

    async def clear_retried(self, list_name: str = FAILED_LIST) -> int:
        """Remove every entry that has been retried (has ``retried_at``)."""
        removed = 0
        index = 0
        while True:
            item = await self.redis.lindex(self.keys.failed_list(list_name), index)
            if item is None:
                return removed
            entry = decode_entry(list_name, index, replies.raw(item))
            if entry.record is not None and entry.record.retried_at:
                await self.remove(index, list_name)
                removed += 1
            else:
                index += 1

    async def retry_pages(self, list_name: str = FAILED_LIST, total: int | None = None) -> AsyncIterator[BatchOutcome]:
        """Requeue the first ``total`` entries a batch at a time (see ``Failures.retry_pages``)."""
        key = self.keys.failed_list(list_name)
        total = await self.count(list_name) if total is None else total
        for start in range(0, total, BULK_BATCH):
            end = min(total, start + BULK_BATCH) - 1
            items = [replies.raw(i) for i in await self.redis.lrange(key, start, end)]
            if not items:
                return
            call_keys, args, requeues, skipped = retry_batch_call(self.keys, list_name, start, items)
            done: list[Requeue] = []
            if requeues:
                flags = await self._retry_batch(keys=call_keys, args=args)
                done = [r for r, flag in zip(requeues, flags, strict=True) if flag]
                reads = status_reads(self.keys, done)
                if reads:
                    currents = await _run(self.redis, reads, transaction=False)
                    await _run(self.redis, status_resets(self.keys, done, currents), transaction=False)
            yield BatchOutcome(len(items), len(done), skipped + len(requeues) - len(done))

    async def clear_retried_pages(
        self, list_name: str = FAILED_LIST, total: int | None = None
    ) -> AsyncIterator[BatchOutcome]:
        """Remove the retried entries a batch at a time (see ``Failures.clear_retried_pages``)."""
        key = self.keys.failed_list(list_name)
        total = await self.count(list_name) if total is None else total
        marker = removal_marker()
        try:
            for start in range(0, total, BULK_BATCH):
                end = min(total, start + BULK_BATCH) - 1
                items = [replies.raw(i) for i in await self.redis.lrange(key, start, end)]
                if not items:
                    return
                args = mark_batch_args(list_name, marker, start, items)
                marked = int(await self._mark_batch(keys=[key], args=args)) if len(args) > 3 else 0
                yield BatchOutcome(len(items), marked, 0)
        finally:
            await self.redis.lrem(key, 0, marker)


async def _run(client: aioredis.Redis, commands: Sequence[Command], *, transaction: bool) -> list[Any]:
    pipe = client.pipeline(transaction=transaction)
    queue_commands(pipe, commands)
    result: list[Any] = await pipe.execute()
    return result


class AsyncResque:
    """A handle on one Resque deployment for asyncio code.

    Accepts what :class:`resque_compat.client.Resque` accepts (a URL or any address form,
    or an existing ``redis.asyncio.Redis``). Close it with ``await r.aclose()`` or use it as
    an ``async with`` block; a client passed in is left open.
    """

    def __init__(
        self,
        redis_client: aioredis.Redis | str | RedisAddress | None = None,
        namespace: str | None = None,
        failure_backend: BackendName | None = None,
    ) -> None:
        self._owns_client = not isinstance(redis_client, aioredis.Redis)
        if not isinstance(redis_client, aioredis.Redis) and not isinstance(redis_client, RedisAddress):
            redis_client = parse_address(redis_client)
        address_namespace = redis_client.namespace if isinstance(redis_client, RedisAddress) else None
        ns = namespace if namespace is not None else (address_namespace or default_namespace())
        # the namespace is known first: on Redis Cluster it picks the node to talk to
        self.redis = redis_client if isinstance(redis_client, aioredis.Redis) else connect_async(redis_client, ns)
        self.keys = Keys(ns)
        self.failures = AsyncFailures(self.redis, self.keys, failure_backend or default_backend())

    async def __aenter__(self) -> AsyncResque:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    # -- enqueue ----------------------------------------------------------------
    async def enqueue(self, queue: str, class_name: str, *args: Any, track: bool = False) -> str | None:
        """Push one job; returns its id when ``track`` is set (php-resque's status tracking)."""
        return (await self.enqueue_many(queue, [(class_name, args)], track=track))[0]

    async def enqueue_many(
        self, queue: str, jobs: Iterable[tuple[str, Sequence[Any]]], *, track: bool = False
    ) -> list[str | None]:
        """Push many jobs in one round trip (order kept)."""
        ids, commands = enqueue_plan(self.keys, queue, jobs, track=track)
        if commands:
            await _run(self.redis, commands, transaction=True)
        return ids

    async def enqueue_active_job(
        self,
        job_class: str,
        *args: Any,
        queue: str = "default",
        kwargs: Mapping[str, Any] | None = None,
        at: float | datetime | None = None,
        wait: float | None = None,
        **job: Any,
    ) -> str:
        """:meth:`resque_compat.client.Resque.enqueue_active_job`, the same bytes."""
        serialized, _, commands = active_job_plan(
            self.keys, job_class, args, kwargs, queue=queue, at=at, wait=wait, **job
        )
        await _run(self.redis, commands, transaction=True)
        return str(serialized.job_id)

    async def push_raw(self, queue: str, payload: bytes) -> None:
        """Push bytes as they are (a repaired payload, a peer's item)."""
        await _run(self.redis, push_raw_commands(self.keys, queue, payload), transaction=True)

    # -- delayed (resque-scheduler's layout) --------------------------------------------
    async def enqueue_at(self, at: float | int | datetime, queue: str, class_name: str, *args: Any) -> int | None:
        """Schedule a job for a resque-scheduler (Ruby, or ``resque-compat scheduler``) to
        enqueue at ``at`` (unix seconds or a datetime); returns the timestamp, or None when
        ``at`` is not in the future and the job was enqueued now. The same bytes as
        :meth:`resque_compat.scheduler.DelayedQueue.enqueue_at`."""
        ts, commands = schedule_plan(self.keys, at, queue, class_name, args)
        await _run(self.redis, commands, transaction=True)
        return ts

    async def enqueue_in(self, seconds: float, queue: str, class_name: str, *args: Any) -> int | None:
        """``enqueue_at(now + seconds, ...)``."""
        return await self.enqueue_at(delay_to_time(seconds), queue, class_name, *args)

    # -- queues -------------------------------------------------------------------
    async def queues(self) -> list[str]:
        return sorted(replies.text(m) for m in await self.redis.smembers(self.keys.queues))

    async def size(self, queue: str) -> int:
        return int(await self.redis.llen(self.keys.queue(queue)))

    async def queue_sizes(self) -> dict[str, int]:
        names = await self.queues()
        sizes = await _run(self.redis, [("LLEN", self.keys.queue(n)) for n in names], transaction=False)
        return dict(zip(names, (int(n) for n in sizes), strict=True))

    async def queue_kind(self, queue: str) -> str:
        """What ``queue:<name>`` holds: ``list``, ``none``, or whatever else a person or a bug put there."""
        return replies.text(await self.redis.type(self.keys.queue(queue)))

    async def peek(self, queue: str, start: int = 0, count: int = 1) -> list[QueuedJob]:
        """Items without removing them (LRANGE), decoded where they are jobs."""
        if count <= 0:
            return []
        raws = await self.redis.lrange(self.keys.queue(queue), start, start + count - 1)
        return [queued(replies.raw(raw)) for raw in raws]

    async def remove_queue(self, queue: str) -> None:
        await _run(self.redis, remove_queue_commands(self.keys, queue), transaction=True)

    async def destroy(self, queue: str, class_name: str, *args: Any) -> int:
        """:meth:`resque_compat.client.Resque.destroy`, the same commands."""
        if args:
            return int(await self.redis.lrem(self.keys.queue(queue), 0, destroy_payload(class_name, args)))  # type: ignore[arg-type]
        return await self._remove_matching(queue, class_matcher(class_name))

    async def dequeue(
        self, queue: str, class_name: str, *, job_id: str | None = None, args: dict[str, Any] | None = None
    ) -> int:
        """:meth:`resque_compat.client.Resque.dequeue` (php-resque's rules), the same commands."""
        return await self._remove_matching(queue, dequeue_matcher(class_name, job_id, args))

    async def _remove_matching(self, queue: str, matches: JobMatcher) -> int:
        key = self.keys.queue(queue)
        removed = 0
        start = 0
        while True:
            raws = [replies.raw(item) for item in await self.redis.lrange(key, start, start + REMOVE_PAGE - 1)]
            commands = removal_page(self.keys, queue, raws, matches)
            if commands:
                removed += sum(int(n) for n in await _run(self.redis, commands, transaction=False))
            if len(raws) < REMOVE_PAGE:
                return removed
            start += REMOVE_PAGE - len(commands)

    # -- status -------------------------------------------------------------------
    async def status(self, job_id: str, prefix: str = "") -> StatusRecord | None:
        """The php-resque status of a tracked job, or None when it is not tracked (or expired)."""
        raw = await self.redis.get(self.keys.status(job_id, prefix))
        return None if raw is None else StatusRecord.decode(raw)

    async def stored_status(self, job_id: str, prefix: str = "") -> StoredStatus | None:
        """A status key as stored, with its TTL, even when its bytes do not decode."""
        results = await _run(self.redis, stored_status_commands(self.keys, job_id, prefix), transaction=False)
        return decode_stored_status(results)

    async def follow_status(
        self, job_id: str, prefix: str = "", interval: float = 0.1, timeout: float | None = None
    ) -> AsyncIterator[StatusRecord]:
        """Yield the status record each time its number changes, until a final one (polls).

        Raises LookupError when the job is not tracked, TimeoutError after ``timeout`` s.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: int | None = None
        while True:
            record = await self.status(job_id, prefix)
            if record is None:
                raise LookupError(f"no status for job {job_id} (not tracked, or expired)")
            if record.status != last:
                last = record.status
                yield record
                if record.state is not None and record.state.final:
                    return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still has status {record.status} after {timeout} s")
            await asyncio.sleep(interval)

    async def create_status_job(
        self, class_name: str, options: dict[str, Any] | None = None, *, queue: str = DEFAULT_QUEUE
    ) -> str:
        """resque-status's ``MyJob.create(options)`` (the bytes of ``Resque.statuses.create``); the uuid."""
        uuid, commands = create_plan(self.keys, class_name, options, queue=queue)
        await _run(self.redis, commands, transaction=True)
        return uuid

    async def resque_status(self, uuid: str) -> ResqueStatus | None:
        """A resque-status record (``status:<uuid>``), or None."""
        return read_status(uuid, await self.redis.get(self.keys.resque_status(uuid)))

    async def kill_status_job(self, uuid: str) -> None:
        """Ask a resque-status job to stop at its next progress report (``SADD _kill``)."""
        await self.redis.sadd(self.keys.resque_status_kill, uuid)

    async def stop_tracking(self, job_id: str, prefix: str = "") -> None:
        await self.redis.delete(self.keys.status(job_id, prefix))

    # -- workers ------------------------------------------------------------------
    async def worker_ids(self) -> list[str]:
        return sorted(replies.text(m) for m in await self.redis.smembers(self.keys.workers))

    async def worker_count(self) -> int:
        return int(await self.redis.scard(self.keys.workers))

    async def workers(self) -> list[WorkerInfo]:
        """Every registered worker (any language) with its times, counters and job."""
        return await self.worker_rows(await self.worker_ids())

    async def worker_rows(self, ids: Sequence[str]) -> list[WorkerInfo]:
        """The rows of ``ids`` only (a page of a large deployment), in one round trip."""
        if not ids:
            return []
        return decode_workers(ids, await _run(self.redis, worker_row_commands(self.keys, ids), transaction=False))

    async def busy_workers(self, ids: Sequence[str]) -> dict[str, bytes]:
        """Which of ``ids`` hold a job, with their ``worker:<id>`` bytes (MGET in chunks)."""
        if not ids:
            return {}
        return decode_busy(ids, await _run(self.redis, busy_commands(self.keys, ids), transaction=False))

    async def worker_states(self, ids: Sequence[str], page: int = 1000) -> dict[str, str]:
        """Each worker's state (busy, idle, paused, shutting-down) without reading its job."""
        out: dict[str, str] = {}
        for start in range(0, len(ids), page):
            chunk = ids[start : start + page]
            results = await _run(self.redis, worker_state_commands(self.keys, chunk), transaction=False)
            out.update(decode_worker_states(chunk, results))
        return out

    async def worker_detail(self, worker_id: str) -> WorkerDetail | None:
        """One worker with its control list and node-resque's keys; None when not registered."""
        results = await _run(self.redis, worker_detail_commands(self.keys, worker_id), transaction=False)
        return decode_worker_detail(worker_id, results)

    async def working(self) -> list[WorkerInfo]:
        return [w for w in await self.workers() if w.job_raw]

    async def pause_all(self) -> None:
        await self.redis.set(self.keys.pause_all, "true")

    async def resume_all(self) -> None:
        await self.redis.delete(self.keys.pause_all)

    async def paused_all(self) -> bool:
        return is_true(await self.redis.get(self.keys.pause_all))

    async def control(self, worker_id: str, command: str) -> None:
        """Send a :class:`ControlCommand` (pause, resume, stop, kill-job) to one resque-compat
        worker, on any host; ValueError for any other word."""
        await self.redis.rpush(self.keys.control(worker_id), check_control(command).value)

    # -- the server -----------------------------------------------------------------
    async def ping(self) -> bool:
        """True when Redis answers (a Redis error otherwise)."""
        return bool(await self.redis.ping())

    async def server_info(self, section: str | None = None) -> dict[str, Any]:
        """Redis's INFO (one ``section``, or the default ones)."""
        info: dict[str, Any] = await (self.redis.info(section) if section else self.redis.info())
        return info

    async def namespace_used(self) -> bool:
        """Whether this namespace holds any of queues, workers, stat:processed, failed."""
        return bool((await _run(self.redis, [namespace_used_command(self.keys)], transaction=False))[0])

    async def namespaces(self) -> list[str]:
        """Every namespace holding a ``queues`` set (a SCAN of the whole database)."""
        return namespace_names([key async for key in self.redis.scan_iter(match=ANY_QUEUES_SET, count=1000)])

    # -- stats --------------------------------------------------------------------
    async def stat(self, name: str) -> int:
        return replies.to_int(await self.redis.get(self.keys.stat(name)))

    async def info(self) -> dict[str, Any]:
        """Ruby's ``Resque.info``."""
        server = server_url(self.redis.connection_pool.connection_kwargs)
        sizes = await self.queue_sizes()
        workers = await self.workers()
        return info_dict(sizes, workers, await self.stat(Stat.PROCESSED), await self.stat(Stat.FAILED), server)


__all__ = ["AsyncFailures", "AsyncResque", "connect_async"]
