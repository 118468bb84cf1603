"""Units of work: the worker's side of the cycle script (``cycle``), the blocking pop and the
adoption of what it moved, as Sidekiq's ``fetch.rb`` hands out units of work.

A :class:`Unit` is one reserved job. How it ended is told with ``ack(finish)`` or
``release()`` and written by the *next* cycle call, together with the next reservation (one
round trip per job), or, for a retry policy's failure, already by its own script
(``settled``). Whoever must know that the end is in Redis (a forked child waiting to exit)
asks with ``on_recorded``. The fetcher owns the cycle, the pending finish and the counters;
only the worker's loop (main thread) calls it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.protocol import ProtocolError, WorkingOn, decode_json, resolve_queues
from resque_compat.replies import text
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.cycle import Cycle, CycleResult, Finish, Kind
from resque_compat.worker.prefetch import Prefetch, pipelinable
from resque_compat.worker.redis_retry import RETRY_GIVE_UP, Retrier, refusal, transient, why
from resque_compat.worker.run_state import RunState
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")


@dataclass(eq=False)
class Unit:
    """One reserved job: its queue and the item's exact bytes."""

    queue: str
    item: bytes
    _fetcher: Fetcher = field(repr=False)
    _callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def ack(self, finish: Finish) -> None:
        """How the job ended (done, or a failure record, and its final status): recorded by the
        next fetch, which also counts it."""
        self._fetcher.pending = (finish, self)

    def release(self, status_key: str | None = None, status: bytes | None = None) -> None:
        """Give the job back, at the head of its queue (``status``: its waiting status)."""
        self.ack(Finish(self.queue, release_item=self.item, status_key=status_key, status=status))

    def flush(self) -> None:
        """Before a job's own scripts (a retry policy's): no prefetched job or reply pending."""
        self._fetcher.flush()

    def settled(self, processed: int) -> None:
        """A retry policy's script already recorded a failure (and counted it)."""
        self._fetcher.counted(failed=True, processed=processed)
        self.recorded()

    def on_recorded(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def recorded(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class Fetcher:
    """Reserves jobs for one worker id and records how the previous one ended, in one call."""

    def __init__(
        self,
        config: WorkerConfig,
        resque: Resque,
        worker_id: str,
        *,
        state: RunState,
        wakeup: Wakeup,
        retry: Retrier,
        on_reconnect: Callable[[], None],
    ) -> None:
        self.config = config
        self.redis = resque.redis
        self.keys = resque.keys
        self.id = worker_id
        self.state = state
        self.wakeup = wakeup
        self.retry = retry
        self.on_reconnect = on_reconnect
        self.cycle: Cycle | None = None
        #: ``--prefetch K`` (K > 1, no fork): see ``worker.prefetch``
        self.prefetch: Prefetch | None = None
        self.queues: list[str] = [q for q in config.queues if not q.startswith("!")]
        #: the end of the last unit, to be written by the next call
        self.pending: tuple[Finish, Unit] | None = None
        self.jobs_done = 0
        self.jobs_failed = 0
        self._processed_seen = 0  # the per-worker processed count, for a call in recovery
        self._resolved_at = 0.0

    def load(self) -> None:
        config = self.config
        self.cycle = self.retry(
            lambda: Cycle(
                self.redis, self.keys, self.id, reliable=config.reliable, failure_backend=config.failure_backend
            ),
            "load the worker script",
        )
        if config.prefetch > 1 and not config.fork:
            cycle = self.cycle
            self.prefetch = self.retry(
                lambda: Prefetch(cycle, self.keys, self.id, config.prefetch, reliable=config.reliable),
                "load the prefetch scripts",
            )

    def counted(self, *, failed: bool, processed: int) -> None:
        self.jobs_done += 1
        self.jobs_failed += failed
        self._processed_seen = processed

    # -- queues -------------------------------------------------------------------------
    def refresh_queues(self, *, idle: bool) -> None:
        """Queue patterns: resolve again when idle, else every ``resolve_interval`` s."""
        if self.config.has_patterns and (idle or time.monotonic() - self._resolved_at >= self.config.resolve_interval):
            self.resolve_queues()

    def resolve_queues(self) -> None:
        assert self.cycle is not None
        if self.config.has_patterns:
            known = self.retry(lambda: self.redis.smembers(self.keys.queues), "list queues")
            self.queues = resolve_queues(self.config.queues, (text(q) for q in known))
            self._resolved_at = time.monotonic()
        if self.queues != self.cycle.queues:
            self.cycle.set_queues(self.queues)

    # -- fetching -----------------------------------------------------------------------
    def fetch(self, *, check: bool, reserve: bool) -> Unit | CycleResult:
        """Record the pending end, then (``reserve``) the next job, or what the cycle says
        instead (idle, paused, a control command)."""
        if self.prefetch is not None:
            return self._fetch_ahead(self.prefetch, check=check, reserve=reserve)
        result = self._call(check=check, reserve=reserve)
        return self._unit_of(result) or result

    def _fetch_ahead(self, prefetch: Prefetch, *, check: bool, reserve: bool) -> Unit | CycleResult:
        """``--prefetch``: start the next prefetched job in the call that records the last one
        (not waited for), or reserve the next batch; anything else gives the rest back first
        and takes the one-call-per-job path."""
        assert self.cycle is not None
        finish, unit = self.pending if self.pending is not None else (None, None)
        plain = reserve and not check and pipelinable(finish)
        if plain and prefetch.ahead:
            queue, item = prefetch.ahead.popleft()
            prefetch.step(finish, queue, item)
            self._recorded(finish, unit)
            return Unit(queue, item, self)
        self.flush()
        if plain:
            first = prefetch.reserve(finish, self.cycle.order)
            self._recorded(finish, unit)
            self._processed_seen = max(self._processed_seen, prefetch.processed)
            if first is not None:
                return Unit(*first, self)
            return CycleResult(Kind.IDLE, prefetch.processed)
        result = self._call(check=check, reserve=reserve)
        return self._unit_of(result) or result

    def _recorded(self, finish: Finish | None, unit: Unit | None) -> None:
        self.pending = None
        if finish is not None:
            self.jobs_done += 1
            self.jobs_failed += finish.failed
        if unit is not None:
            unit.recorded()

    def flush(self) -> None:
        """Prefetching: read every pipelined reply and give the unstarted jobs back, so the next
        call (or a job's own script) sees Redis as one call per job would have left it."""
        prefetch = self.prefetch
        if prefetch is None or not (prefetch.unread or prefetch.ahead):
            return
        moved = prefetch.give_back()
        self._processed_seen = max(self._processed_seen, prefetch.processed)
        if moved:
            log.debug("gave %d prefetched job(s) back to their queue", moved)

    def wait_and_adopt(self) -> Unit | None:
        """Blocking mode, when idle: BLMOVE from the first queue into our in-flight list (the
        other queues are polled by the cycle between pops), at most 1 s at a time so signals
        and control commands are seen promptly, then record what moved, atomically, from that
        list, so a kill -9 at any instant leaves the item in Redis, where a pruner finds it."""
        moved_from = self._blocking_pop()
        if moved_from is None:
            return None
        return self._unit_of(self._call(check=False, reserve=False, adopt=moved_from), default_queue=moved_from)

    def _blocking_pop(self) -> str | None:
        """The queue when an item may be in the in-flight list (moved, or the reply was lost)."""
        timeout = max(0.01, min(self.config.interval, 1.0))
        if not self.queues:
            self.wakeup.sleep(timeout)
            return None
        first = self.queues[0]
        try:
            item = self.redis.blmove(
                self.keys.queue(first),
                self.keys.inflight(self.id),
                timeout,  # type: ignore[arg-type]  # Redis takes fractional seconds
                "LEFT",
                "RIGHT",
            )
        except redis.RedisError as exc:
            if not transient(exc):
                raise
            log.warning("Redis connection lost while waiting (%s); reconnecting", redact(str(exc)))
            self.wakeup.sleep(1.0)
            return first  # the move may have happened: the adopt call finds out
        return first if item is not None else None

    def _unit_of(self, result: CycleResult, default_queue: str = "") -> Unit | None:
        if result.kind is Kind.JOB and result.item is not None:
            return Unit(result.queue or default_queue, result.item, self)
        if result.kind is Kind.RECOVERED and result.record is not None:
            log.info("recovered the job reserved before the connection was lost")
            held = _from_record(result.record)
            return Unit(*held, self) if held is not None else None
        return None

    def _call(self, *, check: bool, reserve: bool, adopt: str | None = None) -> CycleResult:
        """One cycle call; on a dropped connection back off, reconnect, and retry in recovery mode."""
        assert self.cycle is not None
        finish, unit = self.pending if self.pending is not None else (None, None)
        state = self.state
        recovering: int | None = None
        delay = 0.1
        started = time.monotonic()
        while True:
            try:
                result = self.cycle.call(finish, check=check, reserve=reserve, adopt=adopt, recovering=recovering)
            except redis.RedisError as exc:
                if not transient(exc):
                    raise
                if recovering is None:
                    log.warning("%s; %s", why(exc), "waiting and retrying" if refusal(exc) else "reconnecting")
                recovering = self._processed_seen
                if state.stop and (finish is None or state.stop_now or time.monotonic() - started > RETRY_GIVE_UP):
                    # shutting down: what Redis has not recorded is left to the pruner
                    if finish is not None:
                        log.warning("Redis unreachable while stopping: the job's end is left to the pruner")
                    raise
                self.wakeup.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.pending = None
            if result.processed >= 0:
                self._processed_seen = result.processed
            if finish is not None and finish.release_item is None:
                self.jobs_done += 1
                self.jobs_failed += finish.failed
            if unit is not None:
                unit.recorded()
            if recovering is not None:
                log.warning("Redis is back (after %.1f s)", time.monotonic() - started)
                self.retry(self.on_reconnect, "re-register")
            return result

    def finish_guarded(self, finish: Finish, item: bytes) -> None:
        """From a forked child whose worker died: record the end on a connection of its own,
        only if ``worker:<id>`` still holds ``item`` (else a pruner or the worker took it)."""
        assert self.cycle is not None
        self.cycle.reconnect()
        self.cycle.call(finish, check=False, reserve=False, guard=item)


def _from_record(record: bytes) -> tuple[str, bytes] | None:
    """The job a lost cycle call reserved, from the worker:<id> record it wrote."""
    try:
        working = WorkingOn.decode(record)
    except ProtocolError:
        return None
    payload = bytes(working.payload)
    try:
        value = decode_json(payload)
    except ProtocolError:
        return (working.queue, payload)
    if isinstance(value, str):  # a malformed item was stored as a JSON string
        return (working.queue, value.encode())
    return (working.queue, payload)
