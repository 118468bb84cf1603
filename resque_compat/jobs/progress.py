"""Job progress: resque-status's layout (``status:<uuid>``, ``_statuses``, ``_kill``) and the same
progress calls for php-style tracked jobs.

A resque-status job is enqueued with args ``[uuid, options]`` (:meth:`ResqueStatuses.create`,
or Ruby's ``MyJob.create``). The worker runs it as Ruby's ``safe_perform!`` does: status
``working``, the job's ``perform(self)`` (which reports with ``self.at(num, total, message)``,
``self.tick(message)``, ``self.completed(...)``), then ``completed`` unless the job already set a
final status. An exception marks it ``failed`` ("The task failed because of an error: ...") and
goes on to Resque's failure path. A kill (``SADD _kill <uuid>``, from any process or language)
is seen at the job's next ``at``/``tick``: the status becomes ``killed`` and the job ends as a
success, as in Ruby. Every write is Ruby's GET + merge + SET, so the bytes are Ruby's.

A php-style tracked job (payload ``id``, status ``job:<id>:status``) gets ``at``/``tick`` too:
progress is written into its status record as extra fields (``num``, ``total``,
``pct_complete``, ``message``) that php-resque's readers ignore.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from resque_compat.plans import push_raw_commands
from resque_compat.protocol import JobPayload, Keys, ProtocolError, StatusRecord, decode_json, timefmt
from resque_compat.protocol.progress import (
    COMPLETED,
    FAILED,
    KILLED,
    WORKING,
    ResqueStatus,
    merged,
    new_uuid,
)
from resque_compat.replies import raw, text
from resque_compat.resp import Command, queue_commands

#: resque-status's queue for classes without ``@queue``
DEFAULT_QUEUE = "statused"
#: what ``clear`` can remove: every listed record, or those in one final status
STATUS_FILTERS = ("all", COMPLETED, FAILED, KILLED)


class Killed(BaseException):
    """Raised in the job by ``at``/``tick`` once a kill was asked for; ends the job as killed.
    A BaseException, so a job's ``except Exception`` does not swallow it."""

    resque_name = "Resque::Plugins::Status::Killed"


class ResqueStatuses:
    """resque-status's records on one Redis: what Ruby's ``Resque::Plugins::Status::Hash`` does.

    ``expire_in`` is Ruby's ``Hash.expire_in``: a TTL refreshed at every write, and ``_statuses``
    trimmed by age at each ``create``."""

    def __init__(self, client: redis.Redis, keys: Keys, expire_in: int | None = None) -> None:
        self.redis = client
        self.keys = keys
        self.expire_in = expire_in

    # -- reading ------------------------------------------------------------------
    def get(self, uuid: str) -> ResqueStatus | None:
        """The record, or None when there is none; an unreadable one comes back as status
        ``unreadable`` with the reason as its message (never raises)."""
        return _read(uuid, self.redis.get(self.keys.resque_status(uuid)))

    def ids(self, start: int = 0, end: int = -1) -> list[str]:
        """``status_ids``: newest first."""
        return [text(u) for u in self.redis.zrevrange(self.keys.resque_statuses, start, end)]

    def records(self, start: int = 0, end: int = -1) -> list[ResqueStatus]:
        """``statuses``: the listed records that still exist, newest first."""
        ids = self.ids(start, end)
        if not ids:
            return []
        values = self.redis.mget([self.keys.resque_status(u) for u in ids])
        return [s for u, v in zip(ids, values, strict=True) if (s := _read(u, v)) is not None]

    def count(self) -> int:
        return int(self.redis.zcard(self.keys.resque_statuses))

    def progress(self, job_id: str, prefix: str = "") -> ProgressView | None:
        """The php status of ``job_id`` if there is one, else its resque-status record, else None."""
        return progress_view(self.redis, self.keys, job_id, prefix)

    def follow_progress(
        self, job_id: str, *, prefix: str = "", interval: float = 0.5, timeout: float | None = None
    ) -> Iterator[ProgressView]:
        """:meth:`progress` at each change until a final one (see :func:`follow_progress`)."""
        return follow_progress(self.redis, self.keys, job_id, prefix=prefix, interval=interval, timeout=timeout)

    def kill_requested(self, uuid: str) -> bool:
        return bool(self.redis.sismember(self.keys.resque_status_kill, uuid))

    def kills(self) -> list[str]:
        return sorted(text(u) for u in self.redis.smembers(self.keys.resque_status_kill))

    # -- writing ------------------------------------------------------------------
    def create(self, class_name: str, options: dict[str, Any] | None = None, *, queue: str = DEFAULT_QUEUE) -> str:
        """``MyJob.create(options)``: status ``queued`` with the options, listed in
        ``_statuses``, and the job ``{"class":…,"args":[uuid, options]}`` pushed; returns the uuid.
        One MULTI (Ruby sends the same commands one by one)."""
        uuid, commands = create_plan(self.keys, class_name, options, queue=queue, expire_in=self.expire_in)
        pipe = self.redis.pipeline(transaction=True)
        queue_commands(pipe, commands)
        pipe.execute()
        return uuid

    def update(self, uuid: str, name: str | None, *pieces: str | dict[str, Any]) -> ResqueStatus:
        """``set_status``: GET, merge, SET (and EXPIRE), as Ruby does."""
        key = self.keys.resque_status(uuid)
        current = _decoded(self.redis.get(key))
        record = merged(current, uuid, name, *pieces)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(key, record.encode())
        if self.expire_in:
            pipe.expire(key, self.expire_in)
        pipe.execute()
        return record

    def kill(self, *uuids: str) -> None:
        """``Hash.kill``: the job stops at its next ``at``/``tick``."""
        if uuids:
            self.redis.sadd(self.keys.resque_status_kill, *uuids)

    def forget_kill(self, uuid: str) -> None:
        self.redis.srem(self.keys.resque_status_kill, uuid)

    def remove(self, uuid: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.resque_status(uuid))
        pipe.zrem(self.keys.resque_statuses, uuid)
        pipe.execute()

    def clear(self, only: str | None = None) -> int:
        """``clear`` / ``clear_completed`` / ``clear_failed`` (``only`` = a status name)."""
        removed = 0
        for uuid in self.ids():
            if only is not None:
                record = self.get(uuid)
                if record is None or record.state != only:
                    continue
            self.remove(uuid)
            removed += 1
        return removed


def create_plan(
    keys: Keys, class_name: str, options: dict[str, Any] | None, *, queue: str, expire_in: int | None = None
) -> tuple[str, list[Command]]:
    """The uuid and the commands (one MULTI) of resque-status's ``create``, for both clients."""
    opts: dict[str, Any] = dict(options or {})
    for key in opts:
        if not isinstance(key, str):
            raise TypeError(f"option keys must be strings (JSON object keys), not {key!r}")
    uuid = new_uuid()
    record = merged(None, uuid, None, {"options": opts})
    now = int(record.time)
    status_key = keys.resque_status(uuid)
    commands: list[Command] = [("SET", status_key, record.encode())]
    if expire_in:
        commands.append(("EXPIRE", status_key, expire_in))
    commands.append(("ZADD", keys.resque_statuses, now, uuid))
    if expire_in:
        commands.append(("ZREMRANGEBYSCORE", keys.resque_statuses, 0, now - expire_in))
    commands += push_raw_commands(keys, queue, JobPayload.new(class_name, [uuid, opts]).encode())
    return uuid, commands


def read_status(uuid: str, value: Any) -> ResqueStatus | None:
    """A stored ``status:<uuid>`` value as a record (None: absent); never raises."""
    return _read(uuid, value)


def _decoded(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = decode_json(raw(value))
    except ProtocolError:
        return None
    return data if isinstance(data, dict) else None


def _read(uuid: str, value: Any) -> ResqueStatus | None:
    if value is None:
        return None
    try:
        return ResqueStatus.decode(raw(value))
    except ProtocolError as exc:
        return ResqueStatus(uuid=uuid, status="unreadable", message=str(exc))


class StatusReporter:
    """The calls a resque-status job makes on itself (bound onto the job as ``self.at`` ...)."""

    def __init__(self, store: ResqueStatuses, uuid: str, name: str) -> None:
        self.store = store
        self.uuid = uuid
        self.name = name

    def set_status(self, *pieces: str | dict[str, Any]) -> ResqueStatus:
        return self.store.update(self.uuid, self.name, *pieces)

    def status(self) -> ResqueStatus | None:
        return self.store.get(self.uuid)

    def tick(self, *messages: str | dict[str, Any]) -> None:
        """Report that the job is alive; a pending kill stops it here."""
        if self.store.kill_requested(self.uuid):
            self.kill()
        self.set_status({"status": WORKING}, *messages)

    def at(self, num: Any, total: Any, *messages: str | dict[str, Any]) -> None:
        """``at(num, total, message)``: progress; ``total`` must be > 0 (Ruby's NotANumber)."""
        try:
            ok = float(total) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"Called at() with total={total!r}; total must be a number > 0")
        self.tick({"num": num, "total": total}, *messages)

    def completed(self, *messages: str | dict[str, Any]) -> None:
        self.set_status({"status": COMPLETED, "message": f"Completed at {timefmt.started()}"}, *messages)

    def failed(self, *messages: str | dict[str, Any]) -> None:
        """Mark the status failed without raising: the job then ends as a Resque success."""
        self.set_status({"status": FAILED}, *messages)

    def kill(self) -> None:
        self.set_status({"status": KILLED, "message": f"Killed at {timefmt.started()}"})
        raise Killed(self.uuid)


def status_job_args(args: list[Any]) -> tuple[str, dict[str, Any]]:
    """``perform(uuid = nil, options = {})``: a fresh uuid when none is given."""
    uuid = args[0] if args and isinstance(args[0], str) and args[0] else new_uuid()
    options = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    return uuid, options


def perform_status_job(
    reporter: StatusReporter, perform: Callable[[], Any], error_text: Callable[[BaseException], str]
) -> Any:
    """Ruby's ``safe_perform!`` around the job's own perform."""
    reporter.set_status({"status": WORKING})
    try:
        result = perform()
    except Killed:
        reporter.store.forget_kill(reporter.uuid)
        return None
    except BaseException as exc:
        reporter.failed(f"The task failed because of an error: {error_text(exc)}")
        raise
    current = reporter.status()
    state = current.state if current is not None else ""
    if state not in (FAILED, COMPLETED, KILLED):
        if result is None:
            reporter.completed()
        else:
            reporter.completed({"result": result})
    return None


class TrackedProgress:
    """``at``/``tick`` for a php-style tracked job: progress as extra fields of its status record
    (GET + SET, no expiry while it runs); the last progress also goes back to the worker, which
    keeps it in the final record."""

    def __init__(self, client: redis.Redis, key: str | None) -> None:
        self.redis = client
        self.key = key
        self.fields: dict[str, Any] = {}

    def tick(self, *messages: str | dict[str, Any]) -> None:
        for piece in messages:
            self.fields.update({"message": piece} if isinstance(piece, str) else piece)
        self._write()

    def at(self, num: Any, total: Any, *messages: str | dict[str, Any]) -> None:
        try:
            pct = int(float(num) / float(total) * 100)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            raise ValueError(f"Called at() with total={total!r}; total must be a number > 0") from None
        self.fields.update({"num": num, "total": total, "pct_complete": pct})
        self.tick(*messages)

    def completed(self, *messages: str | dict[str, Any]) -> None:
        self.fields["pct_complete"] = 100
        self.tick(*messages)

    def _write(self) -> None:
        if self.key is None:  # not tracked: nowhere to keep it
            return
        value = self.redis.get(self.key)
        if value is None:
            return
        try:
            record = StatusRecord.decode(raw(value))
        except ProtocolError:
            return
        record.extra.update(self.fields)
        self.redis.set(self.key, record.encode(), keepttl=True)


class StatusJob:
    """Optional base for a resque-status job class (typed ``self.at`` & co.); without it the
    worker binds the same calls onto the instance."""

    uuid: str
    options: dict[str, Any]
    status_reporter: StatusReporter

    def at(self, num: Any, total: Any, *messages: str | dict[str, Any]) -> None:
        self.status_reporter.at(num, total, *messages)

    def tick(self, *messages: str | dict[str, Any]) -> None:
        self.status_reporter.tick(*messages)

    def completed(self, *messages: str | dict[str, Any]) -> None:
        self.status_reporter.completed(*messages)

    def failed(self, *messages: str | dict[str, Any]) -> None:
        self.status_reporter.failed(*messages)

    def set_status(self, *pieces: str | dict[str, Any]) -> None:
        self.status_reporter.set_status(*pieces)


#: the calls bound onto a job instance that does not define them itself
REPORTER_CALLS = ("at", "tick", "completed", "failed", "set_status", "kill")
TRACKED_CALLS = ("at", "tick", "completed")


def bind_calls(instance: Any, source: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(type(instance), name, None) is None and hasattr(source, name):
            setattr(instance, name, getattr(source, name))


@dataclass(frozen=True)
class ProgressView:
    """One job's state as ``status`` shows it, whichever record holds it: a php-resque status
    (``kind`` "php": 1-4, with progress extras when the job reported any) or a resque-status
    record (``kind`` "resque-status")."""

    kind: str
    job_id: str
    state: str
    final: bool
    pct: int | None
    message: str
    record: dict[str, Any]
    #: the php status record itself (kind "php")
    php: StatusRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.job_id, "kind": self.kind, "name": self.state, "pct_complete": self.pct,
                "message": self.message or None, "record": self.record}  # fmt: skip

    def progress_text(self) -> str:
        """`` 25% step 1``: what the job reported, or nothing."""
        pct = "" if self.pct is None else f" {self.pct}%"
        return pct + (f" {self.message}" if self.message else "")

    def line(self) -> str:
        head = f"{self.record.get('status')} {self.state}" if self.kind == "php" else self.state
        return head + self.progress_text()


def progress_view(client: redis.Redis, keys: Keys, job_id: str, prefix: str = "") -> ProgressView | None:
    """The php status of ``job_id`` if there is one, else its resque-status record, else None."""
    value = client.get(keys.status(job_id, prefix))
    if value is not None:
        try:
            php = StatusRecord.decode(raw(value))
        except ProtocolError as exc:
            return ProgressView("php", job_id, "unreadable", True, None, str(exc), {})
        state = php.state
        data = php.to_dict()
        pct = data.get("pct_complete")
        message = data.get("message")
        return ProgressView(
            "php", job_id, state.name.lower() if state is not None else "unknown", bool(state and state.final),
            pct if isinstance(pct, int) and not isinstance(pct, bool) else None,
            message if isinstance(message, str) else "", data, php,
        )  # fmt: skip
    record = _read(job_id, client.get(keys.resque_status(job_id)))
    if record is None:
        return None
    message = record.message if isinstance(record.message, str) else ""
    return ProgressView(
        "resque-status", job_id, record.state or "unknown", record.final or record.state == "unreadable",
        record.pct_complete, message, record.json_with_pct(),
    )  # fmt: skip


def follow_progress(
    client: redis.Redis,
    keys: Keys,
    job_id: str,
    *,
    prefix: str = "",
    interval: float = 0.5,
    timeout: float | None = None,
) -> Iterator[ProgressView]:
    """Yield the job's view at each change (state, progress or message) until a final one.
    LookupError when the job has no record (or it vanished), TimeoutError after ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last: tuple[Any, ...] | None = None
    while True:
        view = progress_view(client, keys, job_id, prefix)
        if view is None:
            raise LookupError(f"no status for job {job_id} (not tracked, or expired)")
        seen = (view.state, view.pct, view.message)
        if seen != last:
            last = seen
            yield view
            if view.final:
                return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} is still {view.state} after {timeout} s")
        time.sleep(interval)
