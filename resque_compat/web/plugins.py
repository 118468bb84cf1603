"""The dashboard's Retrying and Statuses tabs: pending retries (with retry-now and give-up) and
resque-status records (progress, message, kill, clear), as resque-retry's and resque-status's
own resque-web tabs show them. Loaders return JSON-ready dicts; actions return a ``message``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resque_compat.client import Resque
from resque_compat.jobs.progress import STATUS_FILTERS
from resque_compat.jobs.retrying import NoPendingRetryError, RetryError
from resque_compat.protocol.progress import ResqueStatus
from resque_compat.web import present
from resque_compat.web.actions import BadRequestError, ConflictError
from resque_compat.web.data import NotFoundError, Paging

#: resque-status's web tab shows 50 a page
STATUS_PAGE = 50


def retrying(resque: Resque) -> dict[str, Any]:
    """Every pending retry, soonest first (unreadable entries listed with their problem)."""
    rows = []
    for entry in resque.retries.entries():
        row = entry.as_dict()
        if entry.entry is not None:
            row["when"] = present.when(entry.entry.at)
        rows.append(row)
    return {"retries": rows, "total": len(rows)}


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


def _status_row(record: ResqueStatus) -> dict[str, Any]:
    data = record.json_with_pct()
    data.update(
        state=record.state or "unknown",
        killable=record.killable and record.state != "unreadable",
        final=record.final,
        time_shown=present.when(record.time) if isinstance(record.time, (int, float)) else None,
        name_text=record.name if isinstance(record.name, str) else "",
        message_text=record.message if isinstance(record.message, str) else "",
    )
    return data


def statuses(resque: Resque, start: int) -> dict[str, Any]:
    """resque-status's list: ``_statuses`` newest first, with progress and the Kill button."""
    store = resque.statuses
    total = store.count()
    rows = [_status_row(r) for r in store.records(start, start + STATUS_PAGE - 1)]
    return {"statuses": rows, "paging": Paging(start, total, STATUS_PAGE).as_dict(), "kills": store.kills()}


def resque_status(resque: Resque, uuid: str) -> dict[str, Any]:
    record = resque.statuses.get(uuid)
    if record is None:
        raise NotFoundError(f"no resque-status record {uuid!r}")
    return {"uuid": uuid, **_status_row(record), "kill_requested": uuid in resque.statuses.kills()}


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


def progress(resque: Resque, job_id: str, prefix: str) -> dict[str, Any] | None:
    """Progress of a php tracked job or a resque-status job, for the Job status page."""
    view = resque.statuses.progress(job_id, prefix)
    if view is None:
        return None
    killable = view.kind == "resque-status" and not view.final
    return {"kind": view.kind, "state": view.state, "pct": view.pct, "message": view.message, "killable": killable,
            "final": view.final, "record": view.record}  # fmt: skip
