"""``work --concurrency N``: up to N jobs at once in one process.

Each slot is a Resque worker to every peer: id ``host:pid:queues:slot-K`` (K = 1..N, see
``protocol.naming.WorkerId``), its own ``worker:<id>`` record, ``started``, heartbeat, per-worker
stats, in-flight list, control list and cycle script call, so reserving and recording stay one
atomic step per slot. The pid is the process's own: Ruby's and php-resque's same-host pruning
finds a live resque process and keeps every slot; once the process is gone, they and ours prune
each slot as a dead worker (its job failed as DirtyExit or, ours in ``--reliable`` mode, requeued).
One slot, where its jobs run and how a job is interrupted: ``worker/slot.py``.

Signals act on every slot as on one worker (see ``worker.py``): QUIT: each slot finishes its
job, then the process exits; TERM/INT: every job is interrupted, recorded as failed
(``--reliable``: back at the head of its queue) and the process exits; a second TERM/INT leaves
at once, the jobs in hand to a pruner; USR1 interrupts every job; USR2/CONT pause and resume
every slot; ``GRACEFUL_TERM``: TERM acts as QUIT; ``TERM_CHILD`` with
``RESQUE_PRE_SHUTDOWN_TIMEOUT``: the jobs get that long to end before they are interrupted. A
control command (pause, resume, stop, kill-job) sent to one slot's id acts on that slot; a
stopped slot unregisters, and the process exits when every slot has.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import redis

from resque_compat.client import Resque
from resque_compat.failures import Failures
from resque_compat.protocol import worker_id
from resque_compat.registry import JobRegistry, default_registry
from resque_compat.store.workers import WorkerStore
from resque_compat.worker import procline
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.heartbeat import SlotsHeartbeat
from resque_compat.worker.hooks import WorkerHooks, worker_hooks
from resque_compat.worker.runner import JobTimeoutError, TermException
from resque_compat.worker.signals import ExitNow, Traps, signal_name
from resque_compat.worker.slot import Slot
from resque_compat.worker.wakeup import Wakeup

if TYPE_CHECKING:
    from resque_compat.metrics import WorkerMetrics

log = logging.getLogger("resque_compat.worker")


def _make_room(client: redis.Redis, slots: int) -> None:
    """Every slot holds a connection for its cycle calls (and, blocking, one for its BLMOVE),
    more than redis-py's default pool of 100 allows for 100 slots: the pool grows to fit."""
    pool = client.connection_pool
    need = 2 * slots + 10
    limit = getattr(pool, "max_connections", None)
    if isinstance(limit, int) and limit < need and not isinstance(pool, redis.BlockingConnectionPool):
        log.debug("connection pool: %d connections at most, not %d, for %d slots", need, limit, slots)
        pool.max_connections = need


class ConcurrentWorker:
    """One process, N slots. ``work()`` runs it until every slot has stopped; returns an exit code.

    The main thread handles signals and timeouts; one thread writes every slot's heartbeat,
    reads the control lists of busy slots and prunes; one runs the asyncio event loop."""

    def __init__(
        self,
        config: WorkerConfig,
        resque: Resque,
        *,
        registry: JobRegistry = default_registry,
        hooks: WorkerHooks = worker_hooks,
        host: str | None = None,
        watch_parent: bool = False,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.config = config
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.registry = registry
        self.hooks = hooks
        self.metrics = metrics
        self.pid = os.getpid()
        #: the process's own name (``host:pid:queues``); never registered, its slots are
        self.id = worker_id(config.queues, self.pid, host)
        self.failures = Failures(self.redis, self.keys, config.failure_backend)
        self.store = WorkerStore(self.redis, self.keys)
        _make_room(self.redis, config.concurrency)
        self.loop = asyncio.new_event_loop()
        self.slots = [Slot(self, n) for n in range(1, config.concurrency + 1)]
        self.beat_lock = threading.Lock()
        self._parent = os.getppid() if watch_parent else None
        self._loop_thread = threading.Thread(target=self._run_loop, name="resque-asyncio", daemon=True)
        self.heartbeat = SlotsHeartbeat(
            config, resque, self.store, self.failures, self.slots, beat_lock=self.beat_lock, stopping=lambda: self._stop
        )
        self.wakeup = Wakeup()
        self._traps = Traps(self._on_quit, self._on_term, self._on_usr1, self._on_usr2, self._on_cont)
        self._stop = self._stop_now = self._exit_now = self._paused = False
        self._shutting_down = False
        self._error: BaseException | None = None
        self._term_at, self._term_name = math.inf, ""  # TERM_CHILD: when to interrupt the jobs
        self._title = ""
        self._started_at = time.monotonic()

    @property
    def jobs_done(self) -> int:
        return sum(slot.jobs_done for slot in self.slots)

    @property
    def jobs_failed(self) -> int:
        return sum(slot.jobs_failed for slot in self.slots)

    # -- life cycle ---------------------------------------------------------------------
    def work(self) -> int:
        try:
            self.startup()
            self._supervise()
        except ExitNow:
            return 0
        finally:
            self.shutdown()
        return 1 if self._error is not None else 0

    def startup(self) -> None:
        """Ruby's order for every slot at once: heartbeat, prune, before_first_fork, register."""
        procline.configure(self.config.procline_prefix)
        procline.starting()
        self._traps.install()
        self._loop_thread.start()
        first = self.slots[0]
        for slot in self.slots:
            slot.fetcher.load()
        ids = [slot.id for slot in self.slots]
        first.retry(lambda: self.store.clear_heartbeats(ids), "clear the heartbeats")
        first.retry(self.heartbeat.beat, "write the heartbeats")
        first.retry(self.heartbeat.prune, "prune dead workers")
        self.hooks.run("before_first_fork", self)
        first.retry(self._register, "register")
        for slot in self.slots:
            slot.fetcher.resolve_queues()
        self.heartbeat.start()
        for slot in self.slots:
            slot.thread.start()
        log.info(
            "worker %s started: %d slots (%s .. %s); queues %s; %s%s; %d job class(es) registered",
            self.id, len(self.slots), ids[0], ids[-1], ",".join(self.config.queues),
            "blocking" if self.config.blocking else f"polling every {self.config.interval:g} s",
            "; reliable" if self.config.reliable else "", len(self.registry),
        )  # fmt: skip
        self._started_at = time.monotonic()
        self.heartbeat.restart_summary()

    def _register(self) -> None:
        self.store.register([slot.id for slot in self.slots])
        for slot in self.slots:
            slot._registered = True

    def _supervise(self) -> None:
        """Until every slot is done: per-job timeouts, the process title, the pool supervisor."""
        while True:
            alive = [slot for slot in self.slots if not slot.done.is_set()]
            if not alive:
                return
            if self._parent is not None and os.getppid() != self._parent and not self._stop:
                log.warning("pool supervisor is gone; stopping")
                self._stop_all()
            now = time.monotonic()
            if now >= self._term_at:  # TERM_CHILD's RESQUE_PRE_SHUTDOWN_TIMEOUT is over
                self._term_at = math.inf
                self._stop_all(now=True, why=self._term_name)
            for slot in alive:
                if slot.deadline <= now:
                    slot.interrupt(JobTimeoutError, f"Job exceeded the {self.config.timeout:g} s timeout")
            self._set_title(alive)
            next_deadline = min(self._term_at, *(slot.deadline for slot in alive))
            wait = min(1.0, max(0.0, next_deadline - now))
            self.wakeup.sleep(wait)

    def _set_title(self, alive: list[Slot]) -> None:
        busy = sum(slot.busy for slot in alive)
        if self._paused:
            title = "Paused"
        elif busy:
            title = f"Processing {busy} of {len(self.slots)} slots"
        else:
            title = "Waiting for " + ",".join(self.slots[0].fetcher.queues)
        if title != self._title:
            procline.set_title(title)
            self._title = title

    def failed(self, exc: BaseException) -> None:
        """A slot's thread stopped on an error: the whole process stops (exit code 1)."""
        if self._error is None:
            self._error = exc
        self._stop_all()

    def shutdown(self) -> None:
        """Every slot's thread is done (or we leave at once): stop the heartbeat and the loop,
        unregister what is still registered, run worker_exit hooks."""
        self._shutting_down = True
        self.heartbeat.stop(timeout=0.5 if self._stop_now else 5.0)
        left = [slot for slot in self.slots if slot._registered]
        if left and self._exit_now:
            log.warning(
                "exited at once: %d slot(s) stay registered until a pruner takes them and their jobs", len(left)
            )
        elif left:
            for slot in left:
                if not slot.thread.is_alive():
                    slot.state.stop = True
                    slot.unregister()
        self.hooks.run_logged("worker_exit", self)
        self._traps.restore()
        if self._loop_thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(timeout=1.0)
        self.wakeup.close()
        log.info(
            "worker %s exited: processed %d, failed %d in %.1f s",
            self.id, self.jobs_done, self.jobs_failed, time.monotonic() - self._started_at,
        )  # fmt: skip

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    # -- signals ------------------------------------------------------------------------
    def wake(self) -> None:
        """A slot's thread ended, or a job with a timeout began: the supervisor looks again."""
        self.wakeup.wake()

    def _stop_all(self, *, now: bool = False, why: str = "") -> None:
        self._stop = True
        self._stop_now = self._stop_now or now
        for slot in self.slots:
            slot.stop(now=now, why=why)
        self.wakeup.wake()

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        log.warning("QUIT: exiting after the current jobs")
        self._stop_all()

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        name = signal_name(signum)
        if signum == signal.SIGTERM and self.config.graceful_term and not self._stop_now:
            log.warning("%s (GRACEFUL_TERM): exiting after the current jobs", name)
            self._stop_all()
            return
        if self._stop_now or self._term_at < math.inf:  # the second INT/TERM: out at once, the jobs to the pruner
            log.warning("second %s: exiting now", name)
            self._exit_now = True
            for slot in self.slots:
                slot.state.exit_now = True
            self.wakeup.wake()
            if not self._shutting_down:
                raise ExitNow(name)
            return
        if self.config.term_child and self.config.pre_shutdown_timeout > 0:
            wait = self.config.pre_shutdown_timeout
            log.warning("%s (TERM_CHILD): the current jobs have %g s to end, then are interrupted", name, wait)
            self._term_at, self._term_name = time.monotonic() + wait, name
            self._stop_all()
            return
        log.warning("%s: interrupting the current jobs and exiting", name)
        self._stop_all(now=True, why=name)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        log.warning("USR1: interrupting the current jobs")
        for slot in self.slots:
            slot.interrupt(TermException, "SIGUSR1")

    def _on_usr2(self, signum: int, frame: FrameType | None) -> None:
        self._pause(True)

    def _on_cont(self, signum: int, frame: FrameType | None) -> None:
        self._pause(False)

    def _pause(self, paused: bool) -> None:
        """USR2 (``paused``) / CONT: every slot; the hook runs once, on a change."""
        if paused != self._paused:
            log.info("USR2: paused" if paused else "CONT: resumed")
            self.hooks.run_logged("before_pause" if paused else "after_pause", self)
        self._paused = paused
        for slot in self.slots:
            slot.state.paused = paused
            slot.wakeup.wake()
        self.wakeup.wake()
