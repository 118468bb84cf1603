"""resque-scheduler's Schedule and Delayed tabs: data and actions.

Delayed jobs go through :class:`resque_compat.scheduler.delayed.DelayedQueue`. Recurring
schedules are read from ``persistent_schedules`` (resque-scheduler 5's dynamic schedules, the
only ones another process can see) and changed the way ``set_schedule``/``remove_schedule``
do, announcing the change in ``schedules_changed`` so a running scheduler reloads.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from resque_compat.client import Resque
from resque_compat.protocol import JobPayload, ProtocolError, ScheduleEntry, WorkingOn, decode_json, encode_json
from resque_compat.replies import text
from resque_compat.scheduler.delayed import DelayedJob, DelayedQueue, decode_item
from resque_compat.scheduler.lock import MasterLock
from resque_compat.scheduler.recurring import RecurringSchedule, ScheduleError, ScheduleStore, job_args, next_run
from resque_compat.web import data, present
from resque_compat.web.actions import BadRequestError, ConflictError
from resque_compat.web.data import PAGE, NotFoundError, Paging

#: delayed timestamps per page (resque-web shows 20 too)
TIMESTAMP_PAGE = 20
#: a search reads at most this many items of each kind (delayed, queued)
SEARCH_LIMIT = 10_000


def _delayed(resque: Resque) -> DelayedQueue:
    return DelayedQueue(resque)


# -- schedule ----------------------------------------------------------------------------
def schedules(resque: Resque) -> dict[str, Any]:
    keys = resque.keys
    rows: list[dict[str, Any]] = []
    entries = sorted(resque.redis.hscan_iter(keys.persistent_schedules, count=200))
    last = resque.redis.hmget(keys.last_enqueued_at, [name for name, _ in entries]) if entries else []
    published = ScheduleStore(resque).published_next()
    now = time.time()
    for (name_raw, raw), last_raw in zip(entries, last, strict=True):
        name = name_raw.decode("utf-8", errors="replace")
        row: dict[str, Any] = {"name": name, "last_enqueued": present.when(text(last_raw)) if last_raw else None}
        row["next_run"], row["next_from"] = _next(
            name, raw, published.get(name), text(last_raw) if last_raw else None, now
        )
        try:
            entry = ScheduleEntry.decode(raw)
        except ProtocolError as exc:
            row.update(broken=True, problem=str(exc), raw=present.text(raw))
            rows.append(row)
            continue
        row.update(
            broken=False,
            description=_str(entry.description),
            interval=_interval(entry),
            **{"class": _str(entry.class_)},
            queue=_str(entry.queue),
            args=job_args(entry.args),
            args_text=present.pretty(job_args(entry.args)),
            extra=dict(entry.extra),
        )
        rows.append(row)
    lock = MasterLock(resque.redis, keys)
    node_lock = resque.redis.get(keys.node_scheduler_leader_lock)
    leader = text(node_lock) if node_lock is not None else None
    return {"schedules": rows, "master": lock.holder(), "node_leader": leader}


def _next(
    name: str, raw: bytes, published: float | None, last: str | None, now: float
) -> tuple[dict[str, Any] | None, str]:
    """The true next run (see ``recurring.next_run``); None when the entry does not validate."""
    try:
        schedule = RecurringSchedule.from_config(name, decode_json(raw))
    except (ProtocolError, ScheduleError):
        return None, "invalid"
    moment, how = next_run(schedule, published, last, now)
    return (present.when(moment) if moment is not None else None), how


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _interval(entry: ScheduleEntry) -> str:
    if isinstance(entry.cron, str):
        return f"cron: {entry.cron}"
    if isinstance(entry.every, str):
        return f"every: {entry.every}"
    if isinstance(entry.every, list):
        return "every: " + " ".join(str(part) for part in entry.every)
    return ""


def _entry(resque: Resque, name: str) -> ScheduleEntry:
    if not name:
        raise BadRequestError("a schedule name is required")
    raw = resque.redis.hget(resque.keys.persistent_schedules, name)
    if raw is None:
        raise ConflictError(f"no schedule {name!r} (only persisted, dynamic schedules are visible here)")
    try:
        return ScheduleEntry.decode(raw)
    except ProtocolError as exc:
        raise ConflictError(f"schedule {name!r} is unreadable: {exc}") from None


def requeue(resque: Resque, name: str) -> dict[str, Any]:
    """ "Queue now": enqueue the schedule's job once, as the scheduler would when it fires."""
    entry = _entry(resque, name)
    class_name, queue = _str(entry.class_), _str(entry.queue)
    if not class_name or not queue:
        raise ConflictError(
            f"schedule {name!r} names no class or no queue; a Ruby scheduler infers them from the class"
        )
    resque.enqueue(queue, class_name, *job_args(entry.args))
    return {"message": f"Queued {class_name} on {queue} from schedule {name}", "queue": queue, "class": class_name}


def delete(resque: Resque, name: str) -> dict[str, Any]:
    _entry(resque, name)
    ScheduleStore(resque).remove(name)
    return {"message": f"Deleted schedule {name}", "name": name}


# -- delayed -----------------------------------------------------------------------------
def delayed_job(job: DelayedJob) -> dict[str, Any]:
    if job.item is None:
        return {"timestamp": job.timestamp, **present.broken(job.raw, job.problem), "digest": present.digest(job.raw)}
    shown = present.job(JobPayload.new(job.item.class_, job.item.args))  # ActiveJob: the job itself
    return {
        "timestamp": job.timestamp,
        "at": present.when(job.timestamp),
        "broken": False,
        "class": job.item.class_,
        "shown_class": shown["shown_class"],
        "active_job": shown["active_job"],
        "queue": job.item.queue,
        "args": job.item.args,
        "args_json": encode_json(job.item.args).decode(),
        "args_text": shown["args_text"],
        "digest": present.digest(job.raw),
    }


def delayed(resque: Resque, start: int) -> dict[str, Any]:
    queue = _delayed(resque)
    total = queue.timestamp_count()
    stamps = queue.timestamps(start, TIMESTAMP_PAGE)
    rows = []
    for ts, count in stamps:
        first = queue.jobs_at(ts, 0, 1)
        rows.append(
            {"timestamp": ts, "at": present.when(ts), "count": count, "first": delayed_job(first[0]) if first else None}
        )
    return {"timestamps": rows, "paging": Paging(start, total, TIMESTAMP_PAGE).as_dict()}


def delayed_at(resque: Resque, timestamp: int, start: int) -> dict[str, Any]:
    queue = _delayed(resque)
    total = int(resque.redis.llen(resque.keys.delayed(timestamp)))
    jobs = queue.jobs_at(timestamp, start, PAGE)
    return {
        "timestamp": timestamp,
        "at": present.when(timestamp),
        "jobs": [delayed_job(j) for j in jobs],
        "paging": Paging(start, total).as_dict(),
    }


def timestamps_of(resque: Resque, class_name: str, args_json: str, queue: str | None) -> dict[str, Any]:
    """``/delayed/jobs/<Class>?args=<json>``: where one job is scheduled."""
    args = _json_list(args_json)
    found: list[dict[str, Any]] = []
    for job in itertools.islice(_delayed(resque).all_jobs(), SEARCH_LIMIT):
        if job.item is None or job.item.class_ != class_name:
            continue
        if queue and job.item.queue != queue:
            continue
        if encode_json(job.item.args) == encode_json(args):
            found.append(delayed_job(job))
    return {"class": class_name, "args": args, "queue": queue, "jobs": found, "limit": SEARCH_LIMIT}


def _json_list(text: Any) -> list[Any]:
    if isinstance(text, list):
        return text
    try:
        value = decode_json(str(text or "[]"))
    except ProtocolError as exc:
        raise BadRequestError(f"args: {exc}") from None
    if not isinstance(value, list):
        raise BadRequestError("args must be a JSON array")
    return value


def _timestamp(value: Any) -> int:
    try:
        ts = int(str(value))
    except (TypeError, ValueError):
        raise BadRequestError(f"timestamp must be unix seconds, got {value!r}") from None
    if ts <= 0:
        raise BadRequestError("timestamp must be positive")
    return ts


def _lrange(resque: Resque, key: str, start: int, end: int) -> list[bytes]:
    client: Any = resque.redis
    return list(client.lrange(key, start, end))


def queue_now(resque: Resque, timestamp: Any, digest: str | None = None) -> dict[str, Any]:
    """Move the items at ``timestamp`` onto their queues now (one item when ``digest`` names it)."""
    ts = _timestamp(timestamp)
    queue = _delayed(resque)
    if digest:
        raw = _find_raw(resque, ts, digest)
        if not queue.mover.move_item(ts, raw):
            raise ConflictError("that delayed item was already moved or removed")
        return {"message": f"Queued one item of {ts} now", "moved": 1}
    result = queue.enqueue_timestamp_now(ts)
    if result.moved + result.rejected == 0:
        raise ConflictError(f"nothing is scheduled at {ts}")
    note = f" ({result.rejected} unreadable items set aside)" if result.rejected else ""
    return {"message": f"Queued {result.moved} items of {ts} now{note}", "moved": result.moved}


def _find_raw(resque: Resque, timestamp: int, digest: str) -> bytes:
    key = resque.keys.delayed(timestamp)
    start = 0
    while True:
        raws: list[bytes] = _lrange(resque, key, start, start + 999)
        for raw in raws:
            if present.digest(raw) == digest:
                return raw
        if len(raws) < 1000:
            raise ConflictError("that delayed item is no longer there; reload the page")
        start += 1000


def cancel(resque: Resque, klass: Any, timestamp: Any, args: Any, queue: str | None = None) -> dict[str, Any]:
    """Remove the items of ``klass`` with exactly ``args`` at ``timestamp`` (any queue unless given)."""
    ts = _timestamp(timestamp)
    class_name = str(klass or "").strip()
    if not class_name:
        raise BadRequestError("klass is required")
    want = encode_json(_json_list(args))
    delayed_queue = _delayed(resque)
    key = resque.keys.delayed(ts)
    matching: set[bytes] = set()
    start = 0
    while True:
        raws: list[bytes] = _lrange(resque, key, start, start + 999)
        for raw in raws:
            item = decode_item(raw).item
            if (
                item is not None
                and item.class_ == class_name
                and encode_json(item.args) == want
                and (not queue or item.queue == queue)
            ):
                matching.add(raw)
        if len(raws) < 1000:
            break
        start += 1000
    removed = sum(delayed_queue.remove_at(ts, raw) for raw in matching)
    if not removed:
        raise ConflictError(f"no {class_name} with those args at {ts}")
    return {"message": f"Removed {removed} delayed {class_name} at {ts}", "removed": removed}


def clear(resque: Resque) -> dict[str, Any]:
    removed = _delayed(resque).clear()
    return {"message": f"Cleared every delayed job ({removed} timestamps)", "timestamps": removed}


def _working_class(raw: bytes) -> str:
    """The class of a working-on record's job, "" when unreadable (a cheap read for a search)."""
    try:
        payload = decode_json(bytes(WorkingOn.decode(raw).payload))
    except ProtocolError:
        return ""
    cls = payload.get("class") if isinstance(payload, dict) else None
    return cls if isinstance(cls, str) else ""


def search(resque: Resque, term: str) -> dict[str, Any]:
    """Class names containing ``term`` among working, delayed and queued jobs (bounded reads)."""
    term = term.strip()
    out: dict[str, Any] = {"q": term, "working": [], "delayed": [], "queued": [], "limit": SEARCH_LIMIT}
    if not term:
        return out
    needle = term.lower()
    busy = data.worker_index(resque).busy
    hits = [wid for wid, raw in busy.items() if needle in _working_class(raw).lower()][:SEARCH_LIMIT]
    out["working"] = [present.worker(info) for info in data.worker_rows(resque, sorted(hits)) if info.job_raw]
    for job in itertools.islice(_delayed(resque).all_jobs(), SEARCH_LIMIT):
        if job.item is not None and needle in job.item.class_.lower():
            out["delayed"].append(delayed_job(job))
    budget = SEARCH_LIMIT
    for name in resque.queues():
        start = 0
        while budget > 0:
            items = resque.peek(name, start, min(1000, budget))
            budget -= len(items)
            for i, item in enumerate(items):
                if item.payload is not None and needle in item.payload.class_.lower():
                    out["queued"].append({"queue": name, **present.queued(item, start + i)})
            if len(items) < 1000:
                break
            start += len(items)
    return out


__all__ = ["NotFoundError"]
