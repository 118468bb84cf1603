"""The worker's heartbeat thread: Resque's heartbeat, our published state, pruning dead
workers, the periodic summary line, the history sample, and, while a job runs, the control
list (between jobs the cycle call reads it). One schedule (``HeartbeatLoop``) for a worker
(``Heartbeat``) and for a concurrency process's slots (``SlotsHeartbeat``, one thread for all).
It writes Redis and its own schedule only; a control command it reads is applied through
``Control`` (see ``run_state`` for who writes what)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import redis

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.failures import Failures
from resque_compat.history import Sampler
from resque_compat.protocol.records import WorkerState
from resque_compat.registry import JobRegistry
from resque_compat.store.workers import WorkerStore
from resque_compat.worker import pruning
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.control import Control
from resque_compat.worker.run_state import RunState

if TYPE_CHECKING:
    from resque_compat.worker.slot import Slot

log = logging.getLogger("resque_compat.worker")


class HeartbeatLoop:
    """The heartbeat thread's schedule, shared by a worker (``Heartbeat``) and a concurrency
    process, whose one thread beats for all its slots (``SlotsHeartbeat``): heartbeat every
    HEARTBEAT_INTERVAL s, publish a changed state within half a second, prune dead workers now
    and then (``prune``), the summary line, the history sample. What it beats for, and how the
    control lists are read, is the subclass's."""

    def __init__(self, config: WorkerConfig, resque: Resque, failures: Failures, pruner_id: str) -> None:
        self.config = config
        self.redis = resque.redis
        self.keys = resque.keys
        self.failures = failures
        self.pruner_id = pruner_id  # the id that prunes (its own process is kept)
        self._history = Sampler(self.redis, self.keys)  # ticked here, never by a job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = time.monotonic()
        self._summary_at = time.monotonic()
        self._summary_counts = (0, 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="resque-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def beat(self) -> None:
        raise NotImplementedError

    def _read_controls(self) -> None:
        """Control lists of whatever is running a job (between jobs the cycle call reads them)."""
        raise NotImplementedError

    def _publish_changed(self) -> None:
        raise NotImplementedError

    def _stopping(self) -> bool:
        raise NotImplementedError

    def _counts(self) -> tuple[int, int]:
        """(processed, failed) so far, for the summary."""
        raise NotImplementedError

    def _summary_state(self) -> str:
        raise NotImplementedError

    def prune(self) -> None:
        """Prune dead workers under Ruby's lock (released when done), then send orphaned
        in-flight lists back to their queues. When another pruner holds the lock, try again
        in about a second, else after a jittered fraction of the heartbeat interval, so live
        workers keep pruning and a restarted worker finds its dead predecessor at once."""
        config = self.config
        self._next_prune = time.monotonic() + random.uniform(1.0, 2.0)  # if this one fails
        pruned = pruning.try_prune(
            self.redis, self.keys, self.failures, self.pruner_id, config.queues,
            heartbeat_interval=config.heartbeat_interval, prune_interval=config.prune_interval,
        )  # fmt: skip
        if pruned is None:
            self._next_prune = time.monotonic() + random.uniform(0.5, 1.5)
            return
        moved = pruning.requeue_orphans(self.redis, self.keys, self.failures)
        if moved:
            log.warning("requeued the in-flight jobs of %d worker(s) no longer registered", moved)
        self._next_prune = time.monotonic() + config.heartbeat_interval * random.uniform(0.5, 1.0)

    def restart_summary(self) -> None:
        self._summary_at = time.monotonic()
        self._summary_counts = (0, 0)

    def _summary(self) -> None:
        """Every ``summary_interval`` s, one INFO line: what was done since the last one."""
        every = self.config.summary_interval
        now = time.monotonic()
        if not every or now - self._summary_at < every:
            return
        done, failed = self._counts()
        last_done, last_failed = self._summary_counts
        rate = (done - last_done) / (now - self._summary_at)
        log.info(
            "summary: processed %d (+%d), failed %d (+%d), %.1f jobs/s over %.0f s; %s",
            done, done - last_done, failed, failed - last_failed, rate, now - self._summary_at, self._summary_state(),
        )  # fmt: skip
        self._summary_at, self._summary_counts = now, (done, failed)

    def _loop(self) -> None:
        interval = self.config.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not self._stop.wait(min(0.5, max(0.0, min(next_beat, self._next_prune) - time.monotonic()))):
            try:
                self._read_controls()
                if time.monotonic() >= next_beat:
                    self.beat()
                    next_beat = time.monotonic() + interval
                else:
                    self._publish_changed()  # a pause, resume or stop shows within half a second
                if time.monotonic() >= self._next_prune and not self._stopping():
                    self.prune()
                self._summary()
                self._history.tick()
            except redis.RedisError as exc:
                log.debug("heartbeat: %s", redact(str(exc)))
            except Exception:
                log.exception("heartbeat thread error")


class Heartbeat(HeartbeatLoop):
    """One worker's heartbeat thread; its state record is read by a concurrency process's
    ``SlotsHeartbeat`` too (a slot is a worker)."""

    def __init__(
        self,
        config: WorkerConfig,
        resque: Resque,
        store: WorkerStore,
        failures: Failures,
        worker_id: str,
        *,
        state: RunState,
        registry: JobRegistry,
        control: Control,
        busy: Callable[[], bool],
        counts: Callable[[], tuple[int, int]],
        supervisor: int | None,
    ) -> None:
        super().__init__(config, resque, failures, worker_id)
        self.store = store
        self.id = worker_id
        self.state = state
        self.registry = registry
        self.control = control
        self.busy = busy
        self.counts = counts
        self.supervisor = supervisor
        self.published = b""

    def beat(self) -> None:
        self.store.beat([self.id])
        self._publish_state()

    def state_record(self) -> bytes:
        state = self.state
        return WorkerState(
            paused=state.any_pause, stopping=state.stop, classes=list(self.registry), supervisor=self.supervisor
        ).encode()

    def _publish_state(self) -> None:
        """``compat:state:<id>``: paused/stopping (which Resque's keys cannot say) and our job
        classes, for ``workers``, the dashboard and ``doctor``; it expires if we die."""
        record = self.state_record()
        self.store.publish_states({self.id: record}, self.config.prune_interval + self.config.heartbeat_interval)
        self.published = record

    def _read_controls(self) -> None:
        if self.busy():
            [command] = self.store.next_controls([self.id])
            if command is not None:
                self.control.apply(command)

    def _publish_changed(self) -> None:
        if self.state_record() != self.published:
            self._publish_state()

    def _stopping(self) -> bool:
        return self.state.stop

    def _counts(self) -> tuple[int, int]:
        return self.counts()

    def _summary_state(self) -> str:
        return "paused" if self.state.any_pause else "busy" if self.busy() else "idle"


class SlotsHeartbeat(HeartbeatLoop):
    """A concurrency process's one heartbeat thread for all its slots: one round trip a beat
    (every registered slot's heartbeat in one HSET, the changed state records in one
    pipeline), the busy slots' control lists in one more; prunes as the first slot."""

    def __init__(
        self,
        config: WorkerConfig,
        resque: Resque,
        store: WorkerStore,
        failures: Failures,
        slots: Sequence[Slot],
        *,
        beat_lock: threading.Lock,
        stopping: Callable[[], bool],
    ) -> None:
        super().__init__(config, resque, failures, slots[0].id)
        self.store = store
        self.slots = slots
        self.beat_lock = beat_lock  # a slot unregistering holds it: no heartbeat for it after that
        self.stopping = stopping

    def beat(self) -> None:
        """Every registered slot's heartbeat (before the thread starts: every slot's) and state."""
        now = self.store.server_time()
        with self.beat_lock:
            slots = [slot for slot in self.slots if slot._registered or not self.running]
            self.store.beat([slot.id for slot in slots], now=now)
            self._publish_states(slots, force=True)

    def _publish_states(self, slots: list[Slot], *, force: bool = False) -> None:
        changed: dict[Slot, bytes] = {}
        for slot in slots:
            record = slot.heartbeat.state_record()
            if force or record != slot.heartbeat.published:
                changed[slot] = record
        self.store.publish_states(
            {slot.id: record for slot, record in changed.items()},
            self.config.prune_interval + self.config.heartbeat_interval,
        )
        for slot, record in changed.items():
            slot.heartbeat.published = record

    def _publish_changed(self) -> None:
        with self.beat_lock:
            self._publish_states([slot for slot in self.slots if slot._registered])

    def _read_controls(self) -> None:
        """Busy slots' control lists, in one round trip (an idle slot's cycle call reads its own)."""
        busy = [slot for slot in self.slots if slot.busy]
        if not busy:
            return
        for slot, word in zip(busy, self.store.next_controls([slot.id for slot in busy]), strict=True):
            if word is not None:
                slot.control.apply(word)

    def _stopping(self) -> bool:
        return self.stopping()

    def _counts(self) -> tuple[int, int]:
        return sum(slot.jobs_done for slot in self.slots), sum(slot.jobs_failed for slot in self.slots)

    def _summary_state(self) -> str:
        return f"{sum(slot.busy for slot in self.slots)} of {len(self.slots)} slots busy"
