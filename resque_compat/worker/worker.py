"""The worker: Resque's life cycle (startup, register, heartbeat, prune, loop, unregister) with
one Redis round trip per job, fork per job (or per batch, ``--jobs-per-fork``) or in-process,
signals, and reconnects.

Signals, as Ruby Resque: QUIT finishes the job then exits; TERM/INT kill the job now (fork:
SIGKILL to the child; no fork: ``Resque::TermException`` raised in the job), record it as
failed (reliable mode: back at the head of its queue) and exit; USR1 kills the job and keeps
working; USR2 pauses; CONT resumes. ``TERM_CHILD``: TERM to the child first (a TermException
in the job), KILL after ``RESQUE_TERM_TIMEOUT``; ``GRACEFUL_TERM``: TERM acts as QUIT. A second
TERM/INT leaves at once, the job in hand to the pruner; so does a stop with Redis unreachable.
The control list (``resque-compat`` CLI, any host) sends pause / resume / stop / kill-job.

Counting: ``stat:processed`` counts every reserved job; ``stat:failed`` every failure record
this worker writes, dirty exits included (Ruby does not count those it records in the parent).

Guarantees. A reserved job always ends in one of: finished (counted), a failure record with its
full payload (retryable), or, in ``--reliable`` mode, back at the head of its queue. Reserving
and recording the reservation are one atomic script, so dying in between loses nothing; a
connection cut is recovered without losing or double-counting a job (see ``cycle``). Reliable
mode is at-least-once: a job whose worker died mid-run runs again. Blocking mode BLMOVEs into
the worker's in-flight list, and the next call records the item from there, so neither a kill
nor a lost reply between the pop and the record loses it. A forked child that finished its
job waits until the worker has recorded it; if the worker dies first, the child records it.
With ``--jobs-per-fork`` the worker still reserves and records every job, so these hold per
job; a killed job ends its child's batch. Limit: a control command whose cycle reply is lost
is dropped.

Where each part lives: ``fetcher`` (the cycle call, blocking pop, adoption: units of work),
``processor`` (one job), ``executor`` / ``forking`` / ``fork_child`` (how a job runs),
``heartbeat``, ``signals`` and ``control`` (which write ``run_state``), ``job_end``.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

import redis

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.failures import Failures
from resque_compat.jobs.progress import ResqueStatuses
from resque_compat.jobs.retrying import WorkerRetries
from resque_compat.protocol import worker_id
from resque_compat.registry import JobRegistry, default_registry
from resque_compat.store.workers import WorkerStore
from resque_compat.worker import procline, pruning
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.control import Control
from resque_compat.worker.cycle import Kind
from resque_compat.worker.executor import Executor, InProcess
from resque_compat.worker.fetcher import Fetcher, Unit
from resque_compat.worker.forking import Forking
from resque_compat.worker.heartbeat import Heartbeat
from resque_compat.worker.hooks import WorkerHooks, worker_hooks
from resque_compat.worker.processor import Processor
from resque_compat.worker.redis_retry import Retrier
from resque_compat.worker.run_state import RunState
from resque_compat.worker.runner import JobRunner
from resque_compat.worker.signals import ExitNow, SignalHandlers
from resque_compat.worker.wakeup import Wakeup

if TYPE_CHECKING:  # the metrics extra is optional
    from resque_compat.metrics import WorkerMetrics

log = logging.getLogger("resque_compat.worker")


class Worker:
    """One Resque worker process. ``work()`` runs it until told to stop; returns an exit code.

    The parts, each in its own module: ``fetcher`` (reservations and the record of each end),
    ``processor`` (one job), the executor (``executor.InProcess`` or ``forking.Forking``),
    ``heartbeat`` (its thread), ``signals`` and ``control`` (which write ``run_state``)."""

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
        name: str | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.failures = Failures(self.redis, self.keys, config.failure_backend)
        self.store = WorkerStore(self.redis, self.keys)
        self.registry = registry
        self.hooks = hooks
        self.pid = os.getpid()
        self.id = name or worker_id(config.queues, self.pid, host)
        self.runner = JobRunner(registry, self.id)
        self.runner.statuses = ResqueStatuses(self.redis, self.keys)
        self.retries = WorkerRetries(self.redis, self.keys, self.id, config.failure_backend, config.reliable)
        self._parent = os.getppid() if watch_parent else None
        self.state = RunState()
        self.wakeup = Wakeup()
        self.retry = Retrier(self.state, self.wakeup)
        self.fetcher = Fetcher(
            config, resque, self.id, state=self.state, wakeup=self.wakeup, retry=self.retry,
            on_reconnect=self._reregister,
        )  # fmt: skip
        self.executor = self._executor()
        self.processor = Processor(
            store=self.store,
            keys=self.keys,
            worker_id=self.id,
            reliable=config.reliable,
            registry=registry,
            runner=self.runner,
            retries=self.retries,
            executor=self.executor,
            state=self.state,
            retry=self.retry,
            metrics=metrics,
        )
        self.control = Control(self.state, self.wakeup, self._kill_job, self._run_hook)
        self.signals = SignalHandlers(config, self.state, self.wakeup, self.executor, self._run_hook)
        self.heartbeat = Heartbeat(
            config,
            resque,
            self.store,
            self.failures,
            self.id,
            state=self.state,
            registry=registry,
            control=self.control,
            busy=lambda: self.executor.busy,
            counts=lambda: (self.jobs_done, self.jobs_failed),
            supervisor=self._parent,
        )
        self._registered = False
        self._started_at = time.monotonic()

    @property
    def jobs_done(self) -> int:
        return self.fetcher.jobs_done

    @property
    def jobs_failed(self) -> int:
        return self.fetcher.jobs_failed

    def _run_hook(self, kind: str) -> None:
        self.hooks.run_logged(kind, self)

    def _executor(self) -> Executor:
        """How this worker runs jobs (a concurrency slot has its own)."""
        if not self.config.fork:
            return InProcess(self.runner, self.config.timeout)
        return Forking(
            self.config, runner=self.runner, registry=self.registry, hooks=self.hooks, fetcher=self.fetcher,
            retries=self.retries, wakeup=self.wakeup,
        )  # fmt: skip

    def _kill_job(self) -> None:
        """Control ``kill-job``: as USR1, so the kill happens in the main thread's handler."""
        if self.executor.busy:
            os.kill(os.getpid(), signal.SIGUSR1)

    # -- life cycle ---------------------------------------------------------------------
    def work(self) -> int:
        """Startup, the job loop, then unregister (always, even after an error)."""
        try:
            self.startup()
            self._loop()
            return 0
        except ExitNow:
            return 0
        except redis.RedisError as exc:
            if not self.state.stop:
                raise
            log.warning("Redis unreachable while stopping (%s); exiting anyway", redact(str(exc)))
            return 0
        finally:
            self.shutdown()

    def startup(self) -> None:
        """Ruby's order: procline, traps, heartbeat, prune, before_first_fork, register."""
        procline.configure(self.config.procline_prefix)
        procline.starting()
        self.signals.traps.install()
        self.fetcher.load()
        self.retry(lambda: self.store.clear_heartbeats([self.id]), "clear the heartbeat")
        self.retry(self.heartbeat.beat, "write the heartbeat")
        self.retry(self.heartbeat.prune, "prune dead workers")
        self.heartbeat.start()
        self.hooks.run("before_first_fork", self)
        self.retry(self._register, "register")
        if self.config.fork:
            gc.freeze()  # what exists now is shared with every child: no copy-on-write for it
        self.fetcher.resolve_queues()
        self._log_start()

    def _log_start(self) -> None:
        """The start line an operator checks first: who, which queues, how, and what it can run."""
        config = self.config
        classes = len(self.registry)
        mode = ", ".join([
            _fork_mode(config),
            "blocking" if config.blocking else f"polling every {_seconds(config.interval)}",
            "reliable" if config.reliable else "default (at most once)",
            *(["burst"] if config.burst else []),
            *([f"timeout {_seconds(config.timeout)}"] if config.timeout else []),
        ])  # fmt: skip
        log.info(
            "worker %s started: queues %s; %s; %d job class(es) registered",
            self.id, ",".join(config.queues), mode, classes,
        )  # fmt: skip
        if not classes:
            log.warning(
                "no job classes are registered: every job will fail with UnknownJobError; "
                "load the modules that define them with --import MODULE (or APP_INCLUDE=module1,module2)"
            )
        self._started_at = time.monotonic()
        self.heartbeat.restart_summary()

    def _register(self) -> None:
        self.store.register([self.id])
        self._registered = True

    def _reregister(self) -> None:
        """After a reconnect: Redis may have restarted empty, so be registered again."""
        self.store.register([self.id], again=True)
        self.heartbeat.beat()

    def shutdown(self) -> None:
        """Stop the heartbeat, unregister as Ruby does, run worker_exit hooks. After a second
        TERM/INT, or with Redis unreachable, a job still recorded is left to the pruner."""
        state = self.state
        state.shutting_down = True
        self.executor.close(wait=0.0 if state.exit_now else 10.0)
        self.heartbeat.stop(timeout=0.5 if state.stop_now else 5.0)
        if self._registered and state.exit_now:
            log.warning("exited at once: %s stays registered until a pruner takes it and any job it held", self.id)
        elif self._registered:
            try:
                self.retry(
                    lambda: pruning.unregister(self.redis, self.keys, self.failures, self.id),
                    "unregister",
                    give_up=0.5 if state.stop_now else 5.0,
                )
                self._registered = False
            except redis.RedisError as exc:
                log.warning(
                    "could not unregister %s (%s): a pruner will take it and any job it held", self.id, redact(str(exc))
                )
        self.hooks.run_logged("worker_exit", self)
        self.signals.traps.restore()
        self.wakeup.close()
        elapsed = time.monotonic() - self._started_at
        log.info(
            "worker %s exited: processed %d, failed %d in %.1f s", self.id, self.jobs_done, self.jobs_failed, elapsed
        )

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        """Fetch (recording the last job's end in the same call), process, repeat; between
        jobs, apply control commands, pause, poll with Ruby's back-off, or block."""
        config, state, fetcher = self.config, self.state, self.fetcher
        last_check = 0.0
        idle = True
        low, high, backoff = config.poll_intervals()
        poll = min(max(config.interval, low), high)  # Ruby 3.0: back off from MIN to MAX_INTERVAL
        while True:
            if self._parent is not None and os.getppid() != self._parent:
                log.warning("pool supervisor is gone; stopping")
                state.stop = True
            if state.stop and fetcher.pending is None:
                return
            paused = state.any_pause
            reserve = not (state.stop or paused)
            now = time.monotonic()
            check = not reserve or idle or now - last_check >= config.check_interval
            if check:
                last_check = now
            if reserve:
                fetcher.refresh_queues(idle=idle)
            got = fetcher.fetch(check=check, reserve=reserve)
            if isinstance(got, Unit):
                idle = False
                poll = low
                self.processor.process(got)
                continue
            idle = True
            self.executor.between_jobs(end_batch=state.stop or paused or got.kind is Kind.PAUSED)
            if got.kind is Kind.CONTROL and got.command is not None:
                self.control.apply(got.command)
                continue
            if state.stop:
                continue
            if got.kind is Kind.PAUSED or paused:
                if config.burst and got.kind is Kind.PAUSED:
                    return  # Ruby's work(0) leaves when paused
                procline.paused()
                self.wakeup.sleep(min(config.interval, 1.0) if state.remote_paused else config.interval or 1.0)
                continue
            if config.burst:
                return
            procline.waiting(fetcher.queues)
            if config.blocking:
                unit = fetcher.wait_and_adopt()
                if unit is not None:
                    idle = False
                    self.processor.process(unit)
            else:
                poll = min(poll + backoff, high)
                log.debug("sleeping for %g s", poll)
                self.wakeup.sleep(poll)


def _fork_mode(config: WorkerConfig) -> str:
    if not config.fork:
        return "no fork"
    limits = [
        *([f"{config.jobs_per_fork} jobs"] if config.jobs_per_fork is not None else []),
        *([f"{config.minutes_per_fork:g} min"] if config.minutes_per_fork is not None else []),
    ]
    return f"fork per {' or '.join(limits)}" if limits else "fork per job"


def _seconds(value: float) -> str:
    return f"{value:g} s"
