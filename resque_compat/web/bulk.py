""" "Retry all" and "Clear retried" on failure lists of any length, without one long request.

Each runs in a thread of the web process, a batch at a time: one LRANGE and one short Lua
script per ``BATCH`` entries, so Redis is never held for long and the request that started
it returns at once. The failure page (and ``GET /api/tasks/<id>``) shows the progress.

Entries are matched by their bytes, as the one-entry actions are: an entry that changed or
moved since its batch was read is skipped, never acted on by position alone.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from resque_compat.client import Resque
from resque_compat.failures import decode_entry, removal_marker
from resque_compat.plans import requeue_commands, retry_plan
from resque_compat.protocol import ProtocolError
from resque_compat.protocol.scripts import MARK_BATCH, RETRY_BATCH
from resque_compat.replies import raw
from resque_compat.resp import queue_commands

#: entries per batch (one LRANGE + one script); small enough that a script runs for milliseconds
BATCH = 500
#: lists up to this long are done within the request (the answer carries the result)
INLINE_LIMIT = 2 * BATCH
#: finished tasks kept for their progress to be read
KEEP_FINISHED = 20


class BusyError(LookupError):
    """A bulk task already runs on that list."""


@dataclass
class Task:
    """One bulk run and its progress (JSON-ready through :meth:`as_dict`)."""

    id: str
    kind: str
    list: str
    namespace: str
    total: int
    processed: int = 0
    done_count: int = 0
    skipped: int = 0
    done: bool = False
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        end = self.finished if self.finished is not None else time.time()
        out["seconds"] = round(end - self.started, 3)
        out["percent"] = 100 if self.total == 0 else min(100, round(100 * self.processed / self.total))
        return out


_tasks: dict[str, Task] = {}
_lock = threading.Lock()


def get(task_id: str) -> Task | None:
    with _lock:
        return _tasks.get(task_id)


#: a finished task is shown on its list's page this long (seconds)
SHOWN_AFTER_DONE = 600.0


def for_list(namespace: str, list_name: str) -> list[Task]:
    """Running tasks on one list and those finished in the last SHOWN_AFTER_DONE s, newest first."""
    shown_since = time.time() - SHOWN_AFTER_DONE
    with _lock:
        found = [
            t
            for t in _tasks.values()
            if t.namespace == namespace and t.list == list_name and (t.finished is None or t.finished > shown_since)
        ]
    return sorted(found, key=lambda t: t.started, reverse=True)


def _start(resque: Resque, kind: str, list_name: str, work: Any) -> Task:
    total = resque.failures.count(list_name)
    with _lock:
        for task in _tasks.values():
            if task.namespace == resque.keys.namespace and task.list == list_name and not task.done:
                raise BusyError(f"a {task.kind} of {list_name!r} is already running ({task.processed}/{task.total})")
        task = Task(uuid.uuid4().hex[:16], kind, list_name, resque.keys.namespace, total)
        _tasks[task.id] = task
        finished = sorted((t for t in _tasks.values() if t.done), key=lambda t: t.started)
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del _tasks[old.id]
    if total <= INLINE_LIMIT:
        _run(task, work, resque)
        return task
    thread = threading.Thread(target=_run, args=(task, work, resque), name=f"resque-web-{kind}", daemon=True)
    thread.start()
    return task


def _run(task: Task, work: Any, resque: Resque) -> None:
    try:
        work(resque, task)
    except Exception as exc:  # the task reports any failure instead of dying silently
        task.error = f"{type(exc).__name__}: {exc}"
    finally:
        task.finished = time.time()
        task.done = True


def start_retry_all(resque: Resque, list_name: str) -> Task:
    return _start(resque, "retry_all", list_name, _retry_all)


def start_clear_retried(resque: Resque, list_name: str) -> Task:
    return _start(resque, "clear_retried", list_name, _clear_retried)


def _retry_all(resque: Resque, task: Task) -> None:
    keys = resque.keys
    key = keys.failed_list(task.list)
    script = resque.redis.register_script(RETRY_BATCH)
    for start in range(0, task.total, BATCH):
        items = [raw(i) for i in resque.redis.lrange(key, start, min(task.total, start + BATCH) - 1)]
        if not items:
            break
        args: list[Any] = [start, start + len(items) - 1]
        queue_keys: dict[str, int] = {}
        plans = []
        for offset, item in enumerate(items):
            entry = decode_entry(task.list, start + offset, item)
            if entry.record is None:
                task.skipped += 1
                continue
            try:
                payload, job, marked = retry_plan(entry.record)
            except ProtocolError:
                task.skipped += 1
                continue
            queue = entry.record.queue
            queue_keys.setdefault(keys.queue(queue), len(queue_keys) + 3)  # its KEYS index
            args += [entry.index, item, marked, queue, queue_keys[keys.queue(queue)], payload]
            plans.append((queue, payload, job))
        if plans:
            flags = script(keys=[key, keys.queues, *queue_keys], args=args)
            done = [plan for plan, flag in zip(plans, flags, strict=True) if flag]
            task.done_count += len(done)
            task.skipped += len(plans) - len(done)
            _statuses_back_to_waiting(resque, done)
        task.processed += len(items)


def _statuses_back_to_waiting(resque: Resque, done: list[Any]) -> None:
    """A retried tracked job's status returns to waiting, as a one-entry retry does."""
    tracked = [(queue, payload, job) for queue, payload, job in done if job.job_id]
    if not tracked:
        return
    pipe = resque.redis.pipeline(transaction=False)
    for _, _, job in tracked:
        pipe.get(resque.keys.status(job.job_id, job.status_prefix))
    currents = pipe.execute()
    for (queue, payload, job), current in zip(tracked, currents, strict=True):
        if current is None:
            continue
        # the push itself was done by the script: only the status's SET is left
        queue_commands(pipe, [c for c in requeue_commands(resque.keys, queue, payload, job, current) if c[0] == "SET"])
    pipe.execute()


def _clear_retried(resque: Resque, task: Task) -> None:
    key = resque.keys.failed_list(task.list)
    script = resque.redis.register_script(MARK_BATCH)
    marker = removal_marker()
    try:
        for start in range(0, task.total, BATCH):
            items = [raw(i) for i in resque.redis.lrange(key, start, min(task.total, start + BATCH) - 1)]
            if not items:
                break
            args: list[Any] = [marker, start, start + len(items) - 1]
            for offset, item in enumerate(items):
                entry = decode_entry(task.list, start + offset, item)
                if entry.record is not None and entry.record.retried_at:
                    args += [entry.index, item]
            if len(args) > 3:
                task.done_count += int(script(keys=[key], args=args))
            task.processed += len(items)
    finally:
        resque.redis.lrem(key, 0, marker)
