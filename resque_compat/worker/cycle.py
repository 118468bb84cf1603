"""The Redis side of one job cycle: one EVALSHA per job in steady state.

The script (``protocol.scripts.WORKER_CYCLE``) finishes the previous job, optionally checks
the control list and ``pause-all-workers``, and reserves the next job, all atomically, so the
LPOP -> ``SET worker:<id>`` window in which Ruby Resque loses a job does not exist here.

A call that fails on a connection error is retried with ``recovering`` set to the per-worker
``stat:processed`` count seen before it: the script then tells a call that never ran (apply it)
from one whose reply was lost (its finish is done; return what it reserved), so no job is lost
and no counter doubled across a connection cut.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from resque_compat.failure import BackendName, failure_list_name
from resque_compat.protocol import Keys, encode_json, timefmt
from resque_compat.protocol.scripts import WORKER_CYCLE
from resque_compat.resp import bulk


class Kind(enum.IntEnum):
    IDLE = 0
    JOB = 1
    PAUSED = 2
    CONTROL = 3
    RECOVERED = 4


@dataclass(frozen=True)
class Finish:
    """How the previous job ended, folded into the next cycle call.

    ``failure`` is the encoded failure record (None: it succeeded); ``status`` the final status
    bytes for ``status_key`` (tracked jobs only)."""

    queue: str
    failure: bytes | None = None
    status_key: str | None = None
    status: bytes | None = None
    release_item: bytes | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True)
class CycleResult:
    kind: Kind
    #: the per-worker processed count after the finish, or -1 when there was none
    processed: int
    queue: str | None = None
    item: bytes | None = None
    command: str | None = None
    record: bytes | None = None


class Cycle:
    """Builds and sends the cycle script call for one worker."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        worker_id: str,
        *,
        reliable: bool = False,
        failure_backend: BackendName = "redis",
    ) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        self.reliable = reliable
        self.failure_backend = failure_backend
        self.sha = self._load()
        self._worker_key = keys.worker(worker_id)
        self._static_keys = b"".join(
            bulk(key)
            for key in (
                self._worker_key,
                keys.stat("processed"),
                keys.stat("processed", worker_id),
                keys.stat("failed"),
                keys.stat("failed", worker_id),
                keys.pause_all,
                keys.control(worker_id),
                keys.inflight(worker_id),
            )
        )
        self._failed_queues = bulk(keys.failed_queues)
        self._failed_key = bulk(keys.failed)
        self._queues: list[str] = []
        self._queue_keys = b""
        self._queue_json = b""
        self._wire = _Wire(client)
        self._run_at_second = -1
        self._run_at = ""

    def _load(self) -> str:
        return str(self.redis.script_load(WORKER_CYCLE))

    def reconnect(self) -> None:
        """A connection of this process's own (a forked child must not share its parent's)."""
        self._wire = _Wire(self.redis)

    @property
    def queues(self) -> list[str]:
        return self._queues

    def set_queues(self, queues: list[str]) -> None:
        """The resolved queues, highest priority first."""
        self._queues = list(queues)
        self._queue_keys = b"".join(bulk(self.keys.queue(q)) for q in queues)
        self._queue_json = b"".join(bulk(encode_json(q)) for q in queues)

    def run_at(self) -> str:
        now = int(time.time())
        if now != self._run_at_second:
            self._run_at_second = now
            self._run_at = timefmt.run_at(now)
        return self._run_at

    def call(
        self,
        finish: Finish | None,
        *,
        check: bool,
        reserve: bool,
        adopt: str | None = None,
        recovering: int | None = None,
        guard: bytes | None = None,
    ) -> CycleResult:
        """One cycle call. ``adopt``: record the item a blocking pop moved from that queue into
        our in-flight list. ``guard``: finish only if ``worker:<id>`` still holds that item,
        reserve nothing (a forked child finishing for a worker that died while the job ran)."""
        sadd_name = ""
        list_key = self._failed_key
        status_key = self._worker_key
        if finish is None:
            finish_args: list[str | bytes] = [b"", b"", b"", b""]
        elif finish.release_item is not None:
            list_key = bulk(self.keys.queue(finish.queue))
            waiting = b""
            if finish.status_key is not None and finish.status is not None:
                status_key, waiting = finish.status_key, finish.status
            finish_args = [b"release", finish.release_item, b"", waiting]
        else:
            if finish.failure is not None:
                name = failure_list_name(self.failure_backend, finish.queue)
                list_key = bulk(self.keys.failed_list(name))
                if name != "failed":
                    sadd_name = name
            final = b""
            if finish.status_key is not None and finish.status is not None:
                status_key = finish.status_key
                final = finish.status
            finish_args = [b"fail" if finish.failure is not None else b"ok", finish.failure or b"", sadd_name, final]
        mode = "guard" if guard is not None else "adopt" if adopt is not None else ("1" if reserve else "0")
        args: list[str | bytes] = [
            *finish_args,
            b"1" if check else b"",
            mode,
            self.run_at(),
            b"1" if self.reliable else b"",
            b"" if recovering is None else str(recovering),
            guard if guard is not None else b"",
            encode_json(adopt) if adopt is not None else b"",
        ]
        queued = mode == "1"
        numkeys = _STATIC_KEY_COUNT + 3 + (len(self._queues) if queued else 0)
        head: list[str | bytes] = [b"EVALSHA", self.sha, str(numkeys)]
        parts = [
            b"*%d\r\n" % (len(head) + numkeys + len(args) + (len(self._queues) if queued else 0)),
            *(bulk(x) for x in head),
            self._static_keys,
            list_key,
            self._failed_queues,
            bulk(status_key),
            self._queue_keys if queued else b"",
            *(bulk(x) for x in args),
            self._queue_json if queued else b"",
        ]
        try:
            reply = self._wire.call(parts)
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: the call never ran
            self.sha = self._load()
            parts[2] = bulk(self.sha)
            reply = self._wire.call(parts)
        return self._result(reply)

    def _result(self, reply: list[Any]) -> CycleResult:
        kind = Kind(int(reply[0]))
        processed = int(reply[1])
        if kind is Kind.JOB:
            return CycleResult(kind, processed, queue=self._queue_of(reply), item=bytes(reply[2]))
        if kind is Kind.CONTROL:
            raw = reply[2]
            command = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            return CycleResult(kind, processed, command=command)
        if kind is Kind.RECOVERED:
            return CycleResult(kind, processed, record=bytes(reply[2]))
        return CycleResult(kind, processed)

    def _queue_of(self, reply: list[Any]) -> str:
        index = int(reply[3])
        if index == 0:  # adopted: the caller knows the queue
            return ""
        return self._queues[index - 1]


_STATIC_KEY_COUNT = 8


class _Wire:
    """A connection of the worker's own for the cycle call, with the command packed here.

    The cycle is the hot path: redis-py's generic client (argument encoding, pool checkout,
    retry wrapper) costs more than the Redis round trip itself. The connection still comes
    from the client's pool, so TLS, ACL, unix sockets and Sentinel work as for every other
    call; on an error it is dropped, and the next call takes a fresh one (after a Sentinel
    failover, one to the new primary)."""

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        # taken now, before the worker's other calls, so its connection count is set from the start
        self.conn: Connection | None = self.pool.get_connection()

    def call(self, parts: list[bytes]) -> Any:
        conn = self.conn
        if conn is None:
            conn = self.conn = self.pool.get_connection()
        try:
            conn.send_packed_command([b"".join(parts)], check_health=False)  # type: ignore[no-untyped-call]
            reply = conn.read_response()
        except ResponseError:
            raise
        except BaseException:
            self.close()
            raise
        return reply

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.disconnect()  # type: ignore[no-untyped-call]
            self.pool.release(conn)
