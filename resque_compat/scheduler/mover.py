"""Moving due delayed items onto their queues: atomic, in bounded batches.

Design: one Lua script per batch does the whole move (take the items read from the head of
``delayed:<ts>``, SREM each item's ``timestamps:`` member, SADD ``queues`` + RPUSH
``queue:<q>`` the job, and DEL/ZREM the timestamp once its list is empty). The caller first
reads the due timestamp and up to N items, because every key a script touches must be named in
KEYS (Redis's scripting rule, enforced by Redis Cluster) and the queue and ``timestamps:`` keys
come from the items; the script then moves from the head only as long as it still holds items
the caller read. Lua runs atomically, so schedulers racing on the same items (ours, Ruby's
WATCH/MULTI loop, php-resque's LPOP loop, node-resque's LPOP loop) can each take an item at
most once and none is left half moved: nothing is lost or doubled, even when a scheduler dies
between two batches. The scripts are in :mod:`resque_compat.protocol.scripts`.

The queue job is built *inside* the script by string handling rather than ``cjson``:
``cjson.encode`` would reorder keys, turn ``[]`` into ``{}`` and reformat numbers. The item is
first validated with ``cjson.decode`` (so the scanner only ever sees well-formed JSON); then a
small scanner splits its top-level members into raw substrings, tracking strings, escapes and
nesting, and the job is assembled as ``{"class":<raw>,"args":<raw>}``: the bytes of class and
args travel untouched. This is what Ruby pushes for its own items (same encoder), keeps
php-resque-scheduler's wrapped ``[ {...} ]`` args as a PHP worker expects, and drops the
``queue`` member that node-resque puts in the middle. The alternative (pop into an in-flight
list, re-encode in Python, push in a second step) needs crash recovery for the in-flight list
and an owner for it across restarts; the single script needs neither.

An item that is not a JSON object with a string ``class`` and a string ``queue`` cannot be
enqueued by any peer; it is moved to ``<ns>compat:delayed:rejected`` (a list, never read by
peers) instead of being dropped, and counted. So is an item whose queue Python's JSON decoder
and the script's cjson read differently (NaN in its arguments, which no peer writes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from resque_compat.protocol import Keys, ProtocolError, decode_json
from resque_compat.protocol.scripts import MOVE_DELAYED_BATCH, MOVE_DELAYED_ITEM
from resque_compat.replies import raw

DEFAULT_BATCH = 100


def item_queue(item: bytes) -> str:
    """The queue an item names (``""`` when none): where the move script may push it. The
    script reads the queue again with cjson and keeps aside an item on which they disagree."""
    try:
        decoded = decode_json(item)
    except ProtocolError:
        return ""
    queue = decoded.get("queue") if isinstance(decoded, dict) else None
    if not isinstance(queue, str) or not queue:
        return ""
    try:
        queue.encode()
    except UnicodeEncodeError:  # a lone surrogate: not a key name any peer could use
        return ""
    return queue


Call = tuple[list[str | bytes], list[str | bytes | int]]


def item_keys(keys: Keys, item: bytes) -> tuple[bytes, str, str]:
    """An item's ``timestamps:`` set, where it goes (its queue, or the rejected list), its queue."""
    queue = item_queue(item)
    return keys.timestamps_of(item), keys.queue(queue) if queue else keys.delayed_rejected, queue


def _fixed_keys(keys: Keys, member: bytes) -> list[str | bytes]:
    return [keys.delayed_schedule, keys.queues, keys.delayed_rejected, keys.delayed_at(member)]


def batch_call(keys: Keys, member: bytes, items: list[bytes], batch: int) -> Call:
    """KEYS and ARGV of :data:`MOVE_DELAYED_BATCH` for ``items`` read from the head of ``delayed:<member>``."""
    call_keys = _fixed_keys(keys, member)
    args: list[str | bytes | int] = [member, Keys.delayed_member_of(member), batch]
    for item in items:
        stamps, dest, queue = item_keys(keys, item)
        call_keys += [stamps, dest]
        args += [item, queue]
    return call_keys, args


def batch_reply(reply: list[Any]) -> tuple[int, int, int, list[bytes]]:
    """``(moved, rejected, items left, the new head)`` from the batch script's reply."""
    moved, rejected, _taken, left, *head = reply
    return int(moved), int(rejected), int(left), [raw(i) for i in head]


def item_call(keys: Keys, timestamp: int, item: bytes) -> Call:
    """KEYS and ARGV of :data:`MOVE_DELAYED_ITEM`."""
    member = str(timestamp).encode()
    stamps, dest, queue = item_keys(keys, item)
    return [*_fixed_keys(keys, member), stamps, dest], [member, Keys.delayed_member_of(member), item, queue]


@dataclass
class MoveResult:
    """What one :meth:`Mover.move_due` call did."""

    moved: int = 0
    rejected: int = 0
    batches: int = 0
    timestamps: int = 0

    def __iadd__(self, other: MoveResult) -> MoveResult:
        self.moved += other.moved
        self.rejected += other.rejected
        self.batches += other.batches
        self.timestamps += other.timestamps
        return self


class Mover:
    """Moves due delayed items. Safe to run in any number of processes at once.

    Each batch reads the first due timestamp and the head of its list, then one script moves
    those items with every key named in KEYS (queue and ``timestamps:`` keys come from the
    items, so they are read first): the script takes from the head only the items read, so an
    item another scheduler took meanwhile is never moved twice.
    """

    def __init__(self, client: redis.Redis, keys: Keys, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError("batch size must be at least 1")
        self.redis = client
        self.keys = keys
        self.batch = batch
        self._move_batch = client.register_script(MOVE_DELAYED_BATCH)
        self._move_item = client.register_script(MOVE_DELAYED_ITEM)

    @property
    def rejected_key(self) -> str:
        return self.keys.delayed_rejected

    def _due(self, now: float | None) -> bytes | None:
        at = int(time.time() if now is None else now)
        due = self.redis.zrangebyscore(self.keys.delayed_schedule, "-inf", at, start=0, num=1)
        return raw(due[0]) if due else None

    def _read(self, member: bytes) -> list[bytes]:
        return [raw(i) for i in self.redis.lrange(self.keys.delayed_at(member), 0, self.batch - 1)]

    def _batch_at(self, member: bytes, items: list[bytes]) -> tuple[int, int, int, list[bytes]]:
        """One atomic batch of ``items`` (read from the head) at one timestamp:
        ``(moved, rejected, items left, the new head)``."""
        call_keys, args = batch_call(self.keys, member, items, self.batch)
        return batch_reply(self._move_batch(keys=call_keys, args=args))

    def move_due(
        self, now: float | None = None, *, should_stop: object = None, max_batches: int | None = None
    ) -> MoveResult:
        """Move everything due at ``now`` (default: the current time), batch by batch.

        ``should_stop`` (a callable) is checked between batches: a shutdown request stops after
        the batch in hand, which is complete by construction.
        """
        result = MoveResult()
        last: bytes | None = None
        head: list[bytes] = []
        while max_batches is None or result.batches < max_batches:
            if callable(should_stop) and should_stop():
                break
            # the timestamp in hand still has items (it stays due): go on with the head the
            # last batch returned, one round trip per batch
            if head and last is not None:
                member, items = last, head
            else:
                due = self._due(now)
                if due is None:
                    break
                member, items = due, self._read(due)
            moved, rejected, _left, head = self._batch_at(member, items)
            result.batches += 1
            result.moved += moved
            result.rejected += rejected
            if member != last:
                result.timestamps += 1
                last = member
        return result

    def move_timestamp(self, timestamp: int) -> MoveResult:
        """Move every item at one timestamp now, due or not (resque-web's "Queue now")."""
        result = MoveResult(timestamps=1)
        member = str(timestamp).encode()
        items = self._read(member)
        while True:
            moved, rejected, _left, items = self._batch_at(member, items)
            result.batches += 1
            result.moved += moved
            result.rejected += rejected
            if not items:
                return result

    def move_item(self, timestamp: int, item: bytes) -> bool:
        """Move one exact item (its stored bytes) now; False when it is no longer there."""
        call_keys, args = item_call(self.keys, timestamp, item)
        return bool(self._move_item(keys=call_keys, args=args))


__all__ = ["DEFAULT_BATCH", "MoveResult", "Mover"]
