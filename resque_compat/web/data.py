"""What each dashboard page shows, as JSON-ready dicts: one function per page.

The HTML pages render these dicts and the JSON API returns them as they are, so the two can
never disagree. They format what the client returns (:class:`resque_compat.client.Resque` and
its failures), as the CLI, the metrics and the doctor do; only the raw key browser
(``stats_keys``, ``stats_key``, ``raw_record``) reads Redis itself. Every read is bounded:
lists are read a page at a time (newest first through negative indexes), keys are listed with
SCAN, so a page of a million-entry list costs what a page of a ten-entry one does.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from resque_compat.client import Resque
from resque_compat.failures import FailureEntry
from resque_compat.plans import (
    info_dict,
    server_url,
)
from resque_compat.protocol import ProtocolError, WorkingOn, timefmt
from resque_compat.protocol.keys import FAILED_LIST, Keys, Stat
from resque_compat.replies import raw, text
from resque_compat.web import present

log = logging.getLogger(__name__)

PAGE = 20
#: a class filter reads at most this many failures per request, then offers "scan on"
FILTER_SCAN_LIMIT = 5000
FILTER_CHUNK = 500
#: SCAN calls per keys page, and keys shown per page
KEYS_SCAN_CALLS = 20
KEYS_PAGE = 100
#: the multi-queue failure overview counts classes among this many newest entries per list
CLASS_SAMPLE = 1000
#: bytes of a string key shown
STRING_PREVIEW = 4096


class NotFoundError(LookupError):
    """A page about something that is not there (a worker gone, a key deleted)."""


class BadRequestError(ValueError):
    """Input the page or action cannot use; the message says what was wrong."""


@dataclass(frozen=True)
class Paging:
    start: int
    total: int
    per_page: int = PAGE

    def as_dict(self) -> dict[str, Any]:
        last = min(self.total, self.start + self.per_page)
        return {
            "start": self.start,
            "per_page": self.per_page,
            "total": self.total,
            "first_shown": self.start + 1 if last > self.start else 0,
            "last_shown": last,
            "prev": max(0, self.start - self.per_page) if self.start > 0 else None,
            "next": self.start + self.per_page if self.start + self.per_page < self.total else None,
        }


#: the largest offset or cursor passed to Redis (its integers are signed 64-bit)
MAX_START = 2**62


def page_start(value: str | None) -> int:
    """``?start=`` as resque-web takes it: a non-negative integer, anything else is 0."""
    try:
        return min(max(0, int(value or 0)), MAX_START)
    except ValueError:
        return 0


# -- workers, read at scale -------------------------------------------------------------
#: workers listed per page (/workers, /working), and working jobs on the overview
WORKERS_PAGE = 50
#: host rows shown on /workers (by host)
HOSTS_SHOWN = 500
_UTC_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _run_at_key(wid: str, raw: bytes) -> tuple[int, str]:
    """Oldest job first, as resque-web sorts by run_at; unreadable times last."""
    try:
        run_at = WorkingOn.decode(raw).run_at
    except ProtocolError:
        return (1, wid)
    if _UTC_Z.fullmatch(run_at):
        return (0, run_at[:19])
    moment = timefmt.parse(run_at)
    return (0, moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")) if moment else (1, wid)


@dataclass(frozen=True)
class WorkerIndex:
    """Every registered worker id (sorted), the busy ones with their ``worker:<id>`` bytes
    (``order``: oldest job first), the ids per host, and when it was read."""

    ids: list[str]
    busy: dict[str, bytes]
    order: list[str]
    by_host: dict[str, list[str]]
    taken: float
    #: how long reading it took: the next refresh waits ten times that, so the web process
    #: spends at most a tenth of its time on it
    cost: float = 0.0

    @property
    def age(self) -> float:
        return max(0.0, time.monotonic() - self.taken)


#: up to this many registered workers, every page reads them afresh
EXACT_WORKERS = 5000
#: above it, pages use an index at most this old, refreshed in the background once older
#: than REFRESH_AFTER: reading 100,000 ids and their jobs takes longer than a page may
INDEX_MAX_AGE = 60.0
REFRESH_AFTER = 2.0
_indexes: dict[tuple[int, str], WorkerIndex] = {}
_refreshing: set[tuple[int, str]] = set()
_index_lock = threading.Lock()


def read_worker_index(resque: Resque) -> WorkerIndex:
    began = time.monotonic()
    ids = resque.worker_ids()
    busy = resque.busy_workers(ids)
    by_host: dict[str, list[str]] = {}
    for wid in ids:
        by_host.setdefault(wid.split(":", 1)[0], []).append(wid)
    order = sorted(busy, key=lambda wid: _run_at_key(wid, busy[wid]))
    now = time.monotonic()
    return WorkerIndex(ids, busy, order, by_host, now, now - began)


def worker_index(resque: Resque) -> WorkerIndex:
    """The workers as pages show them: exact for up to EXACT_WORKERS, else a recent index
    (the total from SCARD is always exact)."""
    if resque.worker_count() <= EXACT_WORKERS:
        return read_worker_index(resque)
    key = (id(resque.redis), resque.keys.namespace)
    with _index_lock:
        index = _indexes.get(key)
    if index is None or index.age > INDEX_MAX_AGE:
        index = read_worker_index(resque)
        with _index_lock:
            _indexes[key] = index
        return index
    if index.age > max(REFRESH_AFTER, 10 * index.cost):
        with _index_lock:
            start = key not in _refreshing
            _refreshing.add(key)
        if start:
            threading.Thread(target=_refresh, args=(resque, key), name="resque-web-workers", daemon=True).start()
    return index


def _refresh(resque: Resque, key: tuple[int, str]) -> None:
    try:
        index = read_worker_index(resque)
        with _index_lock:
            _indexes[key] = index
    except Exception:  # the next page read tries again; this one keeps the last index
        log.warning("reading the worker index failed", exc_info=True)
    finally:
        with _index_lock:
            _refreshing.discard(key)


def _working_page(resque: Resque, start: int, per_page: int = WORKERS_PAGE) -> dict[str, Any]:
    index = worker_index(resque)
    shown = index.order[start : start + per_page]
    rows = [present.worker(w) for w in resque.worker_rows(shown) if w.job_raw]
    return {
        "workers_total": resque.worker_count(),
        "working_total": len(index.busy),
        "working": rows,
        "paging": Paging(start, len(index.order), per_page).as_dict(),
        "as_of_seconds_ago": round(index.age, 1),
    }


# -- overview and working ----------------------------------------------------------------
def overview(resque: Resque) -> dict[str, Any]:
    sizes = resque.queue_sizes()
    failure_lists = [{"name": n, "count": resque.failures.count(n)} for n in resque.failures.list_names()]
    return {
        "queues": [{"name": name, "size": size} for name, size in sizes.items()],
        "failure_lists": failure_lists,
        "failed_total": sum(f["count"] for f in failure_lists),
        **_working_page(resque, 0),
        "paused_all": resque.paused_all(),
        "stats": {"processed": resque.stat(Stat.PROCESSED), "failed": resque.stat(Stat.FAILED)},
    }


def working(resque: Resque, start: int = 0) -> dict[str, Any]:
    return _working_page(resque, start)


# -- queues ------------------------------------------------------------------------------
def queues(resque: Resque) -> dict[str, Any]:
    sizes = resque.queue_sizes()
    lists = [{"name": n, "count": resque.failures.count(n)} for n in resque.failures.list_names()]
    return {"queues": [{"name": n, "size": s} for n, s in sizes.items()], "failure_lists": lists}


def queue(resque: Resque, name: str, start: int) -> dict[str, Any]:
    total = resque.size(name)
    items = resque.peek(name, start, PAGE)
    return {
        "name": name,
        "known": name in set(resque.queues()),
        "size": total,
        "jobs": [
            {**present.queued(item, start + i), "full": present.full_url(Keys.queue_name_key(name), start + i)}
            for i, item in enumerate(items)
        ],
        "paging": Paging(start, total).as_dict(),
    }


# -- workers -----------------------------------------------------------------------------
def workers(resque: Resque, host: str | None = None, start: int = 0) -> dict[str, Any]:
    """``/workers``: with several hosts and no host chosen, a host list (as resque-web); a
    page of workers otherwise. Only the shown page's rows are read."""
    index = worker_index(resque)
    every = index.ids
    chosen = every if host in (None, "all") else index.by_host.get(host, [])
    by_host = host is None and len(index.by_host) > 1
    shown = [] if by_host else chosen[start : start + WORKERS_PAGE]
    return {
        "host": host,
        "hosts": [{"host": h, "count": len(n)} for h, n in sorted(index.by_host.items())[:HOSTS_SHOWN]],
        "hosts_total": len(index.by_host),
        "by_host": by_host,
        "workers": [present.worker(w) for w in resque.worker_rows(shown)],
        "workers_total": resque.worker_count(),
        "paging": Paging(start, 0 if by_host else len(chosen), WORKERS_PAGE).as_dict(),
        "paused_all": resque.paused_all(),
        "as_of_seconds_ago": round(index.age, 1),
    }


def worker(resque: Resque, worker_id: str) -> dict[str, Any]:
    """One worker, with node-resque's own liveness key and per-name counters as fallbacks."""
    detail = resque.worker_detail(worker_id)
    if detail is None:
        raise NotFoundError(f"no worker {worker_id!r} is registered")
    shown = present.worker(detail.row)
    shown["control_pending"] = detail.control_pending
    shown["node_ping"] = None
    if detail.node_ping is not None:
        shown["node_ping"] = present.text(detail.node_ping)
        ping_time = detail.node_ping_time
        if shown["heartbeat"]["raw"] is None and ping_time is not None:
            shown["heartbeat"] = present.when(ping_time)
        if not shown["processed"] and detail.node_processed is not None:
            shown["processed"] = detail.node_processed
        if not shown["failed"] and detail.node_failed is not None:
            shown["failed"] = detail.node_failed
    return {"worker": shown, "paused_all": detail.row.paused_all}


# -- failures ----------------------------------------------------------------------------
def failed(
    resque: Resque,
    list_name: str = FAILED_LIST,
    start: int = 0,
    class_filter: str | None = None,
    order: str = "desc",
) -> dict[str, Any]:
    """A page of failures, newest first unless ``order=asc``; with a class filter, a bounded scan."""
    failures = resque.failures
    names = failures.list_names()
    total = failures.count(list_name)
    newest_first = order != "asc"
    result: dict[str, Any] = {
        "list": list_name,
        "lists": [{"name": n, "count": failures.count(n)} for n in names],
        "order": "desc" if newest_first else "asc",
        "class": class_filter or None,
        "total": total,
    }
    if class_filter:
        entries, scanned_to, done = _filtered(
            resque, list_name, start, class_filter, newest_first=newest_first, total=total
        )
        result.update(
            failures=[present.failure(e) for e in entries],
            paging={"start": start, "per_page": PAGE, "total": None, "next": None if done else scanned_to},
            scan={"from": start, "to": scanned_to, "complete": done},
        )
        return result
    if newest_first:
        entries = list(reversed(failures.all(-(start + PAGE), PAGE, list_name))) if start < total else []
    else:
        entries = failures.all(start, PAGE, list_name)
    result.update(failures=[present.failure(e) for e in entries], paging=Paging(start, total).as_dict())
    return result


def _filtered(
    resque: Resque, list_name: str, start: int, class_filter: str, *, newest_first: bool, total: int
) -> tuple[list[FailureEntry], int, bool]:
    """Entries of one class from position ``start`` (counted in the page order), reading at most
    FILTER_SCAN_LIMIT entries; returns them, where the scan stopped and whether it reached the end."""
    out: list[FailureEntry] = []
    position = start
    limit = start + FILTER_SCAN_LIMIT
    while position < min(total, limit) and len(out) < PAGE:
        count = min(FILTER_CHUNK, total - position)
        if newest_first:
            chunk = list(reversed(resque.failures.all(-(position + count), count, list_name)))
        else:
            chunk = resque.failures.all(position, count, list_name)
        if not chunk:
            break
        for offset, entry in enumerate(chunk):
            if present.failure_class(entry) == class_filter:
                out.append(entry)
                if len(out) == PAGE:
                    return out, position + offset + 1, position + offset + 1 >= total
        position += len(chunk)
    return out, position, position >= total


def failed_classes(resque: Resque) -> dict[str, Any]:
    """The multi-queue overview: per failure list, class counts among its newest entries."""
    rows = []
    for name in resque.failures.list_names():
        count = resque.failures.count(name)
        classes: dict[str, int] = {}
        for entry in resque.failures.all(-CLASS_SAMPLE, CLASS_SAMPLE, name):
            cls = present.failure_class(entry) or "(broken)"
            classes[cls] = classes.get(cls, 0) + 1
        rows.append(
            {"list": name, "count": count, "sampled": min(count, CLASS_SAMPLE), "classes": sorted(classes.items())}
        )
    return {"lists": rows, "sample": CLASS_SAMPLE}


# -- stats -------------------------------------------------------------------------------
def info(resque: Resque) -> dict[str, Any]:
    """Ruby's ``Resque.info``, with the worker counts from SMEMBERS + MGET (never a read of
    every worker's rows)."""
    index = worker_index(resque)
    server = server_url(resque.redis.connection_pool.connection_kwargs)
    out = info_dict(resque.queue_sizes(), [], resque.stat(Stat.PROCESSED), resque.stat(Stat.FAILED), server)
    out.update(workers=resque.worker_count(), working=len(index.busy))
    return out


def stats_resque(resque: Resque) -> dict[str, Any]:
    return {"info": info(resque), "namespace": resque.keys.namespace}


def stats_redis(resque: Resque) -> dict[str, Any]:
    info = resque.server_info()
    return {"info": [[k, _flat(v)] for k, v in sorted(info.items())]}


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def stats_txt(resque: Resque) -> str:
    """Ruby's ``/stats.txt``, line for line."""
    shown = info(resque)
    lines = [
        f"resque.pending={shown['pending']}",
        f"resque.processed+={shown['processed']}",
        f"resque.failed+={shown['failed']}",
        f"resque.workers={shown['workers']}",
        f"resque.working={shown['working']}",
    ]
    lines += [f"queues.{name}={size}" for name, size in resque.queue_sizes().items()]
    return "\n".join(lines)


def stats_keys(resque: Resque, cursor: int = 0) -> dict[str, Any]:
    """Keys under the namespace with type and size, a SCAN page at a time (never KEYS)."""
    match = resque.keys.pattern()
    client: Any = resque.redis  # replies are bytes (no decode_responses)
    names: list[bytes] = []
    calls = 0
    while True:
        cursor, batch = client.scan(cursor, match=match, count=500)
        names.extend(batch)
        calls += 1
        if cursor == 0 or len(names) >= KEYS_PAGE or calls >= KEYS_SCAN_CALLS:
            break
    pipe = client.pipeline(transaction=False)
    for key in names:
        pipe.type(key)
    types = [t.decode() if isinstance(t, bytes) else str(t) for t in pipe.execute()]
    for key, kind in zip(names, types, strict=True):
        _size_command(pipe, kind, key)
    sizes = pipe.execute() if names else []
    rows = []
    size_iter = iter(sizes)
    for key, kind in zip(names, types, strict=True):
        size = next(size_iter) if _has_size(kind) else None
        rows.append({"key": resque.keys.strip(present.text(key, 10_000)), "type": kind, "size": size})
    rows.sort(key=lambda row: str(row["key"]))
    return {"namespace": resque.keys.namespace, "keys": rows, "next_cursor": cursor or None}


_SIZE_COMMANDS = {"string": "strlen", "list": "llen", "set": "scard", "zset": "zcard", "hash": "hlen", "stream": "xlen"}


def _has_size(kind: str) -> bool:
    return kind in _SIZE_COMMANDS


def _size_command(pipe: Any, kind: str, key: bytes) -> None:
    command = _SIZE_COMMANDS.get(kind)
    if command:
        getattr(pipe, command)(key)


def stats_key(resque: Resque, name: str, start: int = 0) -> dict[str, Any]:
    """One key's contents, a page at a time (SSCAN/HSCAN cursors for sets and hashes)."""
    key = resque.keys.key(name)
    client: Any = resque.redis
    kind_raw = client.type(key)
    kind = kind_raw.decode() if isinstance(kind_raw, bytes) else str(kind_raw)
    if kind == "none":
        raise NotFoundError(f"no key {name!r} under namespace {resque.keys.namespace!r}")
    out: dict[str, Any] = {"key": name, "type": kind, "ttl": client.ttl(key), "start": start, "next": None}
    if kind == "string":
        length = int(client.strlen(key))
        out.update(size=length, items=[present.text(client.getrange(key, 0, STRING_PREVIEW - 1), STRING_PREVIEW)])
    elif kind == "list":
        length = int(client.llen(key))
        items = client.lrange(key, start, start + PAGE - 1)
        out.update(size=length, items=[present.text(i) for i in items])
        out["next"] = start + PAGE if start + PAGE < length else None
    elif kind == "zset":
        length = int(client.zcard(key))
        pairs = client.zrange(key, start, start + PAGE - 1, withscores=True)
        out.update(size=length, items=[[present.text(m), s] for m, s in pairs])
        out["next"] = start + PAGE if start + PAGE < length else None
    elif kind == "set":
        cursor, members = client.sscan(key, start, count=PAGE)
        out.update(size=int(client.scard(key)), items=sorted(present.text(m) for m in members))
        out["next"] = cursor or None
    elif kind == "hash":
        cursor, fields = client.hscan(key, start, count=PAGE)
        out.update(
            size=int(client.hlen(key)), items=sorted([present.text(k), present.text(v)] for k, v in fields.items())
        )
        out["next"] = cursor or None
    elif kind == "stream":
        entries = client.xrange(key, count=PAGE)
        out.update(size=int(client.xlen(key)), items=[present.text(str(e)) for e in entries])
    else:
        out.update(size=None, items=[])
    return out


def raw_record(resque: Resque, name: str, index: str | None, field: str | None) -> bytes:
    """A stored record's whole bytes (the page shows them cut): a string key, a list entry
    (``index``) or a hash field (``field``), under the namespace only."""
    key = resque.keys.key(name)
    client: Any = resque.redis
    kind = text(client.type(key))
    if kind == "none":
        raise NotFoundError(f"no key {name!r} under namespace {resque.keys.namespace!r}")
    value: Any = None
    if kind == "string":
        value = client.get(key)
    elif kind == "list":
        try:
            position = int(index) if index is not None else None
        except ValueError:
            position = None
        if position is None:
            raise BadRequestError("a list entry needs ?index=N")
        value = client.lindex(key, position)
    elif kind == "hash":
        if field is None:
            raise BadRequestError("a hash field needs ?field=NAME")
        value = client.hget(key, field)
    else:
        raise BadRequestError(f"{name!r} is a {kind}: see /stats/keys/{name}")
    if value is None:
        raise NotFoundError(f"nothing at that position of {name!r}")
    return raw(value)


# -- beyond resque-web -------------------------------------------------------------------
def job_status(resque: Resque, job_id: str, prefix: str = "") -> dict[str, Any]:
    """A tracked job's status; a record that does not decode is shown as broken, with its bytes."""
    stored = resque.stored_status(job_id, prefix)
    if stored is None:
        return present.status(job_id, None, None)
    record = stored.record
    if record is None:
        return present.status(job_id, None, stored.ttl, stored.raw)
    return present.status(job_id, record, stored.ttl)
