"""The stored shapes (msgspec Structs) and their JSON codec.

Every peer writes compact JSON, but each adds its own keys (php-resque's ``id``/``queue_time``,
the fork's ``prefix``, node-resque's ``queue`` and ``worker``, pyres' ``enqueue_timestamp``).
A :class:`Record` keeps whatever it does not know in :attr:`Record.extra` and the original key
order in :attr:`Record.key_order`, so a record we rewrite (a retried failure, an updated
status) reaches the next reader with nothing dropped and nothing reordered. Payloads embedded
in other records are :class:`msgspec.Raw`: the bytes a peer enqueued travel untouched.
"""

from __future__ import annotations

import enum
import functools
import time
from typing import Any, ClassVar, TypeVar

import msgspec

Raw = msgspec.Raw
UNSET: Any = msgspec.UNSET
UnsetType = msgspec.UnsetType

R = TypeVar("R", bound="Record")

_decode_any = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class ProtocolError(ValueError):
    """Bytes in Redis that are not a record of the expected shape."""


def encode_json(value: Any) -> bytes:
    """Compact JSON as Ruby's ``MultiJson.dump`` writes it: raw UTF-8, ``/`` unescaped.

    Floats use the shortest repr that round-trips (see spec/PROTOCOL.md, "Floats").
    """
    return _encode(value)


def decode_json(data: bytes | str) -> Any:
    """Decode any JSON value; raises :class:`ProtocolError` with the reason."""
    try:
        return _decode_any(data)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:  # nesting too deep, lone surrogates
        raise ProtocolError(f"not valid JSON: {exc}") from None


@functools.cache
def _json_names(cls: type[msgspec.Struct]) -> dict[str, str]:
    return {f.encode_name: f.name for f in msgspec.structs.fields(cls) if f.name not in ("extra", "key_order")}


@functools.cache
def _raw_names(cls: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(cls) if f.type is msgspec.Raw)


class Record(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every stored shape: known fields typed, unknown fields kept."""

    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    key_order: tuple[str, ...] = ()
    #: list fields peers always write, even empty (Ruby's ``"args":[]``, ``"backtrace":[]``)
    _always_written: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _json_names(cls) -> dict[str, str]:
        """JSON name -> attribute name of the typed fields."""
        return _json_names(cls)

    @classmethod
    def _raw_names(cls) -> frozenset[str]:
        """JSON names of the fields kept as raw bytes (embedded payloads)."""
        return _raw_names(cls)

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        """Build from a decoded JSON object, keeping unknown keys and the key order."""
        if not isinstance(data, dict):
            raise ProtocolError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        known = cls._json_names()
        try:
            record = msgspec.convert({k: v for k, v in data.items() if k in known}, cls, str_keys=True)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"{cls.__name__}: {exc}") from None
        record.extra = {k: v for k, v in data.items() if k not in known}
        record.key_order = tuple(data)
        return record

    @classmethod
    def decode(cls: type[R], data: bytes | str) -> R:
        """Decode stored bytes; embedded payloads stay as their original bytes."""
        raw_names = cls._raw_names()
        if not raw_names:
            return cls.from_dict(decode_json(data))
        try:
            fields = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError, RecursionError) as exc:
            raise ProtocolError(f"{cls.__name__}: not a JSON object: {exc}") from None
        return cls.from_dict({k: v if k in raw_names else _decode_any(v) for k, v in fields.items()})

    def to_dict(self) -> dict[str, Any]:
        """Ordered dict: the original key order first, new keys after, as Ruby's Hash does."""
        typed = {
            enc: getattr(self, attr) for enc, attr in self._json_names().items() if getattr(self, attr) is not UNSET
        }
        extra = dict(self.extra)
        out: dict[str, Any] = {}
        for name in self.key_order:
            if name in typed:
                out[name] = typed.pop(name)
            elif name in extra:
                out[name] = extra.pop(name)
        out.update(typed)
        out.update(extra)
        return out

    def encode(self) -> bytes:
        if not self.extra and not self.key_order and all(getattr(self, a) for a in self._always_written):
            return _encode(self)  # fresh record: declared order, unset fields omitted
        return _encode(self.to_dict())


class JobPayload(Record, kw_only=True, omit_defaults=True):
    """A queue item. Ruby writes ``{class,args}``; php-resque adds ``id`` and ``queue_time``
    (and the fork ``prefix``); node-resque adds ``queue``."""

    _always_written: ClassVar[tuple[str, ...]] = ("args",)
    class_: str = msgspec.field(name="class")
    args: list[Any] = msgspec.field(default_factory=list)
    id: str | UnsetType = UNSET
    prefix: str | UnsetType = UNSET
    queue_time: float | UnsetType = UNSET

    @classmethod
    def from_dict(cls, data: Any) -> JobPayload:
        """node-resque's Lua (cjson) turns an empty ``args`` list into ``{}``: read it as ``[]``."""
        if isinstance(data, dict) and data.get("args") == {}:
            data = {**data, "args": []}
        return super().from_dict(data)

    @classmethod
    def new(cls, class_name: str, args: list[Any], job_id: str | None = None, now: float | None = None) -> JobPayload:
        """Ruby's ``{class,args}``; with a job id, php-resque's tracked ``{class,args,id,queue_time}``."""
        if job_id is None:
            return cls(class_=class_name, args=args)
        return cls(class_=class_name, args=args, id=job_id, queue_time=time.time() if now is None else now)

    @property
    def status_prefix(self) -> str:
        return self.prefix if isinstance(self.prefix, str) else ""

    @property
    def job_id(self) -> str | None:
        return self.id if isinstance(self.id, str) and self.id else None


class WorkingOn(Record, kw_only=True, omit_defaults=True):
    """``worker:<id>``: the job a worker holds, ``{queue, run_at, payload}``."""

    queue: str
    run_at: str
    payload: msgspec.Raw


class Failure(Record, kw_only=True, omit_defaults=True):
    """A ``failed`` list entry, keys in Ruby's order."""

    _always_written: ClassVar[tuple[str, ...]] = ("backtrace",)
    failed_at: str
    payload: msgspec.Raw
    exception: str
    error: str
    backtrace: list[str] = msgspec.field(default_factory=list)
    worker: str
    queue: str
    retried_at: str | UnsetType | None = UNSET


class JobStatus(enum.IntEnum):
    """php-resque's ``Resque_Job_Status`` values."""

    WAITING = 1
    RUNNING = 2
    FAILED = 3
    COMPLETE = 4

    @property
    def final(self) -> bool:
        return self in (JobStatus.FAILED, JobStatus.COMPLETE)


class StatusRecord(Record, kw_only=True, omit_defaults=True):
    """``job:<id>:status``. chrisboulton writes ``{status,updated,started}``; resque/php-resque
    adds ``result``; both expire the key 24 h after a final status."""

    status: int
    updated: int | float | UnsetType = UNSET
    started: int | float | UnsetType = UNSET
    result: Any = UNSET

    @classmethod
    def waiting(cls, now: int | None = None) -> StatusRecord:
        """What enqueue writes: chrisboulton's ``{status,updated,started}``, readable by both variants."""
        t = int(time.time()) if now is None else now
        return cls(status=JobStatus.WAITING, updated=t, started=t)

    def advanced(self, status: JobStatus, now: int | None = None, result: Any = UNSET) -> StatusRecord:
        """The next record: ``started`` kept (the fork re-reads it; we never drop it as cb does),
        ``result`` written when given or when the record already carries one (fork shape)."""
        nxt = msgspec.structs.replace(self, status=int(status), updated=int(time.time()) if now is None else now)
        if result is not UNSET:
            nxt.result = result
        return nxt

    @property
    def state(self) -> JobStatus | None:
        try:
            return JobStatus(self.status)
        except ValueError:
            return None


STATUS_TTL = 86400


class DelayedItem(Record, kw_only=True, omit_defaults=True):
    """A ``delayed:<ts>`` entry: resque-scheduler's ``{class,args,queue}``."""

    _always_written: ClassVar[tuple[str, ...]] = ("args",)
    class_: str = msgspec.field(name="class")
    args: list[Any] = msgspec.field(default_factory=list)
    queue: str


class ScheduleEntry(Record, kw_only=True, omit_defaults=True):
    """A recurring schedule as resque-scheduler stores it in ``persistent_schedules``."""

    class_: str | UnsetType = msgspec.field(default=UNSET, name="class")
    cron: str | UnsetType = UNSET
    every: str | list[Any] | UnsetType = UNSET
    queue: str | UnsetType = UNSET
    args: Any = UNSET
    description: str | UnsetType = UNSET
    persist: bool | UnsetType = UNSET


class WorkerState(Record, kw_only=True, omit_defaults=True):
    """``compat:state:<id>``: what a resque-compat worker is doing that Resque's keys cannot say
    (Ruby shows it only in the process title), refreshed with each heartbeat and expiring
    when the worker is gone. ``classes``: the job classes it can run (for ``doctor``);
    ``supervisor``: the pid of the ``--count`` pool that restarts it when it stops."""

    paused: bool = False
    stopping: bool = False
    classes: list[str] = msgspec.field(default_factory=list)
    supervisor: int | None = None
