"""The delayed-job API for asyncio apps: :class:`resque_compat.scheduler.DelayedQueue`'s
operations on ``redis.asyncio``, over the same plans and scripts, so both send the same
commands (``tests/test_parity.py`` compares them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from resque_compat.aio import AsyncResque
from resque_compat.protocol import Keys, encode_json
from resque_compat.protocol.scripts import MOVE_DELAYED_BATCH, MOVE_DELAYED_ITEM, REMOVE_DELAYED_ITEM
from resque_compat.replies import raw, text
from resque_compat.resp import Command, queue_commands
from resque_compat.scheduler.delayed import (
    _PAGE,
    DelayedJob,
    ExactJob,
    Selector,
    _stamps,
    decode_item,
    delay_to_time,
    item_bytes,
    jobs_in_timestamps_set,
    push_commands,
    remove_call,
    schedule_plan,
)
from resque_compat.scheduler.mover import (
    DEFAULT_BATCH,
    MoveBatch,
    MovePlan,
    MoveResult,
    Step,
    item_call,
    move_due_plan,
    move_timestamp_plan,
)


class AsyncMover:
    """:class:`resque_compat.scheduler.Mover` on asyncio: it sends the same plans' steps."""

    def __init__(self, client: aioredis.Redis, keys: Keys, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError("batch size must be at least 1")
        self.redis = client
        self.keys = keys
        self.batch = batch
        self._move_batch = client.register_script(MOVE_DELAYED_BATCH)
        self._move_item = client.register_script(MOVE_DELAYED_ITEM)

    async def _send(self, step: Step) -> Any:
        if isinstance(step, MoveBatch):
            return await self._move_batch(keys=step.keys, args=step.args)
        return await self.redis.execute_command(*step)  # type: ignore[no-untyped-call]

    async def _run(self, plan: MovePlan) -> MoveResult:
        reply: Any = None
        while True:
            try:
                step = plan.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply = await self._send(step)

    async def move_due(
        self,
        now: float | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        still_master: Callable[[], bool] | None = None,
        max_batches: int | None = None,
    ) -> MoveResult:
        plan = move_due_plan(
            self.keys, self.batch, now, should_stop=should_stop, still_master=still_master, max_batches=max_batches
        )
        return await self._run(plan)

    async def move_timestamp(self, timestamp: int) -> MoveResult:
        return await self._run(move_timestamp_plan(self.keys, self.batch, timestamp))

    async def move_item(self, timestamp: int, item: bytes) -> bool:
        call_keys, args = item_call(self.keys, timestamp, item)
        return bool(await self._move_item(keys=call_keys, args=args))


class AsyncDelayedQueue:
    """Delayed jobs of one Resque deployment, from asyncio code.

    >>> async with AsyncResque("redis://localhost:6379/0") as r:
    ...     await AsyncDelayedQueue(r).enqueue_in(3600, "email", "SendFollowUpEmail", {"user_id": 7})
    """

    def __init__(self, resque: AsyncResque, batch: int = 100) -> None:
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.mover = AsyncMover(self.redis, self.keys, batch)
        self._remove_item = self.redis.register_script(REMOVE_DELAYED_ITEM)

    # -- scheduling ---------------------------------------------------------------
    async def enqueue_at(self, at: float | int | datetime, queue: str, class_name: str, *args: Any) -> int | None:
        ts, commands = schedule_plan(self.keys, at, queue, class_name, args)
        await self._run(commands, transaction=True)
        return ts

    async def enqueue_in(self, seconds: float, queue: str, class_name: str, *args: Any) -> int | None:
        return await self.enqueue_at(delay_to_time(seconds), queue, class_name, *args)

    async def push_raw(self, timestamp: int, raw: bytes, *, with_timestamps_set: bool = True) -> None:
        commands = push_commands(self.keys, timestamp, raw, with_timestamps_set=with_timestamps_set)
        await self._run(commands, transaction=True)

    async def _run(self, commands: list[Command], *, transaction: bool) -> list[Any]:
        pipe = self.redis.pipeline(transaction=transaction)
        queue_commands(pipe, commands)
        result: list[Any] = await pipe.execute()
        return result

    # -- inspection -----------------------------------------------------------------
    async def count(self) -> int:
        total = 0
        async for page in self._timestamp_pages():
            total += sum(
                int(n) for n in await self._run([("LLEN", self.keys.delayed(ts)) for ts in page], transaction=False)
            )
        return total

    async def timestamps(self, start: int = 0, count: int = 50) -> list[tuple[int, int]]:
        if count <= 0:
            return []
        stamps = _stamps(await self.redis.zrange(self.keys.delayed_schedule, start, start + count - 1))
        sizes = await self._run([("LLEN", self.keys.delayed(ts)) for ts in stamps], transaction=False)
        return list(zip(stamps, (int(n) for n in sizes), strict=True))

    async def timestamp_count(self) -> int:
        return int(await self.redis.zcard(self.keys.delayed_schedule))

    async def next_timestamp(self) -> int | None:
        first = _stamps(await self.redis.zrange(self.keys.delayed_schedule, 0, 0))
        return first[0] if first else None

    async def size_at(self, timestamp: int) -> int:
        return int(await self.redis.llen(self.keys.delayed(timestamp)))

    async def jobs_at(self, timestamp: int, start: int = 0, count: int = -1) -> list[DelayedJob]:
        end = -1 if count < 0 else start + count - 1
        return [
            decode_item(raw(r), timestamp) for r in await self.redis.lrange(self.keys.delayed(timestamp), start, end)
        ]

    async def all_jobs(self) -> AsyncIterator[DelayedJob]:
        async for page in self._timestamp_pages():
            for ts in page:
                start = 0
                while True:
                    raws = await self.redis.lrange(self.keys.delayed(ts), start, start + _PAGE - 1)
                    for r in raws:
                        yield decode_item(raw(r), ts)
                    if len(raws) < _PAGE:
                        break
                    start += _PAGE

    async def scheduled_at(self, queue: str, class_name: str, *args: Any) -> list[int]:
        return sorted({job.timestamp for job in await self._find_exact(queue, class_name, list(args))})

    async def find(self, selector: Selector, class_name: str | None = None) -> list[DelayedJob]:
        return [
            job
            async for job in self.all_jobs()
            if job.item is not None
            and (class_name is None or job.item.class_ == class_name)
            and selector(job.item.class_, job.item.args)
        ]

    # -- removal ----------------------------------------------------------------------
    async def remove(self, queue: str, class_name: str, *args: Any, scan: bool = True) -> int:
        wanted = list(args)
        if scan:
            found = await self._find_exact(queue, class_name, wanted)
        else:
            found = await self._find_by_timestamps_set(item_bytes(queue, class_name, wanted))
        return await self._remove_all(found)

    async def remove_selection(self, selector: Selector, class_name: str | None = None) -> int:
        return await self._remove_all(await self.find(selector, class_name))

    async def remove_at(self, timestamp: int, raw: bytes) -> int:
        call_keys, args = remove_call(self.keys, timestamp, raw)
        return int(await self._remove_item(keys=call_keys, args=args))

    async def clear(self, progress: Callable[[int], None] | None = None) -> int:
        removed = 0
        async for page in self._timestamp_pages():
            await self.redis.delete(*(self.keys.delayed(ts) for ts in page))
            await self.redis.zrem(self.keys.delayed_schedule, *(str(ts) for ts in page))
            removed += len(page)
            if progress is not None:
                progress(len(page))
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=self.keys.timestamps_pattern, count=_PAGE):
            batch.append(key)
            if len(batch) >= _PAGE:
                await self.redis.delete(*batch)
                batch.clear()
        if batch:
            await self.redis.delete(*batch)
        return removed

    # -- moving now ---------------------------------------------------------------------
    async def enqueue_timestamp_now(self, timestamp: int) -> MoveResult:
        return await self.mover.move_timestamp(timestamp)

    async def enqueue_job_now(self, queue: str, class_name: str, *args: Any) -> int:
        jobs = await self._find_exact(queue, class_name, list(args))
        return sum([await self.mover.move_item(job.timestamp, job.raw) for job in jobs])

    async def enqueue_item_now(self, timestamp: int, raw: bytes) -> bool:
        return await self.mover.move_item(timestamp, raw)

    async def move_due(self, now: float | None = None) -> MoveResult:
        return await self.mover.move_due(now)

    # -- internals --------------------------------------------------------------------
    async def _timestamp_pages(self) -> AsyncIterator[list[int]]:
        last = "-inf"
        while True:
            members = await self.redis.zrangebyscore(self.keys.delayed_schedule, last, "+inf", start=0, num=_PAGE)
            if not members:
                return
            page = _stamps(members)
            if page:
                yield page
            if len(members) < _PAGE:
                return
            last = f"({await self.redis.zscore(self.keys.delayed_schedule, text(members[-1])) or 0}"

    async def _find_by_timestamps_set(self, raw: bytes) -> list[DelayedJob]:
        return jobs_in_timestamps_set(raw, await self.redis.smembers(self.keys.timestamps_of(raw)))

    async def _find_exact(self, queue: str, class_name: str, args: list[Any]) -> list[DelayedJob]:
        raw = item_bytes(queue, class_name, args)
        found = {(job.timestamp, job.raw): job for job in await self._find_by_timestamps_set(raw)}
        want = ExactJob(queue, class_name, raw, encode_json(args))
        async for job in self.all_jobs():
            if want.matches(job):
                found[(job.timestamp, job.raw)] = job
        return list(found.values())

    async def _remove_all(self, jobs: list[DelayedJob]) -> int:
        unique = {(job.timestamp, job.raw) for job in jobs}
        return sum([await self.remove_at(ts, raw) for ts, raw in unique])


__all__ = ["AsyncDelayedQueue", "AsyncMover"]
