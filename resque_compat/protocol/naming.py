"""Identifiers: worker ids, job ids, class names, queue lists."""

from __future__ import annotations

import fnmatch
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

_GLOB_CHARS = frozenset("*?{}[]")


#: the last part of a ``--concurrency`` slot's id: ``host:pid:queues:slot-N``
SLOT_MARK = "slot-"


class WorkerId(NamedTuple):
    """``host:pid:queues``, split as Ruby's ``Worker.find`` does (``split(':', 3)``), or a
    concurrency slot's ``host:pid:queues:slot-N``. The pid stays the process's own, so the
    peers' same-host pruning keeps a live slot; Ruby's pruner (``split(':')``) ignores the
    fourth part, ``Worker.find``, php-resque and node-resque read it as queue text."""

    host: str
    pid: str
    queues: str
    #: the slot number of a concurrency slot ("" for a plain worker)
    slot: str = ""

    @classmethod
    def parse(cls, worker_id: str) -> WorkerId:
        host, _, rest = worker_id.partition(":")
        pid, _, queues = rest.partition(":")
        head, sep, last = queues.rpartition(":")
        number = last[len(SLOT_MARK) :]
        if sep and last.startswith(SLOT_MARK) and number.isascii() and number.isdigit():
            return cls(host, pid, head, number)
        return cls(host, pid, queues)

    @property
    def node_name(self) -> str:
        """``host:pid``: what node-resque names its per-worker keys with (``worker:ping:<name>``)."""
        return f"{self.host}:{self.pid}"

    @property
    def queue_list(self) -> list[str]:
        return [q for q in self.queues.split(",") if q]

    def __str__(self) -> str:
        slot = f":{SLOT_MARK}{self.slot}" if self.slot else ""
        return f"{self.host}:{self.pid}:{self.queues}{slot}"


def slot_id(process_id: str, slot: int) -> str:
    """The worker id of slot ``slot`` of the concurrency worker ``process_id`` (``host:pid:queues``)."""
    return f"{process_id}:{SLOT_MARK}{slot}"


def worker_id(queues: Sequence[str], pid: int | None = None, host: str | None = None) -> str:
    """Ruby's id: the configured queue strings, patterns kept, ``!exclusions`` dropped."""
    shown = ",".join(q for q in queues if not q.startswith("!"))
    return f"{host or socket.gethostname()}:{os.getpid() if pid is None else pid}:{shown}"


def new_job_id() -> str:
    """32 lowercase hex characters, the shape of php-resque's ``md5(uniqid())``."""
    return uuid.uuid4().hex


def normalize_class(name: str) -> str:
    """PHP accepts ``\\App\\Jobs\\X`` and ``App\\Jobs\\X`` as one class."""
    return name[1:] if name.startswith("\\") else name


def parse_queue_list(value: str | Iterable[str]) -> list[str]:
    """``critical, default`` -> ``["critical", "default"]`` (env QUEUE/QUEUES, CLI)."""
    items = value.split(",") if isinstance(value, str) else value
    return [q.strip() for q in items if q.strip()]


def has_patterns(queues: Sequence[str]) -> bool:
    return any(q.startswith("!") or not _GLOB_CHARS.isdisjoint(q) for q in queues)


def resolve_queues(configured: Sequence[str], known: Iterable[str]) -> list[str]:
    """Ruby's queue resolution.

    Plain names are used verbatim, in order (that order is the priority). With a wildcard or a
    ``!`` anywhere, each entry is matched against the known queues with fnmatch, the matches of
    each entry sorted, concatenated, de-duplicated, then ``!pattern`` matches removed.
    """
    if not has_patterns(configured):
        return list(configured)
    known_list = sorted(set(known))
    excludes = [q[1:] for q in configured if q.startswith("!")]
    out: dict[str, None] = {}
    for pattern in configured:
        if pattern.startswith("!"):
            continue
        if _GLOB_CHARS.isdisjoint(pattern):
            out.setdefault(pattern, None)
            continue
        for name in known_list:
            if fnmatch.fnmatchcase(name, pattern):
                out.setdefault(name, None)
    return [q for q in out if not any(fnmatch.fnmatchcase(q, ex) for ex in excludes)]
