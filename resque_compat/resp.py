"""Commands as wire words, their RESP packing, and a lean send path for the two hot paths:
enqueue and the worker's cycle.

redis-py's generic pipeline (per-command objects, response callbacks, retry wrapper) costs
more than the loopback round trip itself. Here a command list is packed into one buffer and
written on a connection taken from the client's own pool, so TLS, ACL users, unix sockets,
Sentinel and Redis Cluster (the pool of the namespace's slot) behave exactly as for every other call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.connection import Connection

Arg = str | bytes | int | float

#: One Redis command as the words sent on the wire: its name (``"SADD"``, ``"DEL"``), then
#: its arguments. Every command plan (:mod:`resque_compat.plans`) is a list of these, so the
#: same plan runs through :func:`transaction` or on any redis-py pipeline, sync or asyncio.
Command = tuple[Arg, ...]


def bulk(value: Arg) -> bytes:
    """One RESP bulk string."""
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(args: Sequence[Arg]) -> bytes:
    """One command as RESP."""
    return b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args)


def queue_commands(pipe: Any, commands: Iterable[Command]) -> None:
    """Buffer ``commands`` on a redis-py pipeline, sync or asyncio (both buffer synchronously);
    redis-py packs them as :func:`pack` does, so the bytes are the same."""
    for command in commands:
        pipe.execute_command(*command)


def transaction(client: redis.Redis, commands: Iterable[Command]) -> list[Any]:
    """Run ``commands`` in one MULTI/EXEC round trip; returns EXEC's replies.

    Nothing is retried: a transaction whose reply was lost may have run, and a blind resend
    would write it twice. On any error the connection is dropped rather than resynchronised.
    """
    packed = [b"*1\r\n$5\r\nMULTI\r\n", *(pack(c) for c in commands), b"*1\r\n$4\r\nEXEC\r\n"]
    pool = client.connection_pool
    conn: Connection = pool.get_connection()
    try:
        conn.send_packed_command([b"".join(packed)], check_health=False)  # type: ignore[no-untyped-call]
        for _ in range(len(packed) - 1):
            conn.read_response()  # +OK, then +QUEUED per command (an error reply raises here)
        replies = conn.read_response()
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)
    if replies is None:
        raise redis.exceptions.WatchError("transaction aborted")
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return list(replies)
