"""resque-scheduler's master lock, shared with Ruby so that exactly one scheduler leads.

Stored as Ruby stores it: key ``<ns>:<ns>:[PREFIX:]resque_scheduler_master_lock`` (namespaced
twice, see :meth:`Keys.scheduler_master_lock`), value ``<hostname>:<pid>``, TTL 180 s.
Acquire is ``SET NX EX`` (Ruby's SETNX + EXPIRE script has the same effect); renew extends the
TTL only while the value is still ours, atomically in Lua, so a scheduler that stalled past the
TTL never extends a lock another scheduler took meanwhile. Release deletes only our own value.

node-resque's scheduler takes a *different* key, ``resque_scheduler_leader_lock``, so a Node
scheduler does not exclude a Ruby or a resque-compat one: both may move delayed items at the
same time. That is safe here because every move is one atomic Lua script (see ``mover``);
recurring schedules are not affected, since node-resque has none in this layout.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import redis

from resque_compat.protocol import Keys
from resque_compat.protocol.scripts import RELEASE_MASTER_LOCK, RENEW_MASTER_LOCK
from resque_compat.replies import text

DEFAULT_TIMEOUT = 180


def default_lock_value() -> str:
    """``<hostname>:<pid>``, as Ruby writes it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class MasterLock:
    """One scheduler's view of the master lock."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        value: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
        prefix: str | None = None,
    ) -> None:
        if timeout < 1:
            raise ValueError("lock timeout must be at least 1 second")
        self.redis = client
        lock_prefix = prefix if prefix is not None else os.environ.get("RESQUE_SCHEDULER_MASTER_LOCK_PREFIX", "")
        self.key = keys.scheduler_master_lock(lock_prefix)
        self.value = value or default_lock_value()
        self.timeout = timeout
        self._renew = client.register_script(RENEW_MASTER_LOCK)
        self._release = client.register_script(RELEASE_MASTER_LOCK)

    def acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        return bool(self.redis.set(self.key, self.value, nx=True, ex=self.timeout))

    def renew(self) -> bool:
        """Extend the lock if it is ours; False when we do not hold it."""
        return bool(self._renew(keys=[self.key], args=[self.value, self.timeout]))

    def hold(self) -> bool:
        """Ruby's ``master?``: keep the lock if ours, else try to take it. Call once per pass."""
        return self.renew() or self.acquire()

    def release(self) -> bool:
        """Give the lock up (on shutdown) if it is ours."""
        return bool(self._release(keys=[self.key], args=[self.value]))

    def holder(self) -> str | None:
        """Who leads now (``host:pid``), whatever implementation it is."""
        value = self.redis.get(self.key)
        return None if value is None else text(value)


@dataclass(frozen=True)
class Leaders:
    """Who leads now: resque-scheduler's master (``host:pid``, Ruby or ours) and node-resque's
    scheduler, which takes a lock of its own; None where nobody does."""

    master: str | None
    node: str | None


def leaders(client: redis.Redis, keys: Keys) -> Leaders:
    """Both scheduler locks' holders, read in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.get(MasterLock(client, keys).key)
    pipe.get(keys.node_scheduler_leader_lock)
    master, node = pipe.execute()
    return Leaders(None if master is None else text(master), None if node is None else text(node))
