"""The dashboard's Retrying and Statuses tabs: what they show (their actions are in ``actions``).

Pending retries (resque-retry's tab) and resque-status records with their progress and
message (resque-status's tab), as those plugins' own resque-web tabs show them.
"""

from __future__ import annotations

from typing import Any

from resque_compat.client import Resque
from resque_compat.protocol.progress import ResqueStatus
from resque_compat.web import present
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


def progress(resque: Resque, job_id: str, prefix: str) -> dict[str, Any] | None:
    """Progress of a php tracked job or a resque-status job, for the Job status page."""
    view = resque.statuses.progress(job_id, prefix)
    if view is None:
        return None
    killable = view.kind == "resque-status" and not view.final
    return {"kind": view.kind, "state": view.state, "pct": view.pct, "message": view.message, "killable": killable,
            "final": view.final, "record": view.record}  # fmt: skip
