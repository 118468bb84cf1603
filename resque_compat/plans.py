"""Command plans: the pure half of the client, which Redis commands an operation sends and how
their replies decode (with the read model's rows: :class:`QueuedJob`, :class:`WorkerInfo`,
:class:`WorkerDetail`, :class:`StoredStatus`).

The sync :class:`resque_compat.client.Resque` and the asyncio
:class:`resque_compat.aio.AsyncResque` both build their writes here and only differ in how
they send them, so the two write the same bytes by construction. Each command is a
:data:`resque_compat.resp.Command`: the words sent on the wire, so a plan runs alike through
:func:`resque_compat.resp.transaction` or on any redis-py pipeline
(:func:`resque_compat.resp.queue_commands`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from resque_compat.protocol import (
    Failure,
    JobPayload,
    JobStatus,
    Keys,
    ProtocolError,
    StatusRecord,
    WorkerId,
    WorkerState,
    WorkingOn,
    decode_json,
    inputs,
    new_job_id,
    normalize_class,
    timefmt,
)
from resque_compat.protocol.control import ControlCommand
from resque_compat.protocol.keys import Stat, namespace_of_queues_set
from resque_compat.replies import text, to_int
from resque_compat.resp import Command


@dataclass(frozen=True)
class QueuedJob:
    """One queue item as stored, with its decoded payload (None when it is not a job)."""

    raw: bytes
    payload: JobPayload | None
    problem: str | None = None


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker of any implementation, as resque-web shows it."""

    id: str
    host: str
    pid: str
    queues: list[str]
    started: str | None
    heartbeat: str | None
    processed: int
    failed: int
    job: WorkingOn | None
    job_raw: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: what a resque-compat worker publishes in ``compat:state:<id>``; None for other peers
    #: (Ruby shows its own pause only in its process title) or once the record expired
    published: WorkerState | None = None
    #: ``pause-all-workers`` was set when this was read
    paused_all: bool = False

    @property
    def paused_by(self) -> str | None:
        """``worker`` (its own USR2 or control pause), ``pause-all``, or None."""
        return paused_by(self.published, self.heartbeat is not None, self.paused_all)

    @property
    def state(self) -> str:
        """One of :data:`WORKER_STATES` (see :func:`worker_state`)."""
        return worker_state(bool(self.job_raw), self.published, self.heartbeat is not None, self.paused_all)

    @property
    def state_label(self) -> str:
        """For people: busy, idle, paused, paused (all), shutting down."""
        if self.state == "paused" and self.paused_by == "pause-all":
            return "paused (all)"
        return self.state.replace("-", " ")

    @property
    def supervisor(self) -> int | None:
        """The pid of the ``--count`` pool that restarts this worker when it stops."""
        return self.published.supervisor if self.published is not None else None

    @property
    def classes(self) -> list[str] | None:
        """The job classes it can run, when it says (resque-compat workers); None: unknown."""
        return list(self.published.classes) if self.published is not None else None


#: every value of :attr:`WorkerInfo.state`
WORKER_STATES = ("busy", "idle", "paused", "shutting-down")


def paused_by(published: WorkerState | None, has_heartbeat: bool, paused_all: bool) -> str | None:
    """``worker`` (its own USR2 or control pause), ``pause-all``, or None.

    pause-all-workers stops only the workers that read it: resque-compat's and Ruby's, the
    ones writing ``workers:heartbeat``; php-resque, node-resque and pyres write no heartbeat
    and ignore it, so they are not shown paused."""
    if published is not None and published.paused:
        return "worker"
    return "pause-all" if paused_all and (published is not None or has_heartbeat) else None


def worker_state(has_job: bool, published: WorkerState | None, has_heartbeat: bool, paused_all: bool) -> str:
    """A requested stop wins (it is what happens next), then a job in hand (a paused worker
    finishes it), then a pause, else idle."""
    if published is not None and published.stopping:
        return "shutting-down"
    if has_job:
        return "busy"
    return "paused" if paused_by(published, has_heartbeat, paused_all) else "idle"


def queued(raw: bytes) -> QueuedJob:
    try:
        return QueuedJob(raw, JobPayload.decode(raw))
    except ProtocolError as exc:
        return QueuedJob(raw, None, str(exc))


# -- enqueue --------------------------------------------------------------------------
def enqueue_plan(
    keys: Keys, queue: str, jobs: Iterable[tuple[str, Sequence[Any]]], *, track: bool, now: float | None = None
) -> tuple[list[str | None], list[Command]]:
    """Ids and commands for pushing ``jobs``: Ruby's SADD + RPUSH, plus php-resque's status
    keys when tracked. No commands at all when ``jobs`` is empty."""
    inputs.check_name("queue name", queue)
    now = time.time() if now is None else now
    payloads: list[bytes] = []
    ids: list[str | None] = []
    for class_name, args in jobs:
        inputs.check_name("class name", class_name)
        inputs.check_json_value(list(args), "args")
        job_id = new_job_id() if track else None
        payloads.append(JobPayload.new(class_name, list(args), job_id, now).encode())
        ids.append(job_id)
    if not payloads:
        return [], []
    commands: list[Command] = [("SADD", keys.queues, queue), ("RPUSH", keys.queue(queue), *payloads)]
    if track:
        waiting = StatusRecord.waiting(int(now)).encode()
        commands.extend(("SET", keys.status(job_id), waiting) for job_id in ids if job_id is not None)
    return ids, commands


def push_raw_commands(keys: Keys, queue: str, payload: bytes) -> list[Command]:
    return [("SADD", keys.queues, queue), ("RPUSH", keys.queue(queue), payload)]


def remove_queue_commands(keys: Keys, queue: str) -> list[Command]:
    return [("SREM", keys.queues, queue), ("DEL", keys.queue(queue))]


# -- removing queued jobs ---------------------------------------------------------------
#: how many queue items one LRANGE of a removal scan reads
REMOVE_PAGE = 1000

#: ``job`` -> remove it?
JobMatcher = Callable[[JobPayload], bool]


def destroy_payload(class_name: str, args: Sequence[Any]) -> bytes:
    """What Ruby's ``Resque::Job.destroy`` with args LREMs: its own encoding of ``{class,args}``."""
    return JobPayload.new(class_name, list(args)).encode()


def class_matcher(class_name: str) -> JobMatcher:
    """``Resque::Job.destroy`` without args: every job of that exact class."""
    return lambda job: job.class_ == class_name


def dequeue_matcher(class_name: str, job_id: str | None, args: Mapping[str, Any] | None) -> JobMatcher:
    """php-resque's ``Resque::dequeue`` rules: by class, by class + id, or by class + args (the
    job's ``args[0]`` values all found among ``args``'s values)."""
    want_class = normalize_class(class_name)

    def matches(job: JobPayload) -> bool:
        if normalize_class(job.class_) != want_class:
            return False
        if job_id is not None:
            return job.job_id == job_id
        if args is not None:
            first = job.args[0] if job.args else None
            if not isinstance(first, dict) or not first:
                return False
            given = list(args.values())
            return all(v in given for v in first.values())
        return True

    return matches


def removal_page(keys: Keys, queue: str, raws: Sequence[bytes], matches: JobMatcher) -> list[Command]:
    """LREM count 1 of each matching item of one page, by its exact bytes, so that jobs pushed or
    popped meanwhile are never touched."""
    key = keys.queue(queue)
    return [("LREM", key, 1, item) for item in raws if (job := queued(item).payload) is not None and matches(job)]


# -- workers --------------------------------------------------------------------------
_PER_WORKER = 5


def worker_row_commands(keys: Keys, ids: Sequence[str]) -> list[Command]:
    """The reads behind :func:`decode_workers` (``ids`` not empty): the ids' heartbeats,
    pause-all-workers, then 5 keys per worker."""
    commands: list[Command] = [("HMGET", keys.heartbeat, *ids), ("GET", keys.pause_all)]
    for wid in ids:
        commands += [
            ("GET", keys.worker(wid)),
            ("GET", keys.worker_started(wid)),
            ("GET", keys.stat(Stat.PROCESSED, wid)),
            ("GET", keys.stat(Stat.FAILED, wid)),
            ("GET", keys.worker_state(wid)),
        ]
    return commands


def decode_worker_state(raw_state: bytes | None) -> WorkerState | None:
    if not raw_state:
        return None
    try:
        return WorkerState.decode(raw_state)
    except ProtocolError:
        return None  # unreadable: the worker's state is unknown, as for a peer's worker


def decode_workers(ids: Sequence[str], results: Sequence[Any]) -> list[WorkerInfo]:
    """Turn the replies of :func:`worker_row_commands` into :class:`WorkerInfo` rows."""
    beats = {wid: text(beat) for wid, beat in zip(ids, results[0], strict=True) if beat is not None}
    paused_all = is_true(results[1])
    out = []
    for i, wid in enumerate(ids):
        first = 2 + _PER_WORKER * i
        job_raw, started, processed, failed, raw_state = results[first : first + _PER_WORKER]
        parsed = WorkerId.parse(wid)
        job = None
        if job_raw:
            try:
                job = WorkingOn.decode(job_raw)
            except ProtocolError:
                job = None
        out.append(
            WorkerInfo(
                id=wid,
                host=parsed.host,
                pid=parsed.pid,
                queues=parsed.queue_list,
                started=started.decode(errors="replace") if started else None,
                heartbeat=beats.get(wid),  # junk bytes are shown, never a crash
                processed=to_int(processed),
                failed=to_int(failed),
                job=job,
                job_raw=job_raw,
                published=decode_worker_state(raw_state),
                paused_all=paused_all,
            )
        )
    return out


#: worker keys per MGET when finding which workers hold a job
MGET_CHUNK = 10_000


def busy_commands(keys: Keys, ids: Sequence[str]) -> list[Command]:
    """``worker:<id>`` of every id by MGET in chunks: 100,000 workers cost a few commands."""
    return [("MGET", *(keys.worker(w) for w in ids[i : i + MGET_CHUNK])) for i in range(0, len(ids), MGET_CHUNK)]


def decode_busy(ids: Sequence[str], results: Sequence[Any]) -> dict[str, bytes]:
    """The ids holding a job, with their ``worker:<id>`` bytes (replies of :func:`busy_commands`)."""
    values = [value for reply in results for value in reply]
    return {wid: bytes(value) for wid, value in zip(ids, values, strict=True) if value}


def worker_state_commands(keys: Keys, ids: Sequence[str]) -> list[Command]:
    """What :attr:`WorkerInfo.state` needs and no more (no payload is read): pause-all-workers,
    then per worker the length of ``worker:<id>``, its published state, whether it beats."""
    commands: list[Command] = [("GET", keys.pause_all)]
    for wid in ids:
        commands += [("STRLEN", keys.worker(wid)), ("GET", keys.worker_state(wid)), ("HEXISTS", keys.heartbeat, wid)]
    return commands


def decode_worker_states(ids: Sequence[str], results: Sequence[Any]) -> dict[str, str]:
    """Each id's state (one of :data:`WORKER_STATES`) from :func:`worker_state_commands`'s replies."""
    paused_all = is_true(results[0])
    out: dict[str, str] = {}
    for i, wid in enumerate(ids):
        length, raw_state, beats = results[1 + 3 * i : 4 + 3 * i]
        out[wid] = worker_state(bool(int(length)), decode_worker_state(raw_state), bool(beats), paused_all)
    return out


def node_ping_time(raw: bytes | None) -> int | float | None:
    """When node-resque last wrote ``worker:ping:<host:pid>`` (its ``time``, unix seconds);
    None when there is no ping or it does not say."""
    if raw is None:
        return None
    try:
        value = decode_json(raw)
    except ProtocolError:
        return None
    moment = value.get("time") if isinstance(value, dict) else None
    return moment if isinstance(moment, (int, float)) and not isinstance(moment, bool) else None


@dataclass(frozen=True)
class WorkerDetail:
    """One worker as its page shows it: its row, the commands waiting in its control list, and
    node-resque's own liveness key and per-name counters (where the row has none)."""

    row: WorkerInfo
    control_pending: int
    node_ping: bytes | None
    node_processed: int | None
    node_failed: int | None

    @property
    def node_ping_time(self) -> int | float | None:
        return node_ping_time(self.node_ping)


def worker_detail_commands(keys: Keys, worker_id: str) -> list[Command]:
    """Registered?, the row, then the control list's length, node-resque's ping and counters."""
    name = WorkerId.parse(worker_id).node_name
    return [
        ("SISMEMBER", keys.workers, worker_id),
        *worker_row_commands(keys, [worker_id]),
        ("LLEN", keys.control(worker_id)),
        ("GET", keys.node_worker_ping(name)),
        ("GET", keys.stat(Stat.PROCESSED, name)),
        ("GET", keys.stat(Stat.FAILED, name)),
    ]


def decode_worker_detail(worker_id: str, results: Sequence[Any]) -> WorkerDetail | None:
    """None when the worker is not registered."""
    if not int(results[0]):
        return None
    *row, pending, ping, processed, failed = results[1:]
    return WorkerDetail(
        row=decode_workers([worker_id], row)[0],
        control_pending=int(pending),
        node_ping=None if ping is None else bytes(ping),
        node_processed=None if processed is None else to_int(processed),
        node_failed=None if failed is None else to_int(failed),
    )


def check_control(command: str) -> ControlCommand:
    """The command a control word names; ValueError (naming the known ones) for any other."""
    known = ControlCommand.parse(command)
    if known is None:
        raise ValueError(f"unknown worker command {command!r} ({', '.join(ControlCommand.words())})")
    return known


def is_true(value: bytes | str | None) -> bool:
    """Ruby's ``pause-all-workers`` test: the string ``true``."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value is not None and value.strip().lower() == "true"


# -- status ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredStatus:
    """A php-resque status key as stored: its bytes and TTL, and the record when they decode."""

    raw: bytes
    ttl: int

    @property
    def record(self) -> StatusRecord | None:
        try:
            return StatusRecord.decode(self.raw)
        except ProtocolError:
            return None


def stored_status_commands(keys: Keys, job_id: str, prefix: str) -> list[Command]:
    key = keys.status(job_id, prefix)
    return [("GET", key), ("TTL", key)]


def decode_stored_status(results: Sequence[Any]) -> StoredStatus | None:
    stored, ttl = results
    return None if stored is None else StoredStatus(bytes(stored), int(ttl))


# -- namespaces -----------------------------------------------------------------------
def namespace_used_command(keys: Keys) -> Command:
    """EXISTS of the keys every deployment soon has: queues, workers, stat:processed, failed."""
    return ("EXISTS", keys.queues, keys.workers, keys.stat(Stat.PROCESSED), keys.failed)


def namespace_names(queue_sets: Iterable[bytes | str]) -> list[str]:
    """The namespaces of SCAN ``ANY_QUEUES_SET`` replies (``""``: keys without a namespace)."""
    names = {namespace_of_queues_set(text(key)) for key in queue_sets}
    return sorted(name for name in names if name is not None)


# -- info -----------------------------------------------------------------------------
def server_address(connection_kwargs: Mapping[str, Any]) -> str:
    """``host:port/db``, or the socket's path, from a redis-py pool's connection kwargs."""
    conn = connection_kwargs
    return str(conn.get("path") or f"{conn.get('host', 'localhost')}:{conn.get('port', 6379)}/{conn.get('db', 0)}")


def server_url(connection_kwargs: Mapping[str, Any]) -> str:
    """How ``Resque.info`` names the server."""
    scheme = "unix" if connection_kwargs.get("path") else "redis"
    return f"{scheme}://{server_address(connection_kwargs)}"


def info_dict(
    sizes: Mapping[str, int], workers: Sequence[WorkerInfo], processed: int, failed: int, server: str
) -> dict[str, Any]:
    """Ruby's ``Resque.info`` hash."""
    return {
        "pending": sum(sizes.values()),
        "processed": processed,
        "queues": len(sizes),
        "workers": len(workers),
        "working": sum(1 for w in workers if w.job_raw),
        "failed": failed,
        "servers": [server],
        "environment": os.environ.get("RAILS_ENV") or os.environ.get("RACK_ENV") or "development",
    }


# -- failures -------------------------------------------------------------------------
def retry_plan(record: Failure) -> tuple[bytes, JobPayload, bytes]:
    """For retrying a failure: the payload bytes to push back whole, the decoded job, and the
    entry's new bytes (marked ``retried_at``). Raises ProtocolError when it holds no job."""
    payload = bytes(record.payload)
    job = JobPayload.decode(payload)
    record.retried_at = timefmt.failed_at()
    return payload, job, record.encode()


def requeue_commands(
    keys: Keys, queue: str, payload: bytes, job: JobPayload, current_status: bytes | str | None
) -> list[Command]:
    """Push a retried payload back; a tracked job's status returns to waiting (SET also
    clears the 24 h TTL of its final status)."""
    commands = push_raw_commands(keys, queue, payload)
    job_id = job.job_id
    if job_id and current_status is not None:
        try:
            waiting = StatusRecord.decode(current_status).advanced(JobStatus.WAITING)
        except ProtocolError:
            return commands
        commands.append(("SET", keys.status(job_id, job.status_prefix), waiting.encode()))
    return commands
