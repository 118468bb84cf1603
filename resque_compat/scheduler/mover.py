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
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import redis

from resque_compat.protocol import Keys, ProtocolError, decode_json
from resque_compat.protocol.scripts import MOVE_DELAYED_BATCH, MOVE_DELAYED_ITEM
from resque_compat.replies import raw
from resque_compat.resp import Command

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


@dataclass(frozen=True)
class MoveBatch:
    """A plan's request to run :data:`MOVE_DELAYED_BATCH` with these KEYS and ARGV; the reply
    goes back to the plan as the script returned it."""

    keys: list[str | bytes]
    args: list[str | bytes | int]


#: What a plan asks for: a command (wire words, sent as they are) or one batch script call.
Step = Command | MoveBatch
#: A move as a generator: it yields steps, receives each step's reply, and returns the result.
#: :class:`Mover` and the asyncio ``AsyncMover`` only send the steps, so both move alike.
MovePlan = Generator[Step, Any, MoveResult]


def _due_command(keys: Keys, now: float | None) -> Command:
    at = int(time.time() if now is None else now)
    return ("ZRANGEBYSCORE", keys.delayed_schedule, "-inf", at, "LIMIT", 0, 1)


def _head_command(keys: Keys, member: bytes, batch: int) -> Command:
    return ("LRANGE", keys.delayed_at(member), 0, batch - 1)


def _batch(keys: Keys, member: bytes, items: list[bytes], batch: int) -> MoveBatch:
    call_keys, args = batch_call(keys, member, items, batch)
    return MoveBatch(call_keys, args)


def move_due_plan(
    keys: Keys,
    batch: int,
    now: float | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    still_master: Callable[[], bool] | None = None,
    max_batches: int | None = None,
) -> MovePlan:
    """Move everything due at ``now`` (default: the current time), batch by batch.

    ``should_stop`` is asked before each batch: a shutdown request stops after the batch in hand,
    which is complete by construction. ``still_master`` is asked before each batch after the
    first, as resque-scheduler asks ``master?`` before each item: a scheduler that lost the lock
    mid-pass stops moving (the new master goes on)."""
    result = MoveResult()
    last: bytes | None = None
    head: list[bytes] = []
    while max_batches is None or result.batches < max_batches:
        if should_stop is not None and should_stop():
            break
        if result.batches and still_master is not None and not still_master():
            break
        # the timestamp in hand still has items (it stays due): go on with the head the
        # last batch returned, one round trip per batch
        if head and last is not None:
            member, items = last, head
        else:
            due = yield _due_command(keys, now)
            if not due:
                break
            member = raw(due[0])
            items = [raw(i) for i in (yield _head_command(keys, member, batch))]
        moved, rejected, _left, head = batch_reply((yield _batch(keys, member, items, batch)))
        result.batches += 1
        result.moved += moved
        result.rejected += rejected
        if member != last:
            result.timestamps += 1
            last = member
    return result


def move_timestamp_plan(keys: Keys, batch: int, timestamp: int) -> MovePlan:
    """Move every item at one timestamp now, due or not (resque-web's "Queue now")."""
    result = MoveResult(timestamps=1)
    member = str(timestamp).encode()
    items = [raw(i) for i in (yield _head_command(keys, member, batch))]
    while True:
        moved, rejected, _left, items = batch_reply((yield _batch(keys, member, items, batch)))
        result.batches += 1
        result.moved += moved
        result.rejected += rejected
        if not items:
            return result


class Mover:
    """Moves due delayed items. Safe to run in any number of processes at once.

    Each batch reads the first due timestamp and the head of its list, then one script moves
    those items with every key named in KEYS (queue and ``timestamps:`` keys come from the
    items, so they are read first): the script takes from the head only the items read, so an
    item another scheduler took meanwhile is never moved twice. The moves themselves are the
    plans above; this class sends their steps.
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

    def _send(self, step: Step) -> Any:
        if isinstance(step, MoveBatch):
            return self._move_batch(keys=step.keys, args=step.args)
        return self.redis.execute_command(*step)  # type: ignore[no-untyped-call]

    def _run(self, plan: MovePlan) -> MoveResult:
        reply: Any = None
        while True:
            try:
                step = plan.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply = self._send(step)

    def _read(self, member: bytes) -> list[bytes]:
        return [raw(i) for i in self._send(_head_command(self.keys, member, self.batch))]

    def _batch_at(self, member: bytes, items: list[bytes]) -> tuple[int, int, int, list[bytes]]:
        """One atomic batch of ``items`` (read from the head) at one timestamp:
        ``(moved, rejected, items left, the new head)``."""
        return batch_reply(self._send(_batch(self.keys, member, items, self.batch)))

    def move_due(
        self,
        now: float | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        still_master: Callable[[], bool] | None = None,
        max_batches: int | None = None,
    ) -> MoveResult:
        """:func:`move_due_plan`, sent."""
        plan = move_due_plan(
            self.keys, self.batch, now, should_stop=should_stop, still_master=still_master, max_batches=max_batches
        )
        return self._run(plan)

    def move_timestamp(self, timestamp: int) -> MoveResult:
        """Move every item at one timestamp now, due or not (resque-web's "Queue now")."""
        return self._run(move_timestamp_plan(self.keys, self.batch, timestamp))

    def move_item(self, timestamp: int, item: bytes) -> bool:
        """Move one exact item (its stored bytes) now; False when it is no longer there."""
        call_keys, args = item_call(self.keys, timestamp, item)
        return bool(self._move_item(keys=call_keys, args=args))


__all__ = ["DEFAULT_BATCH", "MoveBatch", "MovePlan", "MoveResult", "Mover", "move_due_plan", "move_timestamp_plan"]
