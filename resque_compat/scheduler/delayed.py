"""The delayed-job API on resque-scheduler's Redis layout.

Writes are resque-scheduler 5.0's bytes: the item ``{"class","args","queue"}`` (compact, raw
UTF-8), ``RPUSH delayed:<ts>``, ``SADD timestamps:<item> delayed:<ts>``, ``ZADD
delayed_queue_schedule <ts> <ts>``, here in one MULTI so a crash never leaves half an item.

Reads accept every peer's items: php-resque-scheduler's (args wrapped as ``[args]``, no
``timestamps:`` set) and node-resque's (``{"class","queue","args"}``). Lookups by exact job
use the ``timestamps:`` sets first (Ruby's way, O(1)) and then scan the lists, comparing
decoded items, so items written without those sets, or in another key order, are found too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from resque_compat.client import Resque
from resque_compat.plans import enqueue_plan
from resque_compat.protocol import DelayedItem, Keys, ProtocolError, encode_json, inputs, timefmt
from resque_compat.protocol.scripts import REMOVE_DELAYED_ITEM
from resque_compat.replies import raw, text
from resque_compat.resp import Command, queue_commands
from resque_compat.scheduler.mover import Mover, MoveResult

#: ``(class_name, args)`` -> keep?  Used by :meth:`DelayedQueue.remove_selection`.
Selector = Callable[[str, list[Any]], bool]

_PAGE = 1000


#: the longest delay accepted (100 years)
MAX_DELAY = 100 * 365 * 86400


def to_timestamp(at: float | int | datetime) -> int:
    """Unix seconds, truncated as Ruby's ``Time#to_i`` does; naive datetimes are local time."""
    if isinstance(at, datetime):
        return int(at.timestamp())
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise ValueError(f"a time must be unix seconds or a datetime, not {type(at).__name__}")  # noqa: TRY004 - bad input, reported as such
    return int(inputs.check_seconds(at, "the time", positive=False, maximum=timefmt.MAX_EPOCH))


@dataclass(frozen=True)
class DelayedJob:
    """One stored item: its bytes, the decoded item (None when unreadable) and its timestamp."""

    timestamp: int
    raw: bytes
    item: DelayedItem | None
    problem: str | None = None

    @property
    def class_name(self) -> str | None:
        return self.item.class_ if self.item else None

    @property
    def queue(self) -> str | None:
        return self.item.queue if self.item else None

    @property
    def args(self) -> list[Any]:
        return self.item.args if self.item else []


def decode_item(raw: bytes, timestamp: int = 0) -> DelayedJob:
    try:
        return DelayedJob(timestamp, raw, DelayedItem.decode(raw))
    except ProtocolError as exc:
        return DelayedJob(timestamp, raw, None, str(exc))


def item_bytes(queue: str, class_name: str, args: Sequence[Any]) -> bytes:
    """resque-scheduler's exact item encoding (``job_to_hash_with_queue``)."""
    inputs.check_name("queue name", queue)
    inputs.check_name("class name", class_name)
    return DelayedItem(class_=class_name, args=list(args), queue=queue).encode()


def push_commands(keys: Keys, timestamp: int, raw: bytes, *, with_timestamps_set: bool = True) -> list[Command]:
    """resque-scheduler's ``delayed_push``: the commands, to run in one MULTI."""
    commands: list[Command] = [("RPUSH", keys.delayed(timestamp), raw)]
    if with_timestamps_set:
        commands.append(("SADD", keys.timestamps_of(raw), keys.delayed_member(timestamp)))
    commands.append(("ZADD", keys.delayed_schedule, timestamp, str(timestamp)))
    return commands


def schedule_plan(
    keys: Keys,
    at: float | int | datetime,
    queue: str,
    class_name: str,
    args: Sequence[Any],
    *,
    now: float | None = None,
) -> tuple[int | None, list[Command]]:
    """The timestamp and the commands (one MULTI) of ``enqueue_at``; Ruby's rule: a time not
    in the future (``ts <= now``) enqueues now, and the timestamp is None."""
    ts = to_timestamp(at)
    inputs.check_name("queue name", queue)
    inputs.check_name("class name", class_name)
    inputs.check_json_value(list(args), "args")
    raw = item_bytes(queue, class_name, args)
    if ts <= int(time.time() if now is None else now):
        return None, enqueue_plan(keys, queue, [(class_name, args)], track=False)[1]
    return ts, push_commands(keys, ts, raw)


def delay_to_time(seconds: float) -> float:
    """``enqueue_in``'s time: now + ``seconds`` (a number, checked)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"a delay must be a number of seconds, not {type(seconds).__name__}")  # noqa: TRY004 - bad input, reported as such
    return time.time() + inputs.check_seconds(seconds, "the delay", positive=False, maximum=MAX_DELAY)


class DelayedQueue:
    """Delayed jobs of one Resque deployment.

    >>> delayed = DelayedQueue(Resque("redis://localhost:6379/0"))
    >>> delayed.enqueue_in(3 * 86400, "email", "SendFollowUpEmail", {"user_id": 7})
    """

    def __init__(self, resque: Resque, batch: int = 100) -> None:
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.mover = Mover(self.redis, self.keys, batch)
        self._remove_item = self.redis.register_script(REMOVE_DELAYED_ITEM)

    # -- scheduling ---------------------------------------------------------------
    def enqueue_at(self, at: float | int | datetime, queue: str, class_name: str, *args: Any) -> int | None:
        """Schedule a job; returns its timestamp, or None when ``at`` is not in the future
        and the job was enqueued immediately (Ruby's rule: ``ts <= now`` enqueues now)."""
        ts, commands = schedule_plan(self.keys, at, queue, class_name, args)
        self._run(commands)
        return ts

    def enqueue_in(self, seconds: float, queue: str, class_name: str, *args: Any) -> int | None:
        """``enqueue_at(now + seconds, ...)``."""
        return self.enqueue_at(delay_to_time(seconds), queue, class_name, *args)

    def push_raw(self, timestamp: int, raw: bytes, *, with_timestamps_set: bool = True) -> None:
        """Store an item's bytes at a timestamp (resque-scheduler's ``delayed_push``), atomically."""
        self._run(push_commands(self.keys, timestamp, raw, with_timestamps_set=with_timestamps_set))

    def _run(self, commands: list[Command]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        queue_commands(pipe, commands)
        pipe.execute()

    # -- inspection -----------------------------------------------------------------
    def count(self) -> int:
        """Every delayed item (Ruby's ``count_all_scheduled_jobs``)."""
        total = 0
        for page in self._timestamp_pages():
            pipe = self.redis.pipeline(transaction=False)
            for ts in page:
                pipe.llen(self.keys.delayed(ts))
            total += sum(int(n) for n in pipe.execute())
        return total

    def timestamps(self, start: int = 0, count: int = 50) -> list[tuple[int, int]]:
        """A page of ``(timestamp, number of items)``, soonest first (resque-web's Delayed tab)."""
        if count <= 0:
            return []
        stamps = _stamps(self.redis.zrange(self.keys.delayed_schedule, start, start + count - 1))
        pipe = self.redis.pipeline(transaction=False)
        for ts in stamps:
            pipe.llen(self.keys.delayed(ts))
        return list(zip(stamps, (int(n) for n in pipe.execute()), strict=True))

    def timestamp_count(self) -> int:
        return int(self.redis.zcard(self.keys.delayed_schedule))

    def next_timestamp(self) -> int | None:
        first = _stamps(self.redis.zrange(self.keys.delayed_schedule, 0, 0))
        return first[0] if first else None

    def size_at(self, timestamp: int) -> int:
        """Items stored at one timestamp."""
        return int(self.redis.llen(self.keys.delayed(timestamp)))

    def jobs_at(self, timestamp: int, start: int = 0, count: int = -1) -> list[DelayedJob]:
        end = -1 if count < 0 else start + count - 1
        return [decode_item(raw(r), timestamp) for r in self.redis.lrange(self.keys.delayed(timestamp), start, end)]

    def all_jobs(self) -> Iterator[DelayedJob]:
        """Every item, soonest first, read page by page."""
        for page in self._timestamp_pages():
            for ts in page:
                start = 0
                while True:
                    raws = self.redis.lrange(self.keys.delayed(ts), start, start + _PAGE - 1)
                    for r in raws:
                        yield decode_item(raw(r), ts)
                    if len(raws) < _PAGE:
                        break
                    start += _PAGE

    def scheduled_at(self, queue: str, class_name: str, *args: Any) -> list[int]:
        """Timestamps holding this exact job (any peer's encoding)."""
        return sorted({job.timestamp for job in self._find_exact(queue, class_name, list(args))})

    def find(self, selector: Selector, class_name: str | None = None) -> list[DelayedJob]:
        """Items whose class (if given) matches and for which ``selector(class, args)`` is true."""
        return [
            job
            for job in self.all_jobs()
            if job.item is not None
            and (class_name is None or job.item.class_ == class_name)
            and selector(job.item.class_, job.item.args)
        ]

    # -- removal ----------------------------------------------------------------------
    def remove(self, queue: str, class_name: str, *args: Any, scan: bool = True) -> int:
        """Remove every copy of one exact job (Ruby's ``remove_delayed_in_queue``); returns
        how many items went. ``scan`` also finds items written without ``timestamps:`` sets."""
        wanted = list(args)
        if scan:
            found = self._find_exact(queue, class_name, wanted)
        else:
            found = self._find_by_timestamps_set(item_bytes(queue, class_name, wanted))
        return self._remove_all(found)

    def remove_selection(self, selector: Selector, class_name: str | None = None) -> int:
        """Remove every item matching ``selector(class, args)`` (Ruby's ``remove_delayed_selection``)."""
        return self._remove_all(self.find(selector, class_name))

    def remove_at(self, timestamp: int, raw: bytes) -> int:
        """Remove one stored item by its bytes at one timestamp."""
        call_keys, args = remove_call(self.keys, timestamp, raw)
        return int(self._remove_item(keys=call_keys, args=args))

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        """Delete every delayed item, ``timestamps:`` set and the schedule (``reset_delayed_queue``).
        Returns the number of timestamps removed; ``progress(n)`` after each page of them."""
        removed = 0
        for page in self._timestamp_pages():
            self.redis.delete(*(self.keys.delayed(ts) for ts in page))
            self.redis.zrem(self.keys.delayed_schedule, *(str(ts) for ts in page))
            removed += len(page)
            if progress is not None:
                progress(len(page))
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=self.keys.timestamps_pattern, count=_PAGE):
            batch.append(key)
            if len(batch) >= _PAGE:
                self.redis.delete(*batch)
                batch.clear()
        if batch:
            self.redis.delete(*batch)
        return removed

    # -- moving now ---------------------------------------------------------------------
    def enqueue_timestamp_now(self, timestamp: int) -> MoveResult:
        """Move every item at one timestamp onto its queue now."""
        return self.mover.move_timestamp(timestamp)

    def enqueue_job_now(self, queue: str, class_name: str, *args: Any) -> int:
        """Move one exact job (every copy, wherever scheduled) onto its queue now."""
        return sum(
            self.mover.move_item(job.timestamp, job.raw) for job in self._find_exact(queue, class_name, list(args))
        )

    def enqueue_item_now(self, timestamp: int, raw: bytes) -> bool:
        """Move one stored item (by its bytes) onto its queue now; False when it is gone."""
        return self.mover.move_item(timestamp, raw)

    def move_due(self, now: float | None = None) -> MoveResult:
        """What one scheduler pass does, without the lock: move everything due."""
        return self.mover.move_due(now)

    # -- internals --------------------------------------------------------------------
    def _timestamp_pages(self) -> Iterator[list[int]]:
        """Every timestamp in pages; each page is read fresh, so moved ones are skipped."""
        last = "-inf"
        while True:
            members = self.redis.zrangebyscore(self.keys.delayed_schedule, last, "+inf", start=0, num=_PAGE)
            if not members:
                return
            page = _stamps(members)
            if page:
                yield page
            if len(members) < _PAGE:
                return
            last = f"({self.redis.zscore(self.keys.delayed_schedule, text(members[-1])) or 0}"

    def _find_by_timestamps_set(self, raw: bytes) -> list[DelayedJob]:
        return jobs_in_timestamps_set(raw, self.redis.smembers(self.keys.timestamps_of(raw)))

    def _find_exact(self, queue: str, class_name: str, args: list[Any]) -> list[DelayedJob]:
        raw = item_bytes(queue, class_name, args)
        found = {(job.timestamp, job.raw): job for job in self._find_by_timestamps_set(raw)}
        want = ExactJob(queue, class_name, raw, encode_json(args))
        for job in self.all_jobs():
            if want.matches(job):
                found[(job.timestamp, job.raw)] = job
        return list(found.values())

    def _remove_all(self, jobs: list[DelayedJob]) -> int:
        unique = {(job.timestamp, job.raw) for job in jobs}
        return sum(self.remove_at(ts, raw) for ts, raw in unique)


def remove_call(keys: Keys, timestamp: int, raw: bytes) -> tuple[list[str | bytes], list[str | bytes | int]]:
    """KEYS and ARGV of :data:`REMOVE_DELAYED_ITEM`."""
    call_keys: list[str | bytes] = [keys.delayed_schedule, keys.delayed(timestamp), keys.timestamps_of(raw)]
    return call_keys, [timestamp, Keys.delayed_member(timestamp), raw]


def jobs_in_timestamps_set(raw: bytes, members: object) -> list[DelayedJob]:
    """The item ``raw`` at each timestamp its ``timestamps:`` set names (Ruby's O(1) lookup)."""
    found = []
    for member in members if isinstance(members, (set, list)) else []:
        ts = Keys.parse_delayed_member(text(member))
        if ts is not None:
            found.append(DelayedJob(ts, raw, decode_item(raw).item))
    return found


@dataclass(frozen=True)
class ExactJob:
    """One exact job to find among items of any peer's encoding: its bytes as Ruby writes
    them, or the same class, queue and args in another key order or encoder."""

    queue: str
    class_name: str
    raw: bytes
    args_json: bytes

    def matches(self, job: DelayedJob) -> bool:
        item = job.item
        return (
            item is not None
            and item.class_ == self.class_name
            and item.queue == self.queue
            and (job.raw == self.raw or encode_json(item.args) == self.args_json)
        )


def _stamps(members: object) -> list[int]:
    """Timestamps from zset members; a member that is not an integer (no peer writes one) is skipped."""
    out = []
    for member in members if isinstance(members, list) else []:
        value = text(member)
        if value.lstrip("-").isdigit():
            out.append(int(value))
    return out


def enqueue_delayed(
    resque: Resque, at: float | int | datetime, queue: str, class_name: str, args: Sequence[Any]
) -> int | None:
    """For ``resque-compat enqueue --at/--in``: schedule ``class_name(*args)`` on ``queue`` at
    ``at`` (unix seconds or datetime). Returns the timestamp, or None when enqueued now."""
    return DelayedQueue(resque).enqueue_at(at, queue, class_name, *args)
