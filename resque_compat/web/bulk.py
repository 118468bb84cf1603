""" "Retry all" and "Clear retried" on failure lists of any length, without one long request.

Each runs in a thread of the web process through :meth:`resque_compat.failures.Failures.retry_pages`
and ``clear_retried_pages``: a batch at a time, one LRANGE and one short Lua script per batch, so
Redis is never held for long and the request that started it returns at once. The failure page
(and ``GET /api/tasks/<id>``) shows the progress.

Entries are matched by their bytes, as the one-entry actions are: an entry that changed or
moved since its batch was read is skipped, never acted on by position alone.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from resque_compat.client import Resque
from resque_compat.failures import BULK_BATCH, BatchOutcome

#: lists up to this long are done within the request (the answer carries the result)
INLINE_LIMIT = 2 * BULK_BATCH
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
    _follow(task, resque.failures.retry_pages(task.list, task.total))


def _clear_retried(resque: Resque, task: Task) -> None:
    _follow(task, resque.failures.clear_retried_pages(task.list, task.total))


def _follow(task: Task, batches: Iterator[BatchOutcome]) -> None:
    for batch in batches:
        task.done_count += batch.done
        task.skipped += batch.skipped
        task.processed += batch.processed
