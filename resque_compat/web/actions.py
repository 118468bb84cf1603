"""Every state-changing thing the dashboard does: one function per action, each returning
a JSON-ready result with a one-line ``message`` for the page's notice.

The HTML forms and the JSON API both call these; bad input raises :class:`BadRequestError`,
an entry that moved or vanished raises :class:`ConflictError`, so nothing acts on the wrong item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from resque_compat.client import Resque
from resque_compat.failures import FailureError
from resque_compat.jobs.progress import STATUS_FILTERS
from resque_compat.jobs.retrying import NoPendingRetryError, RetryError
from resque_compat.protocol import ProtocolError, ScheduleEntry, encode_json, inputs
from resque_compat.protocol.control import ControlCommand
from resque_compat.protocol.keys import FAILED_LIST, Keys
from resque_compat.scheduler.delayed import DelayedJob, DelayedQueue
from resque_compat.scheduler.recurring import ScheduleStore, job_args
from resque_compat.web import bulk, present, schedule
from resque_compat.web.data import BadRequestError, NotFoundError

__all__ = ["BadRequestError", "ConflictError", "NotFoundError"]


class ConflictError(LookupError):
    """The target changed since the page was drawn (a failure list shifted, an entry went)."""


def failure_list(resque: Resque, name: object) -> str:
    """A failure-list name from a request: ``failed`` or a ``<queue>_failed`` list named in
    ``failed_queues`` (redis_multi_queue). Anything else is refused, so a request can never
    make a failure action touch a queue, a worker or any other key."""
    if not isinstance(name, str):
        raise BadRequestError(f"list must be a string, got {type(name).__name__}")
    if name == FAILED_LIST:
        return name
    if Keys.is_failed_queue_name(name) and name in resque.failures.list_names():
        return name
    raise NotFoundError(f"no failure list {name!r} (failure lists: failed and the members of failed_queues)")


def text_param(params: Mapping[str, Any], key: str, default: str = "") -> str:
    """A string field of a form or a JSON body; a number, list or object is refused, never
    turned into its repr."""
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequestError(f"{key} must be a string, got {type(value).__name__}")
    return value


def _index(value: Any) -> int:
    if isinstance(value, (bool, float)):
        raise BadRequestError(f"index must be an integer, got {value!r}")
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise BadRequestError(f"index must be an integer, got {str(value)[:40]!r}") from None
    if index < 0:
        raise BadRequestError("index must not be negative")
    return index


def _checked(resque: Resque, list_name: str, index: int, expected: str | None) -> None:
    """Refuse to act when the entry at ``index`` is not the one the user saw."""
    try:
        entry = resque.failures.get(index, list_name)
    except FailureError as exc:
        raise ConflictError(str(exc)) from None
    if expected and present.digest(entry.raw) != expected:
        raise ConflictError(f"failure {index} in {list_name!r} changed since the page was shown; reload and try again")


def remove_queue(resque: Resque, name: str) -> dict[str, Any]:
    kind = resque.queue_kind(name)
    if kind not in ("list", "none"):
        raise ConflictError(f"{Keys.queue_name_key(name)} is not a queue (it holds a {kind}); nothing removed")
    if kind == "none" and name not in resque.queues():
        raise NotFoundError(f"no queue {name!r}")
    size = resque.size(name)
    resque.remove_queue(name)
    return {"message": f"Removed queue {name} ({size} jobs)", "queue": name, "removed": size}


def retry_failure(resque: Resque, list_name: str, index: Any, digest: str | None = None) -> dict[str, Any]:
    list_name = failure_list(resque, list_name)
    i = _index(index)
    _checked(resque, list_name, i, digest)
    try:
        queue = resque.failures.retry(i, list_name)
    except FailureError as exc:
        raise ConflictError(str(exc)) from None
    return {"message": f"Retried failure {i}: queued again on {queue}", "queue": queue, "index": i}


def remove_failure(resque: Resque, list_name: str, index: Any, digest: str | None = None) -> dict[str, Any]:
    list_name = failure_list(resque, list_name)
    i = _index(index)
    _checked(resque, list_name, i, digest)
    try:
        resque.failures.remove(i, list_name)
    except FailureError as exc:
        raise ConflictError(str(exc)) from None
    return {"message": f"Removed failure {i}", "index": i}


def _bulk(
    resque: Resque, list_name: str, start: Callable[[Resque, str], bulk.Task], *, done: str, running: str, field: str
) -> dict[str, Any]:
    """Start a batched bulk task on a failure list; the answer carries it (and its result when it
    finished within the request). ``done``/``running`` are formatted with the task's fields."""
    list_name = failure_list(resque, list_name)
    try:
        task = start(resque, list_name)
    except bulk.BusyError as exc:
        raise ConflictError(str(exc)) from None
    if task.done:
        message = done.format(n=task.done_count) + (f" (failed: {task.error})" if task.error else "")
    else:
        message = running.format(n=task.total)
    return {"message": message, field: task.done_count if task.done else None, "task": task.as_dict()}


def retry_all(resque: Resque, list_name: str) -> dict[str, Any]:
    """Start retrying every entry in the background (batched; see :mod:`resque_compat.web.bulk`)."""
    return _bulk(
        resque,
        list_name,
        bulk.start_retry_all,
        done="Retried {n} failures",
        running="Retrying {n} failures in the background",
        field="retried",
    )


def clear_failures(resque: Resque, list_name: str) -> dict[str, Any]:
    list_name = failure_list(resque, list_name)
    try:
        removed = resque.failures.clear(list_name)
    except FailureError as exc:
        raise ConflictError(str(exc)) from None
    return {"message": f"Cleared {removed} failures", "removed": removed}


def clear_retried(resque: Resque, list_name: str) -> dict[str, Any]:
    """Start removing the retried entries in the background (batched)."""
    return _bulk(
        resque,
        list_name,
        bulk.start_clear_retried,
        done="Removed {n} retried failures",
        running="Removing retried failures among {n} in the background",
        field="removed",
    )


def control_worker(resque: Resque, worker_id: str, command: str) -> dict[str, Any]:
    """Queue a command for one worker; only resque-compat workers read their control key."""
    if ControlCommand.parse(command) is None:
        raise BadRequestError(f"unknown worker command {command!r} ({', '.join(ControlCommand.words())})")
    if resque.worker_detail(worker_id) is None:
        raise ConflictError(f"no worker {worker_id!r} is registered")
    resque.control(worker_id, command)
    return {"message": f"Sent {command} to {worker_id}", "worker": worker_id, "command": command}


def pause_all(resque: Resque) -> dict[str, Any]:
    resque.pause_all()
    return {"message": "Paused all workers (pause-all-workers is set)", "paused_all": True}


def resume_all(resque: Resque) -> dict[str, Any]:
    resque.resume_all()
    return {"message": "Resumed all workers (pause-all-workers is cleared)", "paused_all": False}


def enqueue(resque: Resque, queue: Any, class_name: Any, args: Any, track: bool) -> dict[str, Any]:
    """Enqueue from the form: ``args`` is a JSON array (text from a form, a list from the API).
    Names must be strings and args plain JSON (finite numbers, bounded nesting)."""
    if queue is not None and not isinstance(queue, str):
        raise BadRequestError(f"queue must be a string, got {type(queue).__name__}")
    if class_name is not None and not isinstance(class_name, str):
        raise BadRequestError(f"class must be a string, got {type(class_name).__name__}")
    queue = (queue or "").strip()
    class_name = (class_name or "").strip()
    if not queue or not class_name:
        raise BadRequestError("queue and class are required")
    try:
        if isinstance(args, str):
            args = inputs.parse_json_input(args.strip() or "[]", "args")
        else:
            inputs.check_json_value(args, "args")
    except inputs.InputError as exc:
        raise BadRequestError(str(exc)) from None
    if not isinstance(args, list):
        raise BadRequestError('args must be a JSON array, e.g. [1, "two"]')
    job_id = resque.enqueue(queue, class_name, *args, track=track)
    message = f"Enqueued {class_name} on {queue}" + (f" (job id {job_id})" if job_id else "")
    return {"message": message, "queue": queue, "class": class_name, "id": job_id}


# -- the Schedule and Delayed tabs -------------------------------------------------------
def _schedule_entry(resque: Resque, name: str) -> ScheduleEntry:
    if not name:
        raise BadRequestError("a schedule name is required")
    stored = ScheduleStore(resque).stored_entry(name)
    if stored is None:
        raise ConflictError(f"no schedule {name!r} (only persisted, dynamic schedules are visible here)")
    try:
        return ScheduleEntry.decode(stored)
    except ProtocolError as exc:
        raise ConflictError(f"schedule {name!r} is unreadable: {exc}") from None


def requeue_schedule(resque: Resque, name: str) -> dict[str, Any]:
    """ "Queue now": enqueue the schedule's job once, as the scheduler would when it fires."""
    entry = _schedule_entry(resque, name)
    class_name = entry.class_ if isinstance(entry.class_, str) else None
    queue = entry.queue if isinstance(entry.queue, str) else None
    if not class_name or not queue:
        raise ConflictError(
            f"schedule {name!r} names no class or no queue; a Ruby scheduler infers them from the class"
        )
    resque.enqueue(queue, class_name, *job_args(entry.args))
    return {"message": f"Queued {class_name} on {queue} from schedule {name}", "queue": queue, "class": class_name}


def delete_schedule(resque: Resque, name: str) -> dict[str, Any]:
    _schedule_entry(resque, name)
    ScheduleStore(resque).remove(name)
    return {"message": f"Deleted schedule {name}", "name": name}


def _timestamp(value: Any) -> int:
    try:
        ts = int(str(value))
    except (TypeError, ValueError):
        raise BadRequestError(f"timestamp must be unix seconds, got {value!r}") from None
    if ts <= 0:
        raise BadRequestError("timestamp must be positive")
    return ts


#: delayed items read per round trip when looking for one
_ITEMS_PAGE = 1000


def _items_at(delayed: DelayedQueue, timestamp: int) -> Iterator[DelayedJob]:
    start = 0
    while True:
        jobs = delayed.jobs_at(timestamp, start, _ITEMS_PAGE)
        yield from jobs
        if len(jobs) < _ITEMS_PAGE:
            return
        start += _ITEMS_PAGE


def queue_delayed_now(resque: Resque, timestamp: Any, digest: str | None = None) -> dict[str, Any]:
    """Move the items at ``timestamp`` onto their queues now (one item when ``digest`` names it)."""
    ts = _timestamp(timestamp)
    delayed = DelayedQueue(resque)
    if digest:
        found = next((job.raw for job in _items_at(delayed, ts) if present.digest(job.raw) == digest), None)
        if found is None:
            raise ConflictError("that delayed item is no longer there; reload the page")
        if not delayed.enqueue_item_now(ts, found):
            raise ConflictError("that delayed item was already moved or removed")
        return {"message": f"Queued one item of {ts} now", "moved": 1}
    result = delayed.enqueue_timestamp_now(ts)
    if result.moved + result.rejected == 0:
        raise ConflictError(f"nothing is scheduled at {ts}")
    note = f" ({result.rejected} unreadable items set aside)" if result.rejected else ""
    return {"message": f"Queued {result.moved} items of {ts} now{note}", "moved": result.moved}


def cancel_delayed(resque: Resque, klass: Any, timestamp: Any, args: Any, queue: str | None = None) -> dict[str, Any]:
    """Remove the items of ``klass`` with exactly ``args`` at ``timestamp`` (any queue unless given)."""
    ts = _timestamp(timestamp)
    class_name = str(klass or "").strip()
    if not class_name:
        raise BadRequestError("klass is required")
    want = encode_json(schedule.json_list(args))
    delayed = DelayedQueue(resque)
    matching = {
        job.raw
        for job in _items_at(delayed, ts)
        if job.item is not None
        and job.item.class_ == class_name
        and encode_json(job.item.args) == want
        and (not queue or job.item.queue == queue)
    }
    removed = sum(delayed.remove_at(ts, raw) for raw in matching)
    if not removed:
        raise ConflictError(f"no {class_name} with those args at {ts}")
    return {"message": f"Removed {removed} delayed {class_name} at {ts}", "removed": removed}


def clear_delayed(resque: Resque) -> dict[str, Any]:
    removed = DelayedQueue(resque).clear()
    return {"message": f"Cleared every delayed job ({removed} timestamps)", "timestamps": removed}


# -- the Retrying and Statuses tabs ------------------------------------------------------
def retry_now(resque: Resque, name: str) -> dict[str, Any]:
    _steer(resque.retries.retry_now, name)
    return {"message": f"Queued {name} now", "name": name}


def give_up(resque: Resque, name: str) -> dict[str, Any]:
    _steer(resque.retries.give_up, name)
    return {"message": f"Gave up {name}; its last failure is in the failed list", "name": name}


def _steer(action: Callable[[str], None], name: str) -> None:
    """Run a steering action on a pending retry: an unknown one is a 404, one that moved on a 409."""
    if not name:
        raise BadRequestError("name is required")
    try:
        action(name)
    except NoPendingRetryError as exc:
        raise NotFoundError(str(exc)) from None
    except RetryError as exc:
        raise ConflictError(str(exc)) from None


def kill_status(resque: Resque, uuid: str) -> dict[str, Any]:
    if not uuid:
        raise BadRequestError("uuid is required")
    if resque.statuses.get(uuid) is None:
        raise NotFoundError(f"no resque-status record {uuid!r}")
    resque.statuses.kill(uuid)
    return {"message": f"Asked {uuid} to stop at its next progress report", "uuid": uuid}


def clear_statuses(resque: Resque, which: str) -> dict[str, Any]:
    if which not in STATUS_FILTERS:
        raise BadRequestError(f"clear takes one of {', '.join(STATUS_FILTERS)}, not {which!r}")
    removed = resque.statuses.clear(None if which == "all" else which)
    return {"message": f"Removed {removed} status record(s)", "removed": removed}
