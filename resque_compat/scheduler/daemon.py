"""The scheduler loop: lead, move due delayed items, fire recurring schedules, sleep.

Each pass: take or renew the master lock; if master, apply ``schedules_changed``, move every
due delayed item (atomic batches, see ``mover``) and fire due recurring schedules. Then sleep
until the next pass or the next recurring run, whichever is sooner.

What it survives:

* restart / crash: each batch is atomic, so a killed scheduler leaves every item either still
  delayed or on its queue; the lock expires (TTL) or is released, and the next master goes on;
* clock jumps: delayed items due by the new clock just move; recurring schedules fire once,
  never a burst (see ``recurring``);
* Redis going away: the pass fails, the loop logs once and retries with exponential backoff
  (0.5 s doubling to 30 s), logs again when Redis is back, and re-takes the lock;
* thousands of items at one timestamp: moved ``batch`` at a time, a shutdown request is
  honoured between batches;
* QUIT / TERM / INT: the pass in hand finishes its batch, the lock is released, the loop exits.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from resque_compat.client import Resque
from resque_compat.history import Sampler
from resque_compat.scheduler.lock import DEFAULT_TIMEOUT, MasterLock
from resque_compat.scheduler.mover import DEFAULT_BATCH, Mover, MoveResult
from resque_compat.scheduler.recurring import Recurring, load_schedule_file

log = logging.getLogger("resque_compat.scheduler")

DEFAULT_INTERVAL = 5.0
_BACKOFF_START = 0.5
_BACKOFF_MAX = 30.0


@dataclass
class PassResult:
    """What one pass did (for ``--once`` output and tests)."""

    master: bool
    moved: MoveResult
    fired: list[str]


class Scheduler:
    """One scheduler process's state and loop."""

    def __init__(
        self,
        resque: Resque,
        *,
        interval: float = DEFAULT_INTERVAL,
        batch: int = DEFAULT_BATCH,
        schedule_file: str | Path | None = None,
        lock_timeout: int = DEFAULT_TIMEOUT,
        lock_value: str | None = None,
        dynamic: bool = True,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.resque = resque
        self.interval = interval
        self.dynamic = dynamic
        self.lock = MasterLock(resque.redis, resque.keys, value=lock_value, timeout=lock_timeout)
        self.mover = Mover(resque.redis, resque.keys, batch)
        file_schedules = load_schedule_file(schedule_file) if schedule_file else {}
        self.recurring = Recurring(resque, file_schedules)
        self.history = Sampler(resque.redis, resque.keys)
        self._stop = threading.Event()
        self._was_master = False
        self._loaded = False
        self._loaded_as_master = False
        self._published: dict[str, float] = {}  # what compat:schedule_next holds from us

    # -- control ----------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish its pass and exit (what QUIT/TERM/INT do)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- one pass ---------------------------------------------------------------
    def run_pass(self, now: float | None = None) -> PassResult:
        """Lead if possible, then do a master's work. Raises Redis errors to the caller."""
        master = self.lock.hold()
        if master != self._was_master:
            if master:
                log.info("became master (lock %s = %s)", self.lock.key, self.lock.value)
            else:
                log.info("not master: %s holds the lock", self.lock.holder() or "nobody")
            self._was_master = master
        t = time.time() if now is None else now
        if not self._loaded or (master and not self._loaded_as_master):
            self.recurring.load(t)
            self._loaded = True
            self._loaded_as_master = master
            if master:
                self.recurring.store.pop_changed(limit=1_000_000)  # a full load covers them
        elif master and self.dynamic:
            self.recurring.apply_changes(t)
        moved = MoveResult()
        fired: list[str] = []
        if master:
            moved = self.mover.move_due(
                t if now is not None else None, should_stop=self._stop.is_set, still_master=self._still_master
            )
            master = self._was_master  # False when the lock was lost between two batches
            if moved.moved or moved.rejected:
                log.info(
                    "moved %d delayed item(s) from %d timestamp(s)%s",
                    moved.moved, moved.timestamps,
                    f", rejected {moved.rejected} unreadable (see {self.mover.rejected_key})" if moved.rejected else "",
                )  # fmt: skip
        fired = self.recurring.tick(t, fire=master)
        if master:
            self._published = self.recurring.store.publish_next(
                {name: s.next_fire for name, s in self.recurring.schedules.items()}, self._published
            )
        return PassResult(master, moved, fired)

    # -- the loop -----------------------------------------------------------------
    def run(self, *, once: bool = False) -> None:
        """Loop until stopped (or one pass with ``once``); the lock is released on the way out."""
        backoff = _BACKOFF_START
        down_since: float | None = None
        try:
            while not self.stopping:
                try:
                    self.run_pass()
                    self.history.tick()  # master or not: one sampler per minute, deployment-wide
                except _WAIT_ON as exc:
                    if once:
                        raise
                    if down_since is None:
                        down_since = time.monotonic()
                        log.error("%s; retrying with backoff", _why(exc))  # noqa: TRY400 - expected, no traceback wanted
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
                if down_since is not None:
                    log.info("Redis is back after %.1f s", time.monotonic() - down_since)
                    down_since = None
                    self._loaded = False  # a restarted Redis may hold other schedules
                backoff = _BACKOFF_START
                if once:
                    break
                self._stop.wait(self._sleep_time())
        finally:
            self.release()

    def _still_master(self) -> bool:
        """Asked between two batches of a pass, as resque-scheduler asks ``master?`` before each
        item: renew the lock (or take it back if free); a scheduler that stalled past the lock's
        TTL while another took it stops moving and firing for the rest of the pass."""
        if self.lock.hold():
            return True
        log.warning("lost the master lock during a pass: %s holds it now", self.lock.holder() or "nobody")
        self._was_master = False
        return False

    def _sleep_time(self) -> float:
        nxt = self.recurring.next_fire()
        if nxt is None or not math.isfinite(nxt):
            return self.interval
        return max(0.0, min(self.interval, nxt - time.time()))

    def release(self) -> None:
        """Stop leading: withdraw the published next runs, give the master lock up if ours."""
        try:
            if self._published:
                self.recurring.store.clear_next()  # nobody runs them now: readers fall back
                self._published = {}
            if self.lock.release():
                log.info("released the master lock")
        except redis.RedisError as exc:
            log.warning("could not release the master lock (it expires by itself): %s", exc)

    @contextmanager
    def signals(self) -> Iterator[None]:
        """QUIT/TERM/INT -> :meth:`stop`, for the duration of the block (main thread only)."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("got %s: finishing the pass", signal.Signals(signum).name)
            self.stop()

        wanted = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT]
        previous = {sig: signal.signal(sig, handler) for sig in wanted}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


#: Errors that mean "not now": Redis down, restarting, loading, or refusing writes (out of
#: memory, a read-only replica). A pass refused this way wrote nothing (each move is atomic),
#: so the scheduler waits and tries again.
_WAIT_ON = (
    redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
)  # fmt: skip


def _why(exc: Exception) -> str:
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return f"Redis refuses writes: out of memory (maxmemory) ({exc})"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return f"Redis refuses writes: read-only replica ({exc})"
    return f"Redis unavailable ({exc})"
