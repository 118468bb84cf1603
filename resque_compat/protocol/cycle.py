"""The call contract of ``scripts.WORKER_CYCLE``: its positional KEYS and ARGV, built in one place.

The script takes 11 keys and 11 arguments (plus one of each per queue when it reserves from
the queues). :class:`CycleCall` is one call as named fields; :meth:`CycleCall.keys` and
:meth:`CycleCall.argv` lay them out in the order the script reads them, and
:func:`decode_reply` reads what it returns. Nothing here does I/O: ``worker.cycle`` sends the
call, and the tests run the script with the same lists.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from resque_compat.protocol.keys import Keys, Stat
from resque_compat.protocol.records import encode_json


class End(enum.StrEnum):
    """ARGV[1]: how the previous job ended, applied before anything else."""

    NONE = ""  #: no previous job
    OK = "ok"  #: stat:processed (global and ours) +1, final status, in-flight list cleared
    FAIL = "fail"  #: as OK, plus the failure record and stat:failed (global and ours) +1
    RELEASE = "release"  #: back to the head of its queue, status back to waiting, nothing counted


class Reserve(enum.StrEnum):
    """ARGV[6]: what the call reserves after the finish (and the control check)."""

    QUEUES = "1"  #: pop the first item of the queues in priority order
    NOTHING = "0"  #: finish and check only (stopping, paused); idle DELs worker:<id>
    ADOPT = "adopt"  #: record the item a blocking BLMOVE put in our in-flight list
    #: a forked child finishing for a worker that died meanwhile: apply the finish only while
    #: worker:<id> still holds the item (no pruner took the job yet); never reserve
    GUARD = "guard"


class Kind(enum.IntEnum):
    """The first element of the script's reply."""

    IDLE = 0
    JOB = 1  #: + the item, and its queue's 1-based index (0: adopted)
    PAUSED = 2  #: pause-all-workers is set
    CONTROL = 3  #: + the command popped from our control list
    RECOVERED = 4  #: + the worker:<id> record a call whose reply was lost wrote


@dataclass(frozen=True, slots=True)
class CycleKeys:
    """The keys every call of one worker names, built once."""

    worker: str  #: KEYS[1] worker:<id>
    processed: str  #: KEYS[2] stat:processed
    processed_by_worker: str  #: KEYS[3] stat:processed:<id>
    failed: str  #: KEYS[4] stat:failed
    failed_by_worker: str  #: KEYS[5] stat:failed:<id>
    pause_all: str  #: KEYS[6] pause-all-workers
    control: str  #: KEYS[7] our control list
    inflight: str  #: KEYS[8] our in-flight list
    failure_list: str  #: KEYS[9] when nothing names another list: ``failed`` (never written then)
    failed_queues: str  #: KEYS[10]

    @classmethod
    def for_worker(cls, keys: Keys, worker_id: str) -> CycleKeys:
        return cls(
            worker=keys.worker(worker_id),
            processed=keys.stat(Stat.PROCESSED),
            processed_by_worker=keys.stat(Stat.PROCESSED, worker_id),
            failed=keys.stat(Stat.FAILED),
            failed_by_worker=keys.stat(Stat.FAILED, worker_id),
            pause_all=keys.pause_all,
            control=keys.control(worker_id),
            inflight=keys.inflight(worker_id),
            failure_list=keys.failed,
            failed_queues=keys.failed_queues,
        )


@dataclass(frozen=True, slots=True)
class CycleQueues:
    """The queues a :attr:`Reserve.QUEUES` call pops, highest priority first, built once per
    resolution: their keys (KEYS[12..]) and their names as JSON (ARGV[12..], written into
    worker:<id> as they are)."""

    names: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    names_json: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, keys: Keys, names: list[str] | tuple[str, ...]) -> CycleQueues:
        return cls(tuple(names), tuple(keys.queue(q) for q in names), tuple(encode_json(q) for q in names))


NO_QUEUES = CycleQueues()


@dataclass(frozen=True, slots=True)
class CycleCall:
    """One call of the cycle script. The defaults are a call that does nothing but go idle."""

    keys: CycleKeys
    run_at: str  #: ARGV[7] the ``run_at`` written into worker:<id> on a reservation
    end: End = End.NONE  #: ARGV[1]
    #: KEYS[9] FAIL: the failure list; RELEASE: the job's queue ("": ``keys.failure_list``)
    end_list: str = ""
    end_item: bytes = b""  #: ARGV[2] FAIL: the failure record; RELEASE: the item
    failed_queue: str = ""  #: ARGV[3] FAIL: the list name to SADD into failed_queues ("": none)
    #: OK: a retry policy's attempt counter to DEL with the success (KEYS[9], ARGV[3] "1")
    forget: str = ""
    status_key: str = ""  #: KEYS[11] a tracked job's status key ("": worker:<id>, never written then)
    status: bytes = b""  #: ARGV[4] its final (RELEASE: waiting) status bytes ("": none)
    check: bool = False  #: ARGV[5] pop our control list (and, reserving, read pause-all-workers)
    reserve: Reserve = Reserve.NOTHING  #: ARGV[6]
    reliable: bool = False  #: ARGV[8] reserve into (and clear) our in-flight list
    #: ARGV[9] retrying after a connection error: our stat:processed count seen before it,
    #: so the script tells a call that never ran (apply it) from one whose reply was lost
    recovering: int | None = None
    guard: bytes = b""  #: ARGV[10] GUARD: the item the finish is for
    adopt_queue: str | None = None  #: ARGV[11] ADOPT: the queue the item was moved from
    queues: CycleQueues = NO_QUEUES  #: KEYS[12..] and ARGV[12..], QUEUES only

    def numkeys(self) -> int:
        return 11 + len(self.queues.keys) if self.reserve is Reserve.QUEUES else 11

    def keys_list(self) -> list[str]:
        k = self.keys
        return [
            k.worker,
            k.processed,
            k.processed_by_worker,
            k.failed,
            k.failed_by_worker,
            k.pause_all,
            k.control,
            k.inflight,
            self.end_list or self.forget or k.failure_list,
            k.failed_queues,
            self.status_key or k.worker,
            *(self.queues.keys if self.reserve is Reserve.QUEUES else ()),
        ]

    def argv(self) -> list[str | bytes]:
        return [
            self.end.value,
            self.end_item,
            self.failed_queue or ("1" if self.forget else ""),
            self.status,
            "1" if self.check else "",
            self.reserve.value,
            self.run_at,
            "1" if self.reliable else "",
            "" if self.recovering is None else str(self.recovering),
            self.guard,
            b"" if self.adopt_queue is None else encode_json(self.adopt_queue),
            *(self.queues.names_json if self.reserve is Reserve.QUEUES else ()),
        ]


@dataclass(frozen=True, slots=True)
class CycleResult:
    kind: Kind
    #: the per-worker processed count after the finish, or -1 when there was none
    processed: int
    queue: str | None = None  #: JOB: the queue it came from ("" adopted: the caller knows it)
    item: bytes | None = None  #: JOB: the item's bytes, verbatim
    command: str | None = None  #: CONTROL
    record: bytes | None = None  #: RECOVERED: the worker:<id> record


def decode_reply(reply: list[Any], queues: CycleQueues) -> CycleResult:
    """The script's reply to a call that popped ``queues`` (a JOB names its queue by index)."""
    kind = Kind(int(reply[0]))
    processed = int(reply[1])
    if kind is Kind.JOB:
        index = int(reply[3])
        return CycleResult(kind, processed, queue=queues.names[index - 1] if index else "", item=bytes(reply[2]))
    if kind is Kind.CONTROL:
        raw = reply[2]
        command = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return CycleResult(kind, processed, command=command)
    if kind is Kind.RECOVERED:
        return CycleResult(kind, processed, record=bytes(reply[2]))
    return CycleResult(kind, processed)
