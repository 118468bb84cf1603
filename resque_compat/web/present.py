"""Turn stored records of any peer into plain, JSON-ready dicts for pages and the API.

Every value here is attacker-controlled text from Redis: nothing is marked safe, the
templates escape it. A record that does not decode is shown as broken, with its bytes,
never dropped and never an error page.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
from datetime import datetime
from typing import Any

from resque_compat import humantime
from resque_compat.activejob import display as activejob_display
from resque_compat.client import QueuedJob, WorkerInfo
from resque_compat.failures import FailureEntry
from resque_compat.protocol import (
    UNSET,
    JobPayload,
    ProtocolError,
    StatusRecord,
    WorkingOn,
    decode_json,
    encode_json,
)
from resque_compat.protocol.keys import Keys

#: how much of a broken record's bytes a page shows
RAW_PREVIEW = 2000
#: the longest value (characters of a string, or of a field's JSON) a page or an API list
#: shows; longer ones are cut, with the whole record one click away (``full``, ``/raw/…``)
VALUE_LIMIT = 4096
#: ActiveJob's wrapper class: resque-web shows the wrapped job's class instead
ACTIVE_JOB_WRAPPER = "ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper"


def text(raw: bytes | str | None, limit: int = RAW_PREVIEW) -> str:
    """Bytes as text for display (invalid UTF-8 replaced), cut at ``limit`` characters."""
    if raw is None:
        return ""
    value = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return value if len(value) <= limit else value[:limit] + f"… ({len(value) - limit} more characters)"


def fit(value: Any) -> tuple[Any, bool]:
    """``value`` if its JSON is at most VALUE_LIMIT characters, else a preview string and True."""
    try:
        encoded = encode_json(value)
    except (TypeError, ValueError, OverflowError):
        encoded = str(value).encode("utf-8", "replace")
    if len(encoded) <= VALUE_LIMIT:
        return value, False
    return text(encoded[:VALUE_LIMIT], VALUE_LIMIT) + f"… ({len(encoded)} bytes in all)", True


def bounded(value: Any, _depth: int = 0) -> Any:
    """Every string in a page's data cut at VALUE_LIMIT characters: the last guard that keeps
    any page and any API answer small whatever Redis holds."""
    if isinstance(value, str):
        return value if len(value) <= VALUE_LIMIT else text(value, VALUE_LIMIT)
    if _depth > 40:
        return "…"
    if isinstance(value, dict):
        return {bounded(k, _depth + 1): bounded(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [bounded(v, _depth + 1) for v in value]
    return value


def full_url(key: str, index: int | None = None) -> str:
    """Where a record's whole bytes are served (``/raw/<key>``, ``?index=`` for a list entry)."""
    path = "/raw/" + urllib.parse.quote(key, safe="")
    return path if index is None else f"{path}?index={index}"


def digest(raw: bytes) -> str:
    """A short fingerprint of an entry's bytes: actions by index check it so that a list that
    shifted since the page was drawn never makes us retry or remove the wrong entry."""
    return hashlib.sha1(raw).hexdigest()[:16]


def when(value: object) -> dict[str, Any]:
    """A stored time as shown: the raw value, the one format for people (``humantime``),
    epoch seconds and an age. An unknown format keeps the raw text and ``parsed`` is False
    so the page can flag it."""
    raw = None if value is None else str(value)
    parsed = humantime.parse(value)
    if parsed is None:
        return {"raw": raw, "iso": None, "epoch": None, "shown": raw or "", "ago": None, "parsed": False}
    iso, epoch = humantime.for_json(value)
    return {
        "raw": raw,
        "iso": iso,
        "epoch": epoch,
        "shown": humantime.iso(parsed),
        "ago": ago(parsed),
        "parsed": True,
    }


def ago(moment: datetime, now: float | None = None) -> str:
    seconds = int((time.time() if now is None else now) - moment.timestamp())
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{seconds // size} {unit}"
            break
    else:
        amount = f"{seconds} s"
    return f"in {amount}" if future else f"{amount} ago"


def pretty(value: Any) -> str:
    """Arguments as JSON (resque-web shows YAML; JSON is what every peer stores): one line when
    short, indented when long."""
    line = json.dumps(value, ensure_ascii=False, default=str)
    if len(line) <= 100:
        return line
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def job(payload: JobPayload) -> dict[str, Any]:
    """A job payload: class, args, and each peer's extra keys. An ActiveJob job is shown as
    itself (class, job id, arguments as the job receives them); the wrapper in ``stored_text``."""
    shown_class = payload.class_
    args, args_cut = fit(payload.args)
    args_text = args if args_cut else pretty(payload.args)
    active_job: dict[str, Any] | None = None
    if payload.class_ == ACTIVE_JOB_WRAPPER and payload.args and isinstance(payload.args[0], dict):
        inner = payload.args[0].get("job_class")
        if isinstance(inner, str):
            shown_class = inner
        wrapped = activejob_display.shown(payload)
        if wrapped is not None:
            active_job = wrapped.to_dict()
            args_text = wrapped.arguments
    extra = {k: v for k, v in payload.to_dict().items() if k not in ("class", "args")}
    enqueued = when(extra.get("queue_time", extra.get("enqueue_timestamp"))) if extra else None
    extra_shown, extra_cut = fit(extra)
    return {
        "class": payload.class_,
        "shown_class": shown_class,
        "args": None if args_cut else payload.args,
        "args_text": args if args_cut else args_text,
        "active_job": active_job,
        "stored_text": pretty(payload.args) if active_job is not None and not args_cut else None,
        "id": payload.job_id,
        "status_prefix": payload.status_prefix,
        "extra": {"(cut)": extra_shown} if extra_cut else extra,
        "enqueued": enqueued,
        "truncated": args_cut or extra_cut,
        "broken": False,
    }


def broken(raw: bytes, problem: str | None) -> dict[str, Any]:
    return {"broken": True, "problem": problem or "not a job", "raw": text(raw)}


def job_bytes(raw: bytes) -> dict[str, Any]:
    """A payload from any peer. One that names a class but has odd ``args`` (node-resque's Lua
    re-encoding turns ``[]`` into ``{}``) is shown as a job with a note, not as broken."""
    try:
        return job(JobPayload.decode(raw))
    except ProtocolError as exc:
        problem = str(exc)
    try:
        value = decode_json(raw)
    except ProtocolError:
        return broken(raw, problem)
    if not isinstance(value, dict) or not isinstance(value.get("class"), str):
        return broken(raw, problem)
    odd_args, _ = fit(value.get("args"))
    try:
        shown = job(JobPayload.from_dict({**value, "args": []}))
    except ProtocolError:  # another field is odd too (php's "id" a number, "queue_time" text)
        return broken(raw, problem)
    shown.update(args=odd_args, args_text=pretty(odd_args), note=f"args is not a list: {problem}")
    return shown


def queued(item: QueuedJob, index: int) -> dict[str, Any]:
    shown = job(item.payload) if item.payload is not None else job_bytes(item.raw)
    shown["index"] = index
    return shown


def working_on(raw: bytes | None, record: WorkingOn | None) -> dict[str, Any] | None:
    """``worker:<id>``: None when idle; broken when a peer wrote something unreadable."""
    if not raw:
        return None
    if record is None:
        try:
            record = WorkingOn.decode(raw)
        except ProtocolError as exc:
            return {"broken": True, "problem": str(exc), "raw": text(raw)}
    return {
        "broken": False,
        "queue": record.queue,
        "run_at": when(record.run_at),
        "payload": job_bytes(bytes(record.payload)),
        "extra": dict(record.extra),
    }


def worker(info: WorkerInfo) -> dict[str, Any]:
    current = working_on(info.job_raw, info.job)
    if current is not None:
        current["full"] = full_url(Keys.worker_name_key(info.id))
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "queues": info.queues,
        "started": when(info.started),
        "heartbeat": when(info.heartbeat),
        "processed": info.processed,
        "failed": info.failed,
        "state": info.state,
        "paused_by": info.paused_by,
        "state_label": info.state_label,
        "classes": info.classes,
        "supervisor": info.supervisor,
        "job": current,
    }


def failure(entry: FailureEntry) -> dict[str, Any]:
    base: dict[str, Any] = {
        "index": entry.index,
        "list": entry.list_name,
        "digest": digest(entry.raw),
        "size": len(entry.raw),
        "full": full_url(entry.list_name, entry.index),
    }
    record = entry.record
    if record is None:
        base.update(broken=True, problem=entry.problem or "not a failure record", raw=text(entry.raw))
        return base
    retried = record.retried_at if isinstance(record.retried_at, str) and record.retried_at else None
    backtrace, backtrace_cut = fit([str(line) for line in record.backtrace])
    extra, extra_cut = fit(dict(record.extra))
    base.update(
        broken=False,
        failed_at=when(record.failed_at),
        retried_at=when(retried) if retried else None,
        payload=job_bytes(bytes(record.payload)),
        exception=record.exception,
        error=record.error,
        backtrace=[backtrace] if backtrace_cut else backtrace,
        worker=record.worker,
        queue=record.queue,
        extra={"(cut)": extra} if extra_cut else extra,
        truncated=backtrace_cut or extra_cut or len(record.error) > VALUE_LIMIT,
    )
    return base


def failure_class(entry: FailureEntry) -> str | None:
    """The job class of a failure (for the class filter), None when unreadable."""
    if entry.record is None:
        return None
    try:
        value = decode_json(bytes(entry.record.payload))
    except ProtocolError:
        return None
    cls = value.get("class") if isinstance(value, dict) else None
    return cls if isinstance(cls, str) else None


STATUS_NAMES = {1: "waiting", 2: "running", 3: "failed", 4: "complete"}


def status(job_id: str, record: StatusRecord | None, ttl: int | None, raw: bytes | None = None) -> dict[str, Any]:
    if record is None and raw is not None:
        problem = "not a status record"
        try:
            StatusRecord.decode(raw)
        except ProtocolError as exc:
            problem = str(exc)
        return {"id": job_id, "tracked": True, "broken": True, "problem": problem, "raw": text(raw),
                "expires_in": ttl if ttl is not None and ttl >= 0 else None}  # fmt: skip
    if record is None:
        return {"id": job_id, "tracked": False}
    result = record.result if record.result is not UNSET else None
    return {
        "id": job_id,
        "tracked": True,
        "status": record.status,
        "name": STATUS_NAMES.get(record.status, "unknown"),
        "updated": when(record.updated) if isinstance(record.updated, (int, float)) else None,
        "started": when(record.started) if isinstance(record.started, (int, float)) else None,
        "result": result,
        "result_text": pretty(result),
        "expires_in": ttl if ttl is not None and ttl >= 0 else None,
    }
