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

import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from resque_compat.failures import BackendName, failure_list_name
from resque_compat.protocol import Keys, timefmt
from resque_compat.protocol.cycle import (
    NO_QUEUES,
    CycleCall,
    CycleKeys,
    CycleQueues,
    CycleResult,
    End,
    Kind,
    Reserve,
    decode_reply,
)
from resque_compat.protocol.keys import FAILED_LIST
from resque_compat.protocol.scripts import WORKER_CYCLE
from resque_compat.resp import bulk

__all__ = ["Cycle", "CycleResult", "Finish", "Kind"]


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
    #: a success's retry attempt counter, DELeted with it (a job with a retry policy)
    forget: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None


class Cycle:
    """Builds the cycle script's calls for one worker (:class:`CycleCall`) and sends them."""

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
        self.cycle_keys = CycleKeys.for_worker(keys, worker_id)
        self._order = NO_QUEUES
        self._packed: dict[str, bytes] = {}
        self._wire = _Wire(client)
        self._run_at_second = -1
        self._run_at = ""
        self._steady: dict[tuple[bool, str, int], tuple[bytes, CycleQueues]] = {}

    def _load(self) -> str:
        return str(self.redis.script_load(WORKER_CYCLE))

    def reconnect(self) -> None:
        """A connection of this process's own (a forked child must not share its parent's)."""
        self._wire = _Wire(self.redis)

    @property
    def wire(self) -> _Wire:
        """The cycle's own connection (``prefetch`` pipelines its calls on it, in order)."""
        return self._wire

    @property
    def order(self) -> CycleQueues:
        return self._order

    @property
    def queues(self) -> list[str]:
        return list(self._order.names)

    def set_queues(self, queues: list[str]) -> None:
        """The resolved queues, highest priority first."""
        self._order = CycleQueues.of(self.keys, queues)

    def run_at(self) -> str:
        now = int(time.time())
        if now != self._run_at_second:
            self._run_at_second = now
            self._run_at = timefmt.run_at(now)
        return self._run_at

    def build(
        self,
        finish: Finish | None,
        *,
        check: bool,
        reserve: bool,
        adopt: str | None = None,
        recovering: int | None = None,
        guard: bytes | None = None,
    ) -> CycleCall:
        """The call for one cycle. ``adopt``: record the item a blocking pop moved from that queue
        into our in-flight list. ``guard``: finish only if ``worker:<id>`` still holds that item,
        reserve nothing (a forked child finishing for a worker that died while the job ran)."""
        end, end_list, end_item, failed_queue, forget = End.NONE, "", b"", "", ""
        status_key, status = "", b""
        if finish is not None:
            if finish.status_key is not None and finish.status is not None:
                status_key, status = finish.status_key, finish.status
            if finish.release_item is not None:
                end, end_list, end_item = End.RELEASE, self.keys.queue(finish.queue), finish.release_item
            elif finish.failure is not None:
                name = failure_list_name(self.failure_backend, finish.queue)
                end, end_list, end_item = End.FAIL, self.keys.failed_list(name), finish.failure
                failed_queue = "" if name == FAILED_LIST else name
            else:
                end, forget = End.OK, finish.forget or ""
        if guard is not None:
            mode = Reserve.GUARD
        elif adopt is not None:
            mode = Reserve.ADOPT
        else:
            mode = Reserve.QUEUES if reserve else Reserve.NOTHING
        return CycleCall(
            keys=self.cycle_keys,
            run_at=self.run_at(),
            end=end,
            end_list=end_list,
            end_item=end_item,
            failed_queue=failed_queue,
            forget=forget,
            status_key=status_key,
            status=status,
            check=check,
            reserve=mode,
            reliable=self.reliable,
            recovering=recovering,
            guard=guard or b"",
            adopt_queue=adopt,
            queues=self._order,
        )

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
        """One cycle call (see :meth:`build`)."""
        if (
            reserve
            and not check
            and adopt is None
            and recovering is None
            and guard is None
            and (finish is None or _plain_success(finish))
        ):
            return self._send_steady(finish)
        return self.send(
            self.build(finish, check=check, reserve=reserve, adopt=adopt, recovering=recovering, guard=guard)
        )

    def _send_steady(self, finish: Finish | None) -> CycleResult:
        """The steady state of a busy worker (record a plain success, reserve the next job): its
        bytes change only with ``run_at`` (once a second) and the queue order, so they are packed
        once and resent, the same bytes :meth:`send` would write (tests/test_worker_cycle.py)."""
        key = (finish is not None, self.run_at(), id(self._order))
        hit = self._steady.get(key)
        if hit is None:
            if len(self._steady) > 3:  # a new second or queue order: the old entries are done
                self._steady.clear()
            call = self.build(finish, check=False, reserve=True)
            hit = self._steady[key] = (b"".join(self.pack(call)), call.queues)  # queues keep the id live
        try:
            reply = self._wire.call([hit[0]])
        except NoScriptError:  # the script is gone: reload it through the general path
            self._steady.clear()
            return self.send(self.build(finish, check=False, reserve=True))
        return decode_reply(reply, hit[1])

    def pack(self, call: CycleCall) -> list[bytes]:
        """The call as RESP: ``EVALSHA sha numkeys KEYS... ARGV...``.

        The hot path: strings (keys, flags, run_at) are packed once and reused."""
        keys = call.keys_list()
        argv = call.argv()
        cache = self._packed
        if len(cache) > 4096:  # run_at, queue names and status keys change: no unbounded growth
            cache.clear()
        parts = [b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + len(keys) + len(argv)), bulk(self.sha), bulk(len(keys))]
        for word in (*keys, *argv):
            if isinstance(word, bytes):
                parts.append(bulk(word))
                continue
            packed = cache.get(word)
            if packed is None:
                packed = cache[word] = bulk(word)
            parts.append(packed)
        return parts

    def send(self, call: CycleCall) -> CycleResult:
        parts = self.pack(call)
        try:
            reply = self._wire.call(parts)
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: the call never ran
            self.sha = self._load()
            parts[1] = bulk(self.sha)
            reply = self._wire.call(parts)
        return decode_reply(reply, call.queues)


def _plain_success(finish: Finish) -> bool:
    return finish.failure is None and finish.release_item is None and finish.status_key is None and not finish.forget


class _Wire:
    """A connection of the worker's own for the cycle call, with the command packed here.

    The cycle is the hot path: redis-py's generic client (argument encoding, pool checkout,
    retry wrapper) costs more than the Redis round trip itself. The connection still comes
    from the client's pool, so TLS, ACL, unix sockets, Sentinel and Redis Cluster work as for
    every other call; on an error it is dropped, and the next call takes a fresh one (after a
    Sentinel or Cluster failover, one to the new primary: a ``MOVED`` reply arrives here as the
    ``ConnectionError`` the recovery path expects, :mod:`resque_compat.cluster`)."""

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

    def send(self, packed: bytes) -> None:
        """Send without reading the reply (``read`` later, once per call sent, in order)."""
        conn = self.conn
        if conn is None:
            conn = self.conn = self.pool.get_connection()
        try:
            conn.send_packed_command([packed], check_health=False)  # type: ignore[no-untyped-call]
        except BaseException:
            self.close()
            raise

    def read(self) -> Any:
        conn = self.conn
        if conn is None:
            raise redis.ConnectionError("the connection with calls in flight was lost")
        try:
            return conn.read_response()
        except ResponseError:
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.disconnect()  # type: ignore[no-untyped-call]
            self.pool.release(conn)
