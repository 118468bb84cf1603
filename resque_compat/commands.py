"""The pure half of the client: which Redis commands an operation sends, and how replies decode.

The sync :class:`resque_compat.client.Resque` and the asyncio
:class:`resque_compat.aio.AsyncResque` both build their writes here and only differ in how
they send them, so the two write the same bytes by construction. A command is a tuple
``(method, *args)`` naming a redis-py pipeline method; :func:`queue_commands` puts a list of
them on a sync or an asyncio pipeline alike (both buffer synchronously).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
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
    WorkingOn,
    inputs,
    new_job_id,
    timefmt,
)
from resque_compat.replies import text, to_int

Command = tuple[Any, ...]


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

    @property
    def state(self) -> str:
        return "working" if self.job_raw else "idle"


def queue_commands(pipe: Any, commands: Iterable[Command]) -> None:
    """Buffer ``commands`` on a redis-py pipeline (sync or asyncio)."""
    for name, *args in commands:
        getattr(pipe, name)(*args)


def queued(raw: bytes) -> QueuedJob:
    try:
        return QueuedJob(raw, JobPayload.decode(raw))
    except ProtocolError as exc:
        return QueuedJob(raw, None, str(exc))


def check_name(what: str, value: str) -> None:
    inputs.check_name(f"{what} name", value)


# -- enqueue --------------------------------------------------------------------------
def enqueue_plan(
    keys: Keys, queue: str, jobs: Iterable[tuple[str, Sequence[Any]]], *, track: bool, now: float | None = None
) -> tuple[list[str | None], list[Command]]:
    """Ids and commands for pushing ``jobs``: Ruby's SADD + RPUSH, plus php-resque's status
    keys when tracked. No commands at all when ``jobs`` is empty."""
    check_name("queue", queue)
    now = time.time() if now is None else now
    payloads: list[bytes] = []
    ids: list[str | None] = []
    for class_name, args in jobs:
        check_name("class", class_name)
        inputs.check_json_value(list(args), "args")
        job_id = new_job_id() if track else None
        payloads.append(JobPayload.new(class_name, list(args), job_id, now).encode())
        ids.append(job_id)
    if not payloads:
        return [], []
    commands: list[Command] = [("sadd", keys.queues, queue), ("rpush", keys.queue(queue), *payloads)]
    if track:
        waiting = StatusRecord.waiting(int(now)).encode()
        commands.extend(("set", keys.status(job_id), waiting) for job_id in ids if job_id is not None)
    return ids, commands


def push_raw_commands(keys: Keys, queue: str, payload: bytes) -> list[Command]:
    return [("sadd", keys.queues, queue), ("rpush", keys.queue(queue), payload)]


def remove_queue_commands(keys: Keys, queue: str) -> list[Command]:
    return [("srem", keys.queues, queue), ("delete", keys.queue(queue))]


# -- workers --------------------------------------------------------------------------
def worker_row_commands(keys: Keys, ids: Sequence[str]) -> list[Command]:
    """The reads behind :func:`decode_workers`: the heartbeat hash, then 4 keys per worker."""
    commands: list[Command] = [("hgetall", keys.heartbeat)]
    for wid in ids:
        commands += [
            ("get", keys.worker(wid)),
            ("get", keys.worker_started(wid)),
            ("get", keys.stat("processed", wid)),
            ("get", keys.stat("failed", wid)),
        ]
    return commands


def decode_workers(ids: Sequence[str], results: Sequence[Any]) -> list[WorkerInfo]:
    """Turn the replies of :func:`worker_row_commands` into :class:`WorkerInfo` rows."""
    beats = {text(k): text(v) for k, v in results[0].items()}  # junk bytes are shown, never a crash
    out = []
    for i, wid in enumerate(ids):
        job_raw, started, processed, failed = results[1 + 4 * i : 5 + 4 * i]
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
                heartbeat=beats.get(wid),
                processed=to_int(processed),
                failed=to_int(failed),
                job=job,
                job_raw=job_raw,
            )
        )
    return out


def check_control(command: str) -> None:
    if command not in ("pause", "resume", "stop", "kill-job"):
        raise ValueError(f"unknown worker command {command!r} (pause, resume, stop, kill-job)")


def is_true(value: bytes | str | None) -> bool:
    """Ruby's ``pause-all-workers`` test: the string ``true``."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value is not None and value.strip().lower() == "true"


# -- info -----------------------------------------------------------------------------
def server_url(connection_kwargs: Mapping[str, Any]) -> str:
    """How ``Resque.info`` names the server, from a redis-py pool's connection kwargs."""
    if "path" in connection_kwargs:
        return f"unix://{connection_kwargs['path']}"
    conn = connection_kwargs
    return f"redis://{conn.get('host', 'localhost')}:{conn.get('port', 6379)}/{conn.get('db', 0)}"


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
        commands.append(("set", keys.status(job_id, job.status_prefix), waiting.encode()))
    return commands
