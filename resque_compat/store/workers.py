"""The worker registry's operations: what a worker (or a concurrent worker's slots) writes
about itself, and what a pruner reads and removes. Ruby's layout (data_store.rb ``Workers``),
byte for byte; ``compat:`` keys are ours.

Each operation takes worker ids, so one process with many slots pays one round trip per
operation, not one per slot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import redis

from resque_compat.protocol import Keys, timefmt
from resque_compat.protocol.keys import Stat
from resque_compat.protocol.scripts import RELEASE_LOCK
from resque_compat.replies import raw, text


class WorkerStore:
    """Named operations on ``workers``, ``worker:<id>[:started]``, ``workers:heartbeat``, the
    prune lock, per-worker stats and our ``compat:state`` / ``compat:control`` /
    ``compat:inflight`` keys."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    # -- registration ------------------------------------------------------------------
    def register(self, worker_ids: Sequence[str], started: str | None = None, *, again: bool = False) -> None:
        """Ruby's ``register_worker``: SADD ``workers`` and SET ``worker:<id>:started``.
        ``again`` (after a reconnect, when Redis may have restarted empty) keeps a start time
        already there (SET NX)."""
        when = started if started is not None else timefmt.started()
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.sadd(self.keys.workers, worker_id)
            pipe.set(self.keys.worker_started(worker_id), when, nx=again)
        pipe.execute()

    def unregister(self, worker_id: str) -> None:
        """The pipeline of Ruby's ``unregister_worker`` once any held job is dealt with: SREM
        ``workers``, DEL ``worker:<id>`` and ``:started``, HDEL the heartbeat, DEL both
        per-worker stats, and our published state."""
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(keys.workers, worker_id)
        pipe.delete(keys.worker(worker_id))
        pipe.delete(keys.worker_started(worker_id))
        pipe.hdel(keys.heartbeat, worker_id)
        pipe.delete(keys.stat(Stat.PROCESSED, worker_id))
        pipe.delete(keys.stat(Stat.FAILED, worker_id))
        pipe.delete(keys.worker_state(worker_id))
        pipe.execute()

    def registered(self) -> set[str]:
        return {text(m) for m in self.redis.smembers(self.keys.workers)}

    # -- heartbeat and published state -------------------------------------------------
    def server_time(self) -> float:
        """Redis' clock (whole seconds, as Ruby's heartbeat uses it): every host agrees on it."""
        secs, _ = self.redis.time()
        return float(secs)

    def beat(self, worker_ids: Sequence[str], now: float | None = None) -> None:
        """One HSET of ``workers:heartbeat`` for every id, stamped with Redis' clock."""
        if not worker_ids:
            return
        stamp = timefmt.heartbeat(self.server_time() if now is None else now)
        self.redis.hset(self.keys.heartbeat, mapping=dict.fromkeys(worker_ids, stamp))

    def clear_heartbeats(self, worker_ids: Sequence[str]) -> None:
        """HDEL, as Ruby does at startup (a stale beat of a reused id must not count)."""
        if worker_ids:
            self.redis.hdel(self.keys.heartbeat, *worker_ids)

    def heartbeats(self) -> dict[str, str]:
        """Every heartbeat as stored (text; unreadable times are the pruner's to judge)."""
        return {text(k): text(v) for k, v in self.redis.hgetall(self.keys.heartbeat).items()}

    def publish_states(self, records: Mapping[str, bytes], ttl: float) -> None:
        """``compat:state:<id>`` per worker (``WorkerState`` bytes), expiring after ``ttl`` s
        (at least 1) unless a heartbeat writes it again."""
        if not records:
            return
        ex = max(int(ttl), 1)
        pipe = self.redis.pipeline(transaction=False)
        for worker_id, record in records.items():
            pipe.set(self.keys.worker_state(worker_id), record, ex=ex)
        pipe.execute()

    # -- control inbox -----------------------------------------------------------------
    def next_controls(self, worker_ids: Sequence[str]) -> list[str | None]:
        """The oldest control word waiting for each worker (LPOP), None where none is; read
        while a job runs (between jobs the cycle call reads it)."""
        if not worker_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.lpop(self.keys.control(worker_id))
        return [None if word is None else text(word) for word in pipe.execute()]

    # -- what a pruner reads -----------------------------------------------------------
    def held(self, worker_id: str, *, record: bool = True) -> tuple[bytes, bytes]:
        """What a worker holds: its ``worker:<id>`` record (unless ``record`` is False: an
        orphaned in-flight list has none worth reading) and the first item of its in-flight
        list, each b"" when absent."""
        stored = self.redis.get(self.keys.worker(worker_id)) if record else None
        first = self.redis.lindex(self.keys.inflight(worker_id), 0)
        return raw(stored or b""), raw(first or b"")

    def inflight_owners(self) -> Iterator[str]:
        """The worker of every in-flight list (SCAN; a key that is not one is skipped)."""
        for key in self.redis.scan_iter(match=self.keys.inflight_pattern, count=1000):
            worker_id = self.keys.inflight_worker(text(key))
            if worker_id is not None:
                yield worker_id

    # -- the prune lock ----------------------------------------------------------------
    def take_prune_lock(self, me: str, seconds: float) -> bool:
        """Ruby's ``SET pruning_dead_workers_in_progress <id> EX <heartbeat> NX``."""
        return bool(self.redis.set(self.keys.prune_lock, me, ex=max(1, int(seconds)), nx=True))

    def prune_lock_holder(self) -> str | None:
        holder = self.redis.get(self.keys.prune_lock)
        return None if holder is None else text(holder)

    def release_prune_lock(self, holder: str) -> bool:
        """Compare-and-delete: released only while ``holder`` still has it."""
        return bool(self.redis.register_script(RELEASE_LOCK)(keys=[self.keys.prune_lock], args=[holder]))

    # -- tracked jobs (php-resque status) ----------------------------------------------
    def status_bytes(self, key: str) -> bytes | None:
        """A ``job:<id>:status`` record as stored, for the worker to advance at pickup."""
        stored = self.redis.get(key)
        return None if stored is None else raw(stored)

    def set_status(self, key: str, record: bytes) -> None:
        """Overwrite a status record (a plain SET, as php-resque's own worker does)."""
        self.redis.set(key, record)
