"""resque-scheduler's Schedule and Delayed tabs: what they show (their actions are in ``actions``).

Delayed jobs are read through :class:`resque_compat.scheduler.delayed.DelayedQueue`. Recurring
schedules through :class:`resque_compat.scheduler.recurring.ScheduleStore`: the entries of
``persistent_schedules`` (resque-scheduler 5's dynamic schedules, the only ones another process
can see), when each last fired and will fire next, and who leads.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from resque_compat.client import Resque
from resque_compat.protocol import JobPayload, ProtocolError, ScheduleEntry, WorkingOn, decode_json, encode_json
from resque_compat.scheduler.delayed import DelayedJob, DelayedQueue
from resque_compat.scheduler.recurring import RecurringSchedule, ScheduleError, ScheduleStore, job_args, next_run
from resque_compat.web import data, present
from resque_compat.web.data import PAGE, BadRequestError, Paging

#: delayed timestamps per page (resque-web shows 20 too)
TIMESTAMP_PAGE = 20
#: a search reads at most this many items of each kind (delayed, queued)
SEARCH_LIMIT = 10_000


# -- schedule ----------------------------------------------------------------------------
def schedules(resque: Resque) -> dict[str, Any]:
    store = ScheduleStore(resque)
    rows: list[dict[str, Any]] = []
    entries = store.stored()
    last_enqueued = store.last_enqueued_at()
    published = store.published_next()
    now = time.time()
    for name, raw in entries:
        last = last_enqueued.get(name)
        row: dict[str, Any] = {"name": name, "last_enqueued": present.when(last) if last else None}
        row["next_run"], row["next_from"] = _next(name, raw, published.get(name), last or None, now)
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
    leaders = store.leaders()
    return {"schedules": rows, "master": leaders.master, "node_leader": leaders.node}


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
    queue = DelayedQueue(resque)
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
    queue = DelayedQueue(resque)
    total = queue.size_at(timestamp)
    jobs = queue.jobs_at(timestamp, start, PAGE)
    return {
        "timestamp": timestamp,
        "at": present.when(timestamp),
        "jobs": [delayed_job(j) for j in jobs],
        "paging": Paging(start, total).as_dict(),
    }


def timestamps_of(resque: Resque, class_name: str, args_json: str, queue: str | None) -> dict[str, Any]:
    """``/delayed/jobs/<Class>?args=<json>``: where one job is scheduled."""
    args = json_list(args_json)
    found: list[dict[str, Any]] = []
    for job in itertools.islice(DelayedQueue(resque).all_jobs(), SEARCH_LIMIT):
        if job.item is None or job.item.class_ != class_name:
            continue
        if queue and job.item.queue != queue:
            continue
        if encode_json(job.item.args) == encode_json(args):
            found.append(delayed_job(job))
    return {"class": class_name, "args": args, "queue": queue, "jobs": found, "limit": SEARCH_LIMIT}


def json_list(text: Any) -> list[Any]:
    if isinstance(text, list):
        return text
    try:
        value = decode_json(str(text or "[]"))
    except ProtocolError as exc:
        raise BadRequestError(f"args: {exc}") from None
    if not isinstance(value, list):
        raise BadRequestError("args must be a JSON array")
    return value


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
    out["working"] = [present.worker(info) for info in resque.worker_rows(sorted(hits)) if info.job_raw]
    for job in itertools.islice(DelayedQueue(resque).all_jobs(), SEARCH_LIMIT):
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
