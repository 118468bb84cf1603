"""``work --concurrency N``: up to N jobs at once in one process.

Each slot is a Resque worker to every peer: id ``host:pid:queues:slot-K`` (K = 1..N, see
``protocol.naming.WorkerId``), its own ``worker:<id>`` record, ``started``, heartbeat, per-worker
stats, in-flight list, control list and cycle script call, so reserving and recording stay one
atomic step per slot. The pid is the process's own: Ruby's and php-resque's same-host pruning
finds a live resque process and keeps every slot; once the process is gone, they and ours prune
each slot as a dead worker (its job failed as DirtyExit or, ours in ``--reliable`` mode, requeued).

Where jobs run: every slot has a thread that makes its cycle calls and runs its jobs' hooks. A
perform that is ``async def`` (or returns an awaitable) runs on the process's one asyncio event
loop while the slot's thread waits for it; any other perform runs on the slot's thread (a pool of
N threads). A job class (or function) with ``executor = "thread"`` runs even an async perform on
its slot's thread, on a loop of its own (async code that blocks its loop).

Signals act on every slot as on one worker (see ``worker.py``): QUIT: each slot finishes its
job, then the process exits; TERM/INT: every job is interrupted, recorded as failed
(``--reliable``: back at the head of its queue) and the process exits; a second TERM/INT leaves
at once, the jobs in hand to a pruner; USR1 interrupts every job; USR2/CONT pause and resume
every slot; ``GRACEFUL_TERM``: TERM acts as QUIT; ``TERM_CHILD`` with
``RESQUE_PRE_SHUTDOWN_TIMEOUT``: the jobs get that long to end before they are interrupted. A
control command (pause, resume, stop, kill-job) sent to one slot's id acts on that slot; a
stopped slot unregisters, and the process exits when every slot has.

Interrupting a job (kill-job, USR1, TERM, ``--timeout``) raises ``Resque::TermException`` or
``Resque::JobTimeout`` in it, and the job is recorded with it as any failure. An async job's
task is cancelled (``CancelledError`` at its ``await``; one that swallows the cancellation goes
on unattended on the loop while its slot moves on). A thread cannot be killed in Python: the
exception is raised in the job's thread (``PyThreadState_SetAsyncExc``) and takes effect at its
next Python instruction, so a job blocked in one C call (``time.sleep``, a socket read without
a timeout) holds its slot until that call returns, then fails with it. ``TERM_CHILD``'s KILL
has no thread equivalent; a second TERM ends the process whatever its threads do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import fcntl
import logging
import math
import os
import random
import select
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import redis

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.failures import Failures
from resque_compat.history import Sampler
from resque_compat.protocol import slot_id, worker_id
from resque_compat.registry import JobRegistry, default_registry
from resque_compat.store.workers import WorkerStore
from resque_compat.worker import procline, pruning
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.executor import Executor
from resque_compat.worker.fetcher import Unit
from resque_compat.worker.hooks import WorkerHooks, worker_hooks
from resque_compat.worker.job_end import InHand
from resque_compat.worker.runner import Job, JobTimeoutError, Outcome, TermException, as_coroutine, run_awaitable
from resque_compat.worker.signals import ExitNow, signal_name
from resque_compat.worker.worker import Worker

if TYPE_CHECKING:
    from resque_compat.metrics import WorkerMetrics

log = logging.getLogger("resque_compat.worker")

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


def interruption(base: type[TermException | JobTimeoutError], message: str) -> type[BaseException]:
    """An exception class raising ``base`` with ``message``: what is raised in another thread
    must be a class, instantiated there without arguments."""

    def init(self: BaseException) -> None:
        base.__init__(self, message)

    return type(base.__name__, (base,), {"__init__": init, "__module__": base.__module__})


def _make_room(client: redis.Redis, slots: int) -> None:
    """Every slot holds a connection for its cycle calls (and, blocking, one for its BLMOVE),
    more than redis-py's default pool of 100 allows for 100 slots: the pool grows to fit."""
    pool = client.connection_pool
    need = 2 * slots + 10
    limit = getattr(pool, "max_connections", None)
    if isinstance(limit, int) and limit < need and not isinstance(pool, redis.BlockingConnectionPool):
        log.debug("connection pool: %d connections at most, not %d, for %d slots", need, limit, slots)
        pool.max_connections = need


class Slot(Worker):
    """One slot: a worker of its own to every peer, run by a thread of the process's."""

    def __init__(self, process: ConcurrentWorker, number: int) -> None:
        super().__init__(
            process.config, process.resque, registry=process.registry, hooks=process.hooks,
            metrics=process.metrics, name=slot_id(process.id, number),
        )  # fmt: skip
        self.process = process
        self.number = number
        self.thread = threading.Thread(target=self.run, name=f"resque-slot-{number}", daemon=True)
        self.done = threading.Event()
        #: when the job in hand passes ``--timeout`` (monotonic; inf: no job or no timeout)
        self.deadline = math.inf
        # between the slot's thread and whoever interrupts its job; reentrant: a signal handler
        # may interrupt every slot while the main thread is inside ``interrupt`` for a timeout
        self._lock = threading.RLock()
        self._in_job = False
        self._interrupt: type[BaseException] | None = None
        self._raised = False  # the interruption went to the thread (not to an async job's task)
        self._future: concurrent.futures.Future[Any] | None = None

    @property
    def busy(self) -> bool:
        return self._in_job

    def _executor(self) -> Executor:
        return _SlotExecutor(self)

    def _kill_job(self) -> None:
        """Control ``kill-job`` sent to this slot's id: this slot's job, not every slot's."""
        log.info("control command for %s: kill-job", self.id)
        self.interrupt(TermException, "kill-job")

    def run(self) -> None:
        """The slot's thread: Worker's loop, then unregister (unless leaving at once)."""
        procline.silence_thread()
        try:
            self._loop()
        except BaseException as exc:  # a slot that cannot go on stops the process
            log.exception("slot %s stopped on an error", self.id)
            self.process.failed(exc)
        finally:
            if self._registered and not self.state.exit_now:
                self.unregister()
            self.wakeup.close()
            self.done.set()
            self.process.wake()

    def unregister(self) -> None:
        try:
            with self.process.beat_lock:  # no heartbeat written for it after this
                self.retry(
                    lambda: pruning.unregister(self.redis, self.keys, self.failures, self.id),
                    "unregister",
                    give_up=0.5 if self.state.stop_now else 5.0,
                )
                self._registered = False
        except redis.RedisError as exc:
            log.warning("could not unregister %s (%s): a pruner will take it and any job it held", self.id, exc)

    def stop(self, *, now: bool = False, why: str = "") -> None:
        self.state.stop = True
        if now:
            self.state.stop_now = True
            self.interrupt(TermException, why)
        self.wakeup.wake()

    # -- the job --------------------------------------------------------------------------
    def run_job(self, job: Job) -> Outcome:
        own_loop = getattr(job.definition.target, "executor", None) == "thread"
        self.runner.awaiter = run_awaitable if own_loop else self._await
        timeout = self.config.timeout
        with self._lock:
            self._in_job = True
            self._interrupt, self._raised = None, False
            self.deadline = time.monotonic() + timeout if timeout else math.inf
        if timeout:
            self.process.wake()  # the supervisor's next deadline (its title follows within a second)
        try:
            try:
                return self.runner.run(job)  # --timeout is the supervisor's, not SIGALRM's
            finally:
                self._leave_job()
        except (TermException, JobTimeoutError) as exc:  # raised after the job's own handler
            self._leave_job()
            return self.runner.failed(job.queue, job.item, exc)

    def _leave_job(self) -> None:
        with self._lock:
            self._in_job = False
            self.deadline = math.inf
            self._clear_raised()

    def _clear_raised(self) -> None:
        """Withdraw an interruption sent to this thread and not delivered yet (under the lock)."""
        if self._raised and self.thread.ident is not None:
            _set_async_exc(ctypes.c_ulong(self.thread.ident), None)
            self._raised = False

    def _await(self, awaitable: Awaitable[Any]) -> Any:
        """An async perform: on the process's loop (in this thread's context, so the job sees
        its ``current_call``), this thread waiting; an interruption cancels its task."""
        coroutine = as_coroutine(awaitable)
        with self._lock:  # no interruption is sent while the task starts and is noted
            if self._interrupt is not None:  # one already sent to this thread: raise it here
                self._clear_raised()
                coroutine.close()
                raise self._interrupt()
            future = self._future = asyncio.run_coroutine_threadsafe(coroutine, self.process.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise (self._interrupt or interruption(TermException, "cancelled"))() from None
        finally:
            with self._lock:
                self._future = None

    def interrupt(self, base: type[TermException | JobTimeoutError], message: str) -> bool:
        """Raise ``base(message)`` in the job in hand, if any (see the module docstring)."""
        with self._lock:
            if not self._in_job or self._interrupt is not None or self.thread.ident is None:
                return False
            self._interrupt = interruption(base, message)
            if self._future is not None:
                self._future.cancel()
            else:
                _set_async_exc(ctypes.c_ulong(self.thread.ident), ctypes.py_object(self._interrupt))
                self._raised = True
        log.warning("%s: interrupting the job of %s", message, self.id)
        return True


class _SlotExecutor:
    """A slot's jobs run on its thread (async performs on the process's event loop); the
    process's main thread handles signals and interrupts them (``Slot.interrupt``)."""

    def __init__(self, slot: Slot) -> None:
        self.slot = slot

    @property
    def busy(self) -> bool:
        return self.slot.busy

    def run(self, hand: InHand, unit: Unit) -> Outcome:
        return self.slot.run_job(hand.job)

    def kill(self, name: str) -> None:
        return  # the process's handlers interrupt each slot

    def kill_now(self) -> None:
        return

    def between_jobs(self, *, end_batch: bool) -> None:
        return

    def close(self, wait: float) -> None:
        return


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
        self._beat_stop = threading.Event()
        self._beat_thread = threading.Thread(target=self._beat_loop, name="resque-heartbeat", daemon=True)
        self._history = Sampler(self.redis, self.keys)
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._saved_signals: dict[signal.Signals, Any] = {}
        self._stop = self._stop_now = self._exit_now = self._paused = False
        self._shutting_down = False
        self._error: BaseException | None = None
        self._term_at, self._term_name = math.inf, ""  # TERM_CHILD: when to interrupt the jobs
        self._next_prune = time.monotonic()
        self._title = ""
        self._started_at = self._summary_at = time.monotonic()
        self._summary_counts = (0, 0)

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
        self._install_signals()
        self._loop_thread.start()
        first = self.slots[0]
        for slot in self.slots:
            slot.fetcher.load()
        ids = [slot.id for slot in self.slots]
        first.retry(lambda: self.store.clear_heartbeats(ids), "clear the heartbeats")
        first.retry(self._beat, "write the heartbeats")
        first.retry(self._prune, "prune dead workers")
        self.hooks.run("before_first_fork", self)
        first.retry(self._register, "register")
        for slot in self.slots:
            slot.fetcher.resolve_queues()
        self._beat_thread.start()
        for slot in self.slots:
            slot.thread.start()
        log.info(
            "worker %s started: %d slots (%s .. %s); queues %s; %s%s; %d job class(es) registered",
            self.id, len(self.slots), ids[0], ids[-1], ",".join(self.config.queues),
            "blocking" if self.config.blocking else f"polling every {self.config.interval:g} s",
            "; reliable" if self.config.reliable else "", len(self.registry),
        )  # fmt: skip
        self._started_at = self._summary_at = time.monotonic()

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
            ready, _, _ = select.select([self._wake_r], [], [], wait)
            if ready:
                self._drain()

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
        self._beat_stop.set()
        if self._beat_thread.is_alive():
            self._beat_thread.join(timeout=0.5 if self._stop_now else 5.0)
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
        self._restore_signals()
        if self._loop_thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(timeout=1.0)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        log.info(
            "worker %s exited: processed %d, failed %d in %.1f s",
            self.id, self.jobs_done, self.jobs_failed, time.monotonic() - self._started_at,
        )  # fmt: skip

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    # -- signals ------------------------------------------------------------------------
    def _install_signals(self) -> None:
        handlers: dict[signal.Signals, Callable[[int, FrameType | None], None]] = {
            signal.SIGQUIT: self._on_quit,
            signal.SIGTERM: self._on_term,
            signal.SIGINT: self._on_term,
            signal.SIGUSR1: self._on_usr1,
            signal.SIGUSR2: self._on_usr2,
            signal.SIGCONT: self._on_cont,
        }
        for sig, handler in handlers.items():
            self._saved_signals[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, previous in self._saved_signals.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._saved_signals.clear()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    def _stop_all(self, *, now: bool = False, why: str = "") -> None:
        self._stop = True
        self._stop_now = self._stop_now or now
        for slot in self.slots:
            slot.stop(now=now, why=why)
        self.wake()

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
            self.wake()
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
        if not self._paused:
            log.info("USR2: paused")
            self.hooks.run_logged("before_pause", self)
        self._paused = True
        for slot in self.slots:
            slot.state.paused = True
            slot.wakeup.wake()
        self.wake()

    def _on_cont(self, signum: int, frame: FrameType | None) -> None:
        if self._paused:
            log.info("CONT: resumed")
            self.hooks.run_logged("after_pause", self)
        self._paused = False
        for slot in self.slots:
            slot.state.paused = False
            slot.wakeup.wake()
        self.wake()

    # -- heartbeat, control, pruning -------------------------------------------------------
    def _beat(self) -> None:
        """Every registered slot's heartbeat in one HSET, and its state record."""
        now = self.store.server_time()
        with self.beat_lock:
            slots = [slot for slot in self.slots if slot._registered or not self._beat_thread.is_alive()]
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

    def _read_control(self) -> None:
        """Busy slots' control lists, in one round trip (an idle slot's cycle call reads its own)."""
        busy = [slot for slot in self.slots if slot.busy]
        if not busy:
            return
        for slot, word in zip(busy, self.store.next_controls([slot.id for slot in busy]), strict=True):
            if word is not None:
                slot.control.apply(word)

    def _prune(self) -> None:
        """As a worker's ``_prune``, as the first slot (every slot of this live process is kept)."""
        config = self.config
        self._next_prune = time.monotonic() + random.uniform(1.0, 2.0)
        pruned = pruning.try_prune(
            self.redis, self.keys, self.failures, self.slots[0].id, config.queues,
            heartbeat_interval=config.heartbeat_interval, prune_interval=config.prune_interval,
        )  # fmt: skip
        if pruned is None:
            self._next_prune = time.monotonic() + random.uniform(0.5, 1.5)
            return
        moved = pruning.requeue_orphans(self.redis, self.keys, self.failures)
        if moved:
            log.warning("requeued the in-flight jobs of %d worker(s) no longer registered", moved)
        self._next_prune = time.monotonic() + config.heartbeat_interval * random.uniform(0.5, 1.0)

    def _summary(self) -> None:
        every = self.config.summary_interval
        now = time.monotonic()
        if not every or now - self._summary_at < every:
            return
        done, failed = self.jobs_done, self.jobs_failed
        last_done, last_failed = self._summary_counts
        busy = sum(slot.busy for slot in self.slots)
        log.info(
            "summary: processed %d (+%d), failed %d (+%d), %.1f jobs/s over %.0f s; %d of %d slots busy",
            done, done - last_done, failed, failed - last_failed, (done - last_done) / (now - self._summary_at),
            now - self._summary_at, busy, len(self.slots),
        )  # fmt: skip
        self._summary_at, self._summary_counts = now, (done, failed)

    def _beat_loop(self) -> None:
        interval = self.config.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not self._beat_stop.wait(min(0.5, max(0.0, min(next_beat, self._next_prune) - time.monotonic()))):
            try:
                self._read_control()
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + interval
                else:
                    with self.beat_lock:
                        self._publish_states([slot for slot in self.slots if slot._registered])
                if time.monotonic() >= self._next_prune and not self._stop:
                    self._prune()
                self._summary()
                self._history.tick()
            except redis.RedisError as exc:
                log.debug("heartbeat: %s", redact(str(exc)))
            except Exception:
                log.exception("heartbeat thread error")
