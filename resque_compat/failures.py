"""Recorded failures: reading, retrying, removing and clearing them (:class:`Failures`).

Where a failure is recorded is Ruby's choice of failure backend, a name here
(:data:`BACKENDS`): ``redis`` (the default, Ruby's ``Failure::Redis``) keeps one ``failed``
list; ``redis_multi_queue`` (Ruby's ``Failure::RedisMultiQueue``) keeps ``<queue>_failed``
lists named in the ``failed_queues`` set. Both are read by resque-web and by Ruby's Failure API.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis

from resque_compat.plans import requeue_commands, retry_plan
from resque_compat.protocol import Failure, JobPayload, Keys, ProtocolError
from resque_compat.protocol.keys import FAILED_LIST
from resque_compat.protocol.scripts import MARK_BATCH, RETRY_BATCH, SET_OR_REMOVE_AT
from resque_compat.replies import raw, text
from resque_compat.resp import Command, queue_commands

BackendName = Literal["redis", "redis_multi_queue"]
BACKENDS: tuple[BackendName, ...] = ("redis", "redis_multi_queue")


class FailureError(LookupError):
    """A failure operation that cannot be done (no such entry, entry changed, not a job)."""


@dataclass(frozen=True)
class FailureEntry:
    """One stored failure: its position, its bytes, and the record (None if broken)."""

    list_name: str
    index: int
    raw: bytes
    record: Failure | None
    problem: str | None = None

    @property
    def broken(self) -> bool:
        return self.record is None


def check_backend(backend: str) -> BackendName:
    if backend not in BACKENDS:
        raise ValueError(f"unknown failure backend {backend!r} (choose {', '.join(BACKENDS)})")
    return backend


def default_backend() -> BackendName:
    """``$FAILURE_BACKEND`` (Ruby's variable), else ``redis``."""
    return check_backend(os.environ.get("FAILURE_BACKEND") or "redis")


def decode_entry(list_name: str, index: int, raw: bytes) -> FailureEntry:
    """A stored failure at ``index``; a broken record comes back with its problem, never raises."""
    try:
        return FailureEntry(list_name, index, raw, Failure.decode(raw))
    except ProtocolError as exc:
        return FailureEntry(list_name, index, raw, None, str(exc))


def removal_marker() -> str:
    """What a removed entry is set to before the LREM: unique, so no other entry can match it."""
    return f"resque-compat:removed:{uuid.uuid4().hex}"


def clear_commands(keys: Keys, list_name: str) -> list[Command]:
    """LLEN (the count cleared), UNLINK, and for a multi-queue list its ``failed_queues`` entry."""
    key = keys.failed_list(list_name)
    commands: list[Command] = [("LLEN", key), ("UNLINK", key)]  # UNLINK: a million entries freed off-thread
    if list_name != FAILED_LIST:
        commands.append(("SREM", keys.failed_queues, list_name))
    return commands


def save_commands(keys: Keys, backend: BackendName, record: Failure) -> list[Command]:
    """Record a failure: RPUSH onto its list, and a multi-queue list named in ``failed_queues``."""
    name = failure_list_name(backend, record.queue)
    commands: list[Command] = [] if name == FAILED_LIST else [("SADD", keys.failed_queues, name)]
    return [*commands, ("RPUSH", keys.failed_list(name), record.encode())]


def not_a_list(list_name: str, kind: str) -> FailureError:
    return FailureError(f"{list_name!r} is not a failure list (it holds a {kind}); nothing cleared")


def changed_while_clearing(list_name: str) -> FailureError:
    return FailureError(f"{list_name!r} changed type while clearing; nothing cleared")


#: entries per batch of the paged bulk operations (one LRANGE and one short script each), small
#: enough that a script holds Redis for milliseconds
BULK_BATCH = 500


@dataclass(frozen=True)
class BatchOutcome:
    """One batch of :meth:`Failures.retry_pages` or :meth:`Failures.clear_retried_pages`:
    entries looked at, acted on, and skipped (not a job, or changed since the batch was read)."""

    processed: int
    done: int
    skipped: int


#: a retried entry's queue, payload bytes and job, in the order of its RETRY_BATCH arguments
Requeue = tuple[str, bytes, JobPayload]


def retry_batch_call(
    keys: Keys, list_name: str, start: int, items: Sequence[bytes]
) -> tuple[list[str], list[Any], list[Requeue], int]:
    """KEYS and ARGV of one ``RETRY_BATCH`` over ``items`` (read from ``start``), the requeues in
    its order, and how many items are skipped as not jobs. Each queue list it pushes to is in KEYS."""
    args: list[Any] = [start, start + len(items) - 1]
    queue_keys: dict[str, int] = {}
    requeues: list[Requeue] = []
    skipped = 0
    for offset, item in enumerate(items):
        entry = decode_entry(list_name, start + offset, item)
        if entry.record is None:
            skipped += 1
            continue
        try:
            payload, job, marked = retry_plan(entry.record)
        except ProtocolError:
            skipped += 1
            continue
        queue = entry.record.queue
        index = queue_keys.setdefault(keys.queue(queue), len(queue_keys) + 3)  # its KEYS index
        args += [entry.index, item, marked, queue, index, payload]
        requeues.append((queue, payload, job))
    return [keys.failed_list(list_name), keys.queues, *queue_keys], args, requeues, skipped


def status_reads(keys: Keys, requeued: Sequence[Requeue]) -> list[Command]:
    """GET the status of every tracked job among ``requeued``."""
    return [("GET", keys.status(job.job_id, job.status_prefix)) for _, _, job in requeued if job.job_id]


def status_resets(keys: Keys, requeued: Sequence[Requeue], currents: Sequence[Any]) -> list[Command]:
    """A retried tracked job's status returns to waiting, as a one-entry retry does (the push
    itself was the script's: only the status's SET is left). ``currents``: :func:`status_reads`' replies."""
    tracked = [r for r in requeued if r[2].job_id]
    commands: list[Command] = []
    for (queue, payload, job), current in zip(tracked, currents, strict=True):
        if current is not None:
            commands += [c for c in requeue_commands(keys, queue, payload, job, current) if c[0] == "SET"]
    return commands


def mark_batch_args(list_name: str, marker: str, start: int, items: Sequence[bytes]) -> list[Any]:
    """ARGV of one ``MARK_BATCH``: the entries among ``items`` that were retried, by index and bytes."""
    args: list[Any] = [marker, start, start + len(items) - 1]
    for offset, item in enumerate(items):
        entry = decode_entry(list_name, start + offset, item)
        if entry.record is not None and entry.record.retried_at:
            args += [entry.index, item]
    return args


def failure_list_name(backend: BackendName, queue: str) -> str:
    """The failure list (without namespace) a failure of ``queue`` goes to under ``backend``."""
    return Keys.failed_queue_name(queue) if backend == "redis_multi_queue" else FAILED_LIST


class Failures:
    """Read and act on recorded failures. ``backend`` decides where new ones go."""

    def __init__(self, client: redis.Redis, keys: Keys, backend: BackendName = "redis") -> None:
        self.redis = client
        self.keys = keys
        self.backend = check_backend(backend)
        self._set_or_remove = client.register_script(SET_OR_REMOVE_AT)
        self._retry_batch = client.register_script(RETRY_BATCH)
        self._mark_batch = client.register_script(MARK_BATCH)

    # -- where failures live ------------------------------------------------------
    def list_for(self, queue: str) -> str:
        """The failure list name (without namespace) a failure of ``queue`` goes to."""
        return failure_list_name(self.backend, queue)

    def list_names(self) -> list[str]:
        """Every failure list there is: ``failed`` plus the multi-queue ones."""
        names = {FAILED_LIST} | {text(m) for m in self.redis.smembers(self.keys.failed_queues)}
        return sorted(names)

    def save(self, record: Failure, pipe: redis.client.Pipeline | None = None) -> None:
        """Record a failure (the ``stat:failed`` counters are the caller's: Ruby counts only
        exceptions raised inside the job, not dirty exits)."""
        target = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        queue_commands(target, save_commands(self.keys, self.backend, record))
        if pipe is None:
            target.execute()

    # -- reading ------------------------------------------------------------------
    def count(self, list_name: str = FAILED_LIST) -> int:
        return int(self.redis.llen(self.keys.failed_list(list_name)))

    def all(self, start: int = 0, count: int = 20, list_name: str = FAILED_LIST) -> list[FailureEntry]:
        """A page of entries, oldest first (``start`` may be negative, as LRANGE's)."""
        if count <= 0:
            return []
        key = self.keys.failed_list(list_name)
        raws = [raw(item) for item in self.redis.lrange(key, start, start + count - 1)]
        first = start if start >= 0 else max(0, int(self.redis.llen(key)) + start)
        return [decode_entry(list_name, first + i, raw) for i, raw in enumerate(raws)]

    def get(self, index: int, list_name: str = FAILED_LIST) -> FailureEntry:
        item = self.redis.lindex(self.keys.failed_list(list_name), index)
        if item is None:
            raise FailureError(f"no failure at index {index} in {list_name!r}")
        return decode_entry(list_name, index, raw(item))

    def iter(self, list_name: str = FAILED_LIST, page: int = 500) -> Iterator[FailureEntry]:
        start = 0
        while True:
            batch = self.all(start, page, list_name)
            yield from batch
            if len(batch) < page:
                return
            start += page

    # -- acting -------------------------------------------------------------------
    def retry(self, index: int, list_name: str = FAILED_LIST) -> str:
        """Requeue one failure and mark it with ``retried_at``; returns the queue.

        Unlike Ruby (which re-pushes only ``{class,args}``) the original payload bytes are
        pushed back whole, so a php-resque job keeps its id and its status tracking.
        """
        entry = self.get(index, list_name)
        record = self._require_record(entry)
        try:
            payload, job, marked = retry_plan(record)
        except ProtocolError as exc:
            raise FailureError(f"failure {index} holds no job payload ({exc}); fix it before retrying") from None
        if not self._set_or_remove(keys=[self.keys.failed_list(list_name)], args=[index, entry.raw, marked, "0"]):
            raise FailureError(f"failure {index} changed while retrying; list it again")
        self._requeue(record.queue, payload, job)
        return record.queue

    def _requeue(self, queue: str, payload: bytes, job: JobPayload) -> None:
        job_id = job.job_id
        current = self.redis.get(self.keys.status(job_id, job.status_prefix)) if job_id else None
        pipe = self.redis.pipeline(transaction=False)
        queue_commands(pipe, requeue_commands(self.keys, queue, payload, job, current))
        pipe.execute()

    def remove(self, index: int, list_name: str = FAILED_LIST) -> None:
        """Remove one entry (Ruby's LSET-marker + LREM, guarded against a shifted list)."""
        entry = self.get(index, list_name)
        marker = removal_marker()
        if not self._set_or_remove(keys=[self.keys.failed_list(list_name)], args=[index, entry.raw, marker, "1"]):
            raise FailureError(f"failure {index} changed while removing; list it again")

    def retry_all(
        self, list_name: str = FAILED_LIST, queue: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Requeue every entry (Ruby's ``requeue_all``; ``queue`` = ``requeue_queue``);
        ``progress(1)`` after each entry looked at."""
        done = 0
        for i in range(self.count(list_name)):
            done += self._retry_matching(i, list_name, queue)
            if progress is not None:
                progress(1)
        return done

    def _retry_matching(self, index: int, list_name: str, queue: str | None) -> int:
        entry = self.get(index, list_name)
        if entry.record is None or (queue is not None and entry.record.queue != queue):
            return 0
        try:
            self.retry(index, list_name)
        except FailureError:
            return 0
        return 1

    def clear(self, list_name: str = FAILED_LIST) -> int:
        """Delete a failure list; refused (nothing deleted) when the key is not a list."""
        key = self.keys.failed_list(list_name)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.watch(key)  # type: ignore[no-untyped-call]
            kind = text(pipe.type(key))
            if kind not in ("list", "none"):
                raise not_a_list(list_name, kind)
            pipe.multi()
            queue_commands(pipe, clear_commands(self.keys, list_name))
            try:
                return int(pipe.execute()[0])
            except redis.WatchError:
                raise changed_while_clearing(list_name) from None

    def clear_retried(self, list_name: str = FAILED_LIST) -> int:
        """Remove every entry that has been retried (has ``retried_at``)."""
        removed = 0
        index = 0
        while True:
            item = self.redis.lindex(self.keys.failed_list(list_name), index)
            if item is None:
                return removed
            entry = decode_entry(list_name, index, raw(item))
            if entry.record is not None and entry.record.retried_at:
                self.remove(index, list_name)
                removed += 1
            else:
                index += 1

    # -- paged bulk operations (the dashboard's Retry all / Clear retried) -------------------
    def retry_pages(self, list_name: str = FAILED_LIST, total: int | None = None) -> Iterator[BatchOutcome]:
        """Requeue the first ``total`` entries (all by default), a batch at a time, yielding each
        batch's outcome. Entries are matched by their bytes: one that changed is skipped."""
        key = self.keys.failed_list(list_name)
        total = self.count(list_name) if total is None else total
        for start in range(0, total, BULK_BATCH):
            end = min(total, start + BULK_BATCH) - 1
            items = [raw(i) for i in self.redis.lrange(key, start, end)]
            if not items:
                return
            call_keys, args, requeues, skipped = retry_batch_call(self.keys, list_name, start, items)
            done: list[Requeue] = []
            if requeues:
                flags = self._retry_batch(keys=call_keys, args=args)
                done = [r for r, flag in zip(requeues, flags, strict=True) if flag]
                self._statuses_back_to_waiting(done)
            yield BatchOutcome(len(items), len(done), skipped + len(requeues) - len(done))

    def _statuses_back_to_waiting(self, requeued: list[Requeue]) -> None:
        reads = status_reads(self.keys, requeued)
        if reads:
            pipe = self.redis.pipeline(transaction=False)
            queue_commands(pipe, reads)
            queue_commands(pipe, status_resets(self.keys, requeued, pipe.execute()))
            pipe.execute()

    def clear_retried_pages(self, list_name: str = FAILED_LIST, total: int | None = None) -> Iterator[BatchOutcome]:
        """Remove the retried entries among the first ``total`` (all by default), a batch at a
        time, yielding each batch's outcome. Matched entries become one marker, removed by a
        single LREM once the walk ends (or stops), so indexes never shift under it."""
        key = self.keys.failed_list(list_name)
        total = self.count(list_name) if total is None else total
        marker = removal_marker()
        try:
            for start in range(0, total, BULK_BATCH):
                end = min(total, start + BULK_BATCH) - 1
                items = [raw(i) for i in self.redis.lrange(key, start, end)]
                if not items:
                    return
                args = mark_batch_args(list_name, marker, start, items)
                marked = int(self._mark_batch(keys=[key], args=args)) if len(args) > 3 else 0
                yield BatchOutcome(len(items), marked, 0)
        finally:
            self.redis.lrem(key, 0, marker)

    @staticmethod
    def _require_record(entry: FailureEntry) -> Failure:
        if entry.record is None:
            raise FailureError(f"failure {entry.index} is not a valid failure record: {entry.problem}")
        return entry.record
