"""The worker's heartbeat thread: Resque's heartbeat, our published state, pruning dead
workers, the periodic summary line, the history sample, and, while a job runs, the control
list (between jobs the cycle call reads it). It writes Redis and its own schedule only; a
control command it reads is applied through ``Control`` (see ``run_state`` for who writes what)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

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

log = logging.getLogger("resque_compat.worker")


class Heartbeat:
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
        self.config = config
        self.redis = resque.redis
        self.keys = resque.keys
        self.store = store
        self.failures = failures
        self.id = worker_id
        self.state = state
        self.registry = registry
        self.control = control
        self.busy = busy
        self.counts = counts  # (processed, failed) so far, for the summary
        self.supervisor = supervisor
        self._history = Sampler(self.redis, self.keys)  # ticked here, never by a job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = time.monotonic()
        self.published = b""
        self._summary_at = time.monotonic()
        self._summary_counts = (0, 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="resque-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

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

    def prune(self) -> None:
        """Prune dead workers under Ruby's lock (released when done), then send orphaned
        in-flight lists back to their queues. When another pruner holds the lock, try again
        in about a second, else after a jittered fraction of the heartbeat interval, so live
        workers keep pruning and a restarted worker finds its dead predecessor at once."""
        config = self.config
        self._next_prune = time.monotonic() + random.uniform(1.0, 2.0)  # if this one fails
        pruned = pruning.try_prune(
            self.redis, self.keys, self.failures, self.id, config.queues,
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
        done, failed = self.counts()
        last_done, last_failed = self._summary_counts
        rate = (done - last_done) / (now - self._summary_at)
        state = "paused" if self.state.any_pause else "busy" if self.busy() else "idle"
        log.info(
            "summary: processed %d (+%d), failed %d (+%d), %.1f jobs/s over %.0f s; %s",
            done, done - last_done, failed, failed - last_failed, rate, now - self._summary_at, state,
        )  # fmt: skip
        self._summary_at, self._summary_counts = now, (done, failed)

    def _loop(self) -> None:
        """Heartbeat every HEARTBEAT_INTERVAL s, prune dead workers now and then (``prune``);
        while a job runs, also read the control list; once a minute, maybe record the history."""
        interval = self.config.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not self._stop.wait(min(0.5, max(0.0, min(next_beat, self._next_prune) - time.monotonic()))):
            try:
                if self.busy():
                    [command] = self.store.next_controls([self.id])
                    if command is not None:
                        self.control.apply(command)
                if time.monotonic() >= next_beat:
                    self.beat()
                    next_beat = time.monotonic() + interval
                elif self.state_record() != self.published:
                    self._publish_state()  # a pause, resume or stop shows within half a second
                if time.monotonic() >= self._next_prune and not self.state.stop:
                    self.prune()
                self._summary()
                self._history.tick()
            except redis.RedisError as exc:
                log.debug("heartbeat: %s", redact(str(exc)))
            except Exception:
                log.exception("heartbeat thread error")
