"""Redis Cluster: a namespace lives in one hash slot, so its client talks to that slot's owner.

Every key of a namespace carries its hash tag (``{resque}:queue:mail``), so every key, every
Lua script, every MULTI/EXEC and the worker's raw cycle call land on the one primary serving
that slot. A plain redis-py client whose pool connects to that primary therefore behaves
exactly as on a single server. redis-py's ``RedisCluster`` is not used: it fans the keyless
commands the dashboard, doctor and worker send (INFO, CLIENT LIST, SCRIPT LOAD, TIME, SCAN)
out to the nodes and answers per node, and has no connection pool for the raw RESP paths
(:mod:`resque_compat.resp`, the worker's cycle).

The pool finds the owner with ``CLUSTER SLOTS`` (asking the last owner, the seeds, then every
node seen). A ``MOVED`` for our slot (a failover, a resharding) re-points it and is raised as
a ``ConnectionError``: the command did not run, so the callers' usual reconnect handling
applies, as after a Sentinel failover. ``CLUSTERDOWN``/``TRYAGAIN`` (the owner is failing, no
replica promoted yet) likewise. SCAN on this client scans the slot owner only: it holds every
key of the namespace (other slots' keys on that node are filtered out by the match pattern).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, MovedError, TryAgainError
from redis.retry import Retry

Node = tuple[str, int]
#: seconds a ``CLUSTER SLOTS`` probe may wait to connect to one node, and for its answer
PROBE_TIMEOUT = 5.0
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")


class SlotOwner:
    """Where one hash slot is served: learned from ``CLUSTER SLOTS``, corrected by ``MOVED``.
    Shared by the connections of one pool; ``probe`` makes a plain connection to any node
    with the pool's own options (password, TLS, timeouts)."""

    def __init__(self, seeds: tuple[Node, ...], slot: int, probe_class: type[Any], probe_kwargs: dict[str, Any]):
        self.seeds = seeds
        self.slot = slot
        self.node: Node | None = None
        self.known: list[Node] = []
        self.lock = threading.Lock()
        self.probe_class = probe_class
        # a node that died silently must not hold the search up: bounded waits even when the
        # pool's own are not (its socket_timeout is None unless the address sets one)
        timeouts = {name: min(probe_kwargs.get(name) or PROBE_TIMEOUT, PROBE_TIMEOUT) for name in _TIMEOUTS}
        self.probe_kwargs = {**probe_kwargs, **timeouts, "retry": Retry(NoBackoff(), 0)}
        self.pool: weakref.ref[Any] | None = None

    def candidates(self) -> list[Node]:
        """Nodes to ask, the last owner first (a seed may be the primary that just died)."""
        return list(dict.fromkeys(([self.node] if self.node else []) + list(self.seeds) + self.known))

    def probe(self, node: Node) -> Any:
        return self.probe_class(**{**self.probe_kwargs, "host": node[0], "port": node[1]})

    def learn(self, reply: Any, asked: Node) -> Node | None:
        """Read a raw ``CLUSTER SLOTS`` reply: remember every node, return our slot's primary."""
        owner = None
        for start, end, *nodes in reply:
            for index, node in enumerate(nodes):
                found = (_host(node[0], asked[0]), int(node[1]))
                if found not in self.known:
                    self.known.append(found)
                if index == 0 and int(start) <= self.slot <= int(end):
                    owner = found
        return owner

    def found(self, node: Node) -> Node:
        """Remember the owner; the pool's ``host``/``port`` name it too (``Resque.info``'s
        server and the dashboard's footer read them)."""
        self.node = node
        pool = self.pool() if self.pool else None
        if pool is not None:
            pool.connection_kwargs.update(host=node[0], port=node[1])
        return node

    def moved(self, node: Node) -> None:
        """Our slot is served elsewhere now: connect there next, and drop the idle connections
        to the old owner so they do not each meet the ``MOVED`` in turn."""
        with self.lock:
            if self.node == node:
                return
            self.found(node)
        pool = self.pool() if self.pool else None
        if isinstance(pool, redis.ConnectionPool):
            pool.disconnect(inuse_connections=False)

    def forget(self) -> None:
        with self.lock:
            self.node = None

    def not_served(self, errors: list[str]) -> redis.ConnectionError:
        return redis.ConnectionError(f"no cluster node serves slot {self.slot} ({'; '.join(errors)})")


def _host(value: Any, asked: str) -> str:
    """A node's endpoint as ``CLUSTER SLOTS`` gives it; empty or ``?`` means "the node you asked"."""
    host = value.decode() if isinstance(value, bytes) else str(value)
    return asked if host in ("", "?") else host


def slot_of(namespace: str) -> int:
    """The hash slot of every key of ``namespace`` (checked to carry a hash tag beforehand)."""
    return key_slot(f"{namespace}:".encode())


def _redirect(exc: BaseException, owner: SlotOwner) -> redis.ConnectionError | None:
    """The ConnectionError a cluster reply stands for, or None when it is a real error."""
    if isinstance(exc, MovedError):
        if exc.slot_id != owner.slot:  # a key outside the namespace: a real error, no re-pointing
            return None
        owner.moved((exc.host, exc.port))
        return redis.ConnectionError(f"slot {owner.slot} moved to {exc.host}:{exc.port}")
    if isinstance(exc, (ClusterDownError, TryAgainError)):  # MASTERDOWN is a ClusterDownError
        owner.forget()
        return redis.ConnectionError(f"cluster not serving slot {owner.slot}: {exc}")
    return None


class ClusterSlotConnection(Connection):
    """A connection to whichever primary serves the pool's slot now."""

    def __init__(self, *, slot_owner: SlotOwner, **kwargs: Any) -> None:
        self.slot_owner = slot_owner
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock:
            return
        self.host, self.port = self._locate()
        try:
            super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        except redis.ConnectionError:
            self.slot_owner.forget()
            raise

    def _locate(self) -> Node:
        owner = self.slot_owner
        if owner.node is not None:
            return owner.node
        errors = []
        for node in owner.candidates():
            probe = owner.probe(node)
            try:
                probe.connect()
                probe.send_command("CLUSTER", "SLOTS")
                found = owner.learn(probe.read_response(), node)
            except redis.RedisError as exc:
                errors.append(f"{node[0]}:{node[1]}: {exc}")
                continue
            finally:
                probe.disconnect()
            if found is not None:
                return owner.found(found)
            errors.append(f"{node[0]}:{node[1]}: slot not assigned")
        raise owner.not_served(errors)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            redirected = _redirect(exc, self.slot_owner)
            if redirected is None:
                raise
            self.disconnect()  # type: ignore[no-untyped-call]
            raise redirected from exc


class ClusterSlotSSLConnection(ClusterSlotConnection, SSLConnection):
    """``rediss+cluster://``: the same over TLS."""


class AsyncClusterSlotConnection(AsyncConnection):
    """The asyncio twin of :class:`ClusterSlotConnection`."""

    def __init__(self, *, slot_owner: SlotOwner, **kwargs: Any) -> None:
        self.slot_owner = slot_owner
        super().__init__(**kwargs)

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self.is_connected:
            return
        self.host, self.port = await self._locate()
        try:
            await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        except redis.ConnectionError:
            self.slot_owner.forget()
            raise

    async def _locate(self) -> Node:
        owner = self.slot_owner
        if owner.node is not None:
            return owner.node
        errors = []
        for node in owner.candidates():
            probe = owner.probe(node)
            try:
                await probe.connect()
                await probe.send_command("CLUSTER", "SLOTS")
                found = owner.learn(await probe.read_response(), node)
            except redis.RedisError as exc:
                errors.append(f"{node[0]}:{node[1]}: {exc}")
                continue
            finally:
                await probe.disconnect()
            if found is not None:
                return owner.found(found)
            errors.append(f"{node[0]}:{node[1]}: slot not assigned")
        raise owner.not_served(errors)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            redirected = _redirect(exc, self.slot_owner)
            if redirected is None:
                raise
            await self.disconnect()
            raise redirected from exc


class AsyncClusterSlotSSLConnection(AsyncClusterSlotConnection, AsyncSSLConnection):
    """``rediss+cluster://`` from asyncio."""


_SLOT_CLASSES: dict[type[Any], type[Any]] = {
    Connection: ClusterSlotConnection,
    SSLConnection: ClusterSlotSSLConnection,
    AsyncConnection: AsyncClusterSlotConnection,
    AsyncSSLConnection: AsyncClusterSlotSSLConnection,
}


def slot_pool(pool: Any, seeds: tuple[Node, ...], namespace: str) -> Any:
    """Turn ``pool`` (a redis-py sync or asyncio pool built from one node's URL, so it holds
    the password, TLS and timeout options) into one that follows ``namespace``'s slot."""
    base = pool.connection_class
    if base not in _SLOT_CLASSES:
        raise ValueError(f"Redis Cluster needs a TCP connection, not {base.__name__}")
    owner = SlotOwner(seeds, slot_of(namespace), base, dict(pool.connection_kwargs))
    owner.pool = weakref.ref(pool)
    pool.connection_class = _SLOT_CLASSES[base]
    pool.connection_kwargs["slot_owner"] = owner
    return pool
