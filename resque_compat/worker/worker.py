"""The worker: Resque's life cycle (startup, register, heartbeat, prune, loop, unregister) with
one Redis round trip per job, fork per job or in-process, signals, and reconnects.

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
nor a lost reply between the pop and the record loses it. Limit: a control command whose
cycle reply is lost is dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import math
import os
import random
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import redis

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.failures import Failures
from resque_compat.history import Sampler
from resque_compat.jobs.progress import ResqueStatuses
from resque_compat.jobs.retrying import WorkerRetries, retry_line
from resque_compat.logs import JOB_FIELDS, escape_controls, job_fields, mask_args
from resque_compat.protocol import (
    UNSET,
    Failure,
    JobStatus,
    ProtocolError,
    StatusRecord,
    WorkingOn,
    decode_json,
    resolve_queues,
    timefmt,
    worker_id,
)
from resque_compat.protocol.control import ControlCommand
from resque_compat.protocol.records import WorkerState
from resque_compat.registry import JobRegistry, UnresolvableJobError, default_registry
from resque_compat.replies import text
from resque_compat.worker import procline, pruning
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.cycle import Cycle, CycleResult, Finish, Kind
from resque_compat.worker.hooks import WorkerHooks, worker_hooks
from resque_compat.worker.runner import (
    Job,
    JobRunner,
    MalformedJobError,
    Outcome,
    TermException,
    decode_outcome,
    encode_outcome,
    parse_item,
)

if TYPE_CHECKING:  # the metrics extra is optional
    from resque_compat.metrics import WorkerMetrics

log = logging.getLogger("resque_compat.worker")
#: one line per job: successes at INFO (``-v``), failures at WARNING (shown by default)
job_log = logging.getLogger("resque_compat.worker.job")
T = TypeVar("T")
#: the class label of a queue item that is not a job
MALFORMED = "(malformed)"

#: Redis error replies that mean "not now" (a restart, a failover, a full or read-only server;
#: UNBLOCKED: a blocked BLPOP/BLMOVE whose primary turned replica): the call did not run, so
#: it is retried like a dropped connection.
_TRANSIENT_REPLIES = (
    "OOM", "READONLY", "MASTERDOWN", "LOADING", "BUSY", "NOREPLICAS", "MISCONF", "TRYAGAIN", "UNBLOCKED",
)  # fmt: skip
_RETRY_GIVE_UP = 30.0


class _ExitNow(BaseException):
    """Raised by a second TERM/INT to leave whatever the worker is doing at once."""


def _transient(exc: Exception) -> bool:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) or _refusal(exc):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


def _refusal(exc: Exception) -> bool:
    """Redis answers but will not write now (redis-py names these errors and drops the code)."""
    return isinstance(exc, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError))


def _why(exc: Exception) -> str:
    """The log line's reason, in an operator's words."""
    detail = redact(str(exc))
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or detail.startswith("OOM"):
        return f"Redis refuses writes: out of memory (maxmemory) ({detail})"
    if isinstance(exc, redis.exceptions.ReadOnlyError) or detail.startswith("READONLY"):
        return f"Redis refuses writes: read-only replica ({detail})"
    if isinstance(exc, redis.exceptions.BusyLoadingError) or detail.startswith("LOADING"):
        return f"Redis is loading its data ({detail})"
    return f"Redis connection lost ({detail})"


class Worker:
    """One Resque worker process. ``work()`` runs it until told to stop; returns an exit code."""

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
        self.registry = registry
        self.hooks = hooks
        self.pid = os.getpid()
        self.id = name or worker_id(config.queues, self.pid, host)
        self.runner = JobRunner(registry, self.id)
        self.runner.statuses = ResqueStatuses(self.redis, self.keys)
        self.retries = WorkerRetries(self.redis, self.keys, self.id, config.failure_backend, config.reliable)
        self.cycle: Cycle | None = None
        self.queues: list[str] = [q for q in config.queues if not q.startswith("!")]
        self._resolved_at = 0.0
        self._processed_seen = 0
        self._parent = os.getppid() if watch_parent else None
        # state set by signal handlers and the control list
        self._stop = False  # QUIT/stop: no new jobs, exit when idle
        self._stop_now = False  # TERM/INT: kill the job in hand
        self._exit_now = False  # a second TERM/INT: leave at once
        self._shutting_down = False
        self._paused = False  # USR2
        self._remote_paused = False  # control "pause"
        self._kill_job = False
        self._job_running = False  # an in-process job is running (no-fork)
        self._child_pid: int | None = None
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self._history = Sampler(self.redis, self.keys)  # ticked by the heartbeat thread, never by a job
        self._registered = False
        self._next_prune = time.monotonic()
        self._saved_signals: dict[signal.Signals, Any] = {}
        self.jobs_done = 0
        self.jobs_failed = 0
        self._started_at = self._summary_at = time.monotonic()
        self._summary_counts = (0, 0)
        self._exiting: set[int] = set()  # children that reported their outcome and are exiting
        self._status_in_hand: tuple[str | None, StatusRecord | None] = (None, None)
        self._published_state = b""

    # -- life cycle ---------------------------------------------------------------------
    def work(self) -> int:
        """Startup, the job loop, then unregister (always, even after an error)."""
        try:
            self.startup()
            self._loop()
            return 0
        except _ExitNow:
            return 0
        except redis.RedisError as exc:
            if not self._stop:
                raise
            log.warning("Redis unreachable while stopping (%s); exiting anyway", redact(str(exc)))
            return 0
        finally:
            self.shutdown()

    def startup(self) -> None:
        """Ruby's order: procline, traps, heartbeat, prune, before_first_fork, register."""
        procline.configure(self.config.procline_prefix)
        procline.starting()
        self._install_signals()
        self.open_cycle()
        self._retry(lambda: self.redis.hdel(self.keys.heartbeat, self.id), "clear the heartbeat")
        self._retry(self._beat, "write the heartbeat")
        self._retry(self._prune, "prune dead workers")
        self._beat_thread = threading.Thread(target=self._beat_loop, name="resque-heartbeat", daemon=True)
        self._beat_thread.start()
        self.hooks.run("before_first_fork", self)
        self._retry(self._register, "register")
        if self.config.fork:
            gc.freeze()  # what exists now is shared with every child: no copy-on-write for it
        self._resolve_queues()
        self._log_start()

    def open_cycle(self) -> None:
        config = self.config
        self.cycle = self._retry(
            lambda: Cycle(
                self.redis, self.keys, self.id, reliable=config.reliable, failure_backend=config.failure_backend
            ),
            "load the worker script",
        )

    def _log_start(self) -> None:
        """The start line an operator checks first: who, which queues, how, and what it can run."""
        config = self.config
        classes = len(self.registry)
        mode = ", ".join([
            "fork per job" if config.fork else "no fork",
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
        self._started_at = self._summary_at = time.monotonic()

    def _register(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.workers, self.id)
        pipe.set(self.keys.worker_started(self.id), timefmt.started())
        pipe.execute()
        self._registered = True

    def _reregister(self) -> None:
        """After a reconnect: Redis may have restarted empty, so be registered again."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.workers, self.id)
        pipe.set(self.keys.worker_started(self.id), timefmt.started(), nx=True)
        pipe.execute()
        self._beat()

    def shutdown(self) -> None:
        """Stop the heartbeat, unregister as Ruby does, run worker_exit hooks. After a second
        TERM/INT, or with Redis unreachable, a job still recorded is left to the pruner."""
        self._shutting_down = True
        self._reap_exited(wait=0.0 if self._exit_now else 10.0)
        self._beat_stop.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=0.5 if self._stop_now else 5.0)
        if self._registered and self._exit_now:
            log.warning("exited at once: %s stays registered until a pruner takes it and any job it held", self.id)
        elif self._registered:
            try:
                self._retry(
                    lambda: pruning.unregister(self.redis, self.keys, self.failures, self.id),
                    "unregister",
                    give_up=0.5 if self._stop_now else 5.0,
                )
                self._registered = False
            except redis.RedisError as exc:
                log.warning(
                    "could not unregister %s (%s): a pruner will take it and any job it held", self.id, redact(str(exc))
                )
        self.hooks.run_logged("worker_exit", self)
        self._restore_signals()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        elapsed = time.monotonic() - self._started_at
        log.info(
            "worker %s exited: processed %d, failed %d in %.1f s", self.id, self.jobs_done, self.jobs_failed, elapsed
        )

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        config = self.config
        finish: Finish | None = None
        last_check = 0.0
        idle = True
        low, high, backoff = config.poll_intervals()
        poll = min(max(config.interval, low), high)  # Ruby 3.0: back off from MIN to MAX_INTERVAL
        while True:
            if self._parent is not None and os.getppid() != self._parent:
                log.warning("pool supervisor is gone; stopping")
                self._stop = True
            if self._stop and finish is None:
                return
            paused = self._paused or self._remote_paused
            reserve = not (self._stop or paused)
            now = time.monotonic()
            check = not reserve or idle or now - last_check >= config.check_interval
            if check:
                last_check = now
            if reserve and config.has_patterns and (idle or now - self._resolved_at >= config.resolve_interval):
                self._resolve_queues()
            result = self._call(finish, check=check, reserve=reserve)
            finish = None
            job = self._job_of(result)
            if job is not None:
                idle = False
                poll = low
                finish = self._process(*job)
                continue
            idle = True
            self._reap_exited(wait=1.0)  # no zombies while idle; under load they are reaped at the next fork
            if result.kind is Kind.CONTROL and result.command is not None:
                self._control(result.command)
                continue
            if self._stop:
                continue
            if result.kind is Kind.PAUSED or paused:
                if config.burst and result.kind is Kind.PAUSED:
                    return  # Ruby's work(0) leaves when paused
                procline.paused()
                self._sleep(min(config.interval, 1.0) if self._remote_paused else config.interval or 1.0)
                continue
            if config.burst:
                return
            procline.waiting(self.queues)
            if config.blocking:
                moved_from = self._blocking_pop()
                if moved_from is not None:
                    adopted = self._call(None, check=False, reserve=False, adopt=moved_from)
                    job = self._job_of(adopted, default_queue=moved_from)
                    if job is not None:
                        idle = False
                        finish = self._process(*job)
            else:
                poll = min(poll + backoff, high)
                log.debug("sleeping for %g s", poll)
                self._sleep(poll)

    def _job_of(self, result: CycleResult, default_queue: str = "") -> tuple[str, bytes] | None:
        if result.kind is Kind.JOB and result.item is not None:
            return (result.queue or default_queue, result.item)
        if result.kind is Kind.RECOVERED and result.record is not None:
            log.info("recovered the job reserved before the connection was lost")
            return _from_record(result.record)
        return None

    def _resolve_queues(self) -> None:
        assert self.cycle is not None
        if self.config.has_patterns:
            known = self._retry(lambda: self.redis.smembers(self.keys.queues), "list queues")
            self.queues = resolve_queues(self.config.queues, (text(q) for q in known))
            self._resolved_at = time.monotonic()
        if self.queues != self.cycle.queues:
            self.cycle.set_queues(self.queues)

    def _call(self, finish: Finish | None, *, check: bool, reserve: bool, adopt: str | None = None) -> CycleResult:
        """One cycle call; on a dropped connection back off, reconnect, and retry in recovery mode."""
        assert self.cycle is not None
        recovering: int | None = None
        delay = 0.1
        started = time.monotonic()
        while True:
            try:
                result = self.cycle.call(finish, check=check, reserve=reserve, adopt=adopt, recovering=recovering)
            except redis.RedisError as exc:
                if not _transient(exc):
                    raise
                if recovering is None:
                    log.warning("%s; %s", _why(exc), "waiting and retrying" if _refusal(exc) else "reconnecting")
                recovering = self._processed_seen
                if self._stop and (finish is None or self._stop_now or time.monotonic() - started > _RETRY_GIVE_UP):
                    # shutting down: what Redis has not recorded is left to the pruner
                    if finish is not None:
                        log.warning("Redis unreachable while stopping: the job's end is left to the pruner")
                    raise
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if result.processed >= 0:
                self._processed_seen = result.processed
            if finish is not None and finish.release_item is None:
                self.jobs_done += 1
                self.jobs_failed += finish.failed
            if recovering is not None:
                log.warning("Redis is back (after %.1f s)", time.monotonic() - started)
                self._retry(self._reregister, "re-register")
            return result

    def _retry(self, func: Callable[[], T], what: str, give_up: float | None = None) -> T:
        """Idempotent Redis work: retry through connection loss and refused writes with backoff;
        while stopping, give up after ``give_up`` s (TERM/INT: 1 s, else 30 s)."""
        delay = 0.1
        started = time.monotonic()
        while True:
            try:
                return func()
            except redis.RedisError as exc:
                if not _transient(exc):
                    raise
                limit = give_up if give_up is not None else 0.5 if self._stop_now else _RETRY_GIVE_UP
                if self._exit_now or (self._stop and time.monotonic() - started > limit):
                    raise
                log.warning("cannot %s: %s; retrying in %.1f s", what, _why(exc), delay)
                self._sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- one job ------------------------------------------------------------------------
    def _process(self, queue: str, item: bytes) -> Finish | None:
        """Run a reserved job; the returned Finish goes into the next cycle call (None: a retry
        policy already finished it)."""
        if self._stop:  # told to stop while the reservation was in flight: give it back
            return Finish(queue, release_item=item)
        started = time.monotonic()
        try:
            payload = parse_item(item)
        except MalformedJobError as exc:
            outcome = self.runner.failed(queue, item, exc, backtrace=[])
            self._ended(queue, None, MALFORMED, outcome, started=started, why=str(exc))
            return Finish(queue, failure=_failure_bytes(outcome))
        self._kill_job = False  # a USR1 between jobs kills nothing, as Ruby's kill_child
        status_key, status = self._pickup_status(payload.job_id, payload.status_prefix)
        self._status_in_hand = (status_key, status)  # for a child that outlives this process
        try:
            call = self.registry.resolve(payload.class_, payload.args)
        except UnresolvableJobError as exc:
            outcome = self.runner.failed(queue, item, exc, backtrace=[])
            self._ended(queue, payload.job_id, payload.class_, outcome, started=started, why=str(exc))
        else:
            job = Job(queue, item, payload, call.definition, call=call)
            if log.isEnabledFor(logging.DEBUG):  # arguments only at DEBUG, secret-looking keys masked
                log.debug("got: (Job{%s} | %s | %s)", queue, call.class_name, mask_args(payload.args))
            if call.definition.retry is not None:
                policy = call.definition.retry
                carried = self._retry(lambda: self.retries.begin(*call.identity, item, policy), "count the attempt")
                if carried is not None and status_key is None:  # a tracked job back from a delayed retry
                    status_key, status = self._pickup_status(*carried)
                    self._status_in_hand = (status_key, status)
            outcome = self._run_forked(job) if self.config.fork else self._run_here(job)
            if not outcome.ok and self._stop_now and self.config.reliable:
                # interrupted by shutdown: reliable mode gives it back, at the head of its queue
                log.warning(
                    "requeued (Job{%s} | %s) interrupted by shutdown", queue, call.class_name,
                    extra=job_fields(job_id=payload.job_id, class_name=call.class_name, queue=queue, worker=self.id,
                                     duration=time.monotonic() - started, outcome="requeued"),
                )  # fmt: skip
                waiting = status.advanced(JobStatus.WAITING).encode() if status is not None else None
                return Finish(queue, release_item=item, status_key=status_key, status=waiting)
            self._ended(queue, payload.job_id, call.class_name, outcome, started=started)
            if call.definition.retry is not None:
                return self._settle(job, outcome, status_key, status)
        return self._finish(queue, outcome, status_key, status)

    def _settle(self, job: Job, outcome: Outcome, status_key: str | None, status: StatusRecord | None) -> Finish | None:
        """A job with a retry policy: success clears its attempt counter, then finishes as usual;
        a failure is retried or given up by one guarded script instead of the cycle's finish
        (``jobs/retrying.py``), so a crash can neither lose the retry nor record it twice."""
        call = job.call
        assert call is not None
        if outcome.ok:
            self._retry(lambda: self.retries.succeeded(*call.identity), "clear the attempt counter")
            return self._finish(job.queue, outcome, status_key, status)
        settled, attempt = self._retry(lambda: self._settle_failure(job, outcome, status_key, status), "retry")
        self._processed_seen = settled.processed
        self.jobs_done += 1
        self.jobs_failed += 1
        policy = job.definition.retry
        assert policy is not None
        line = retry_line(
            call.class_name, job.queue, attempt=attempt, policy=policy, settled=settled, failure=_failure_bytes(outcome)
        )
        log.warning("%s", line)
        return None

    def _settle_failure(
        self, job: Job, outcome: Outcome, status_key: str | None, status: StatusRecord | None
    ) -> tuple[Any, int]:
        policy, call = job.definition.retry, job.call
        assert policy is not None and call is not None
        attempt = self.retries.attempt_of(job.item)
        if status is not None and isinstance(outcome.progress, dict):
            status = msgspec.structs.replace(status, extra={**status.extra, **outcome.progress})
        settled = self.retries.settle(
            queue=job.queue,
            item=job.item,
            identity=call.identity,
            next_attempt=None if call.retry_args is None else call.next_attempt(),
            policy=policy,
            retryable=outcome.retryable,
            tracked=(job.job_id, job.payload.status_prefix) if job.job_id else None,
            failure=_failure_bytes(outcome),
            status_key=status_key,
            status=status,
            attempt=attempt,
        )
        return settled, attempt

    def _ended(
        self, queue: str, job_id: str | None, class_name: str, outcome: Outcome, *, started: float, why: str = ""
    ) -> None:
        """The job line and the metrics. A success is INFO on ``resque_compat.worker.job`` (shown
        with ``-v``); a failure is one WARNING there (shown by default) with the exception's
        class and message, its backtrace below at ``-v``, and all three as JSON fields.
        The duration is the job's own (a forked child sends it back), else what we saw."""
        kind = "skipped" if outcome.skipped else "ok" if outcome.ok else "failed"
        duration = outcome.duration or time.monotonic() - started
        if self.metrics is not None:
            self.metrics.observe(class_name, kind, duration)
        level = logging.INFO if outcome.ok else logging.WARNING
        if not job_log.isEnabledFor(level):
            return
        fields = job_fields(
            job_id=job_id, class_name=class_name, queue=queue, worker=self.id, duration=duration, outcome=kind
        )
        if outcome.ok:
            job_log.info("%s: (Job{%s} | %s)", "done" if kind == "ok" else kind, queue, class_name, extra=fields)
            return
        exception, error, backtrace = _failure_parts(outcome, why)
        fields[JOB_FIELDS].update(exception=exception, error=error, backtrace=backtrace)
        record = job_log.makeRecord(
            job_log.name, logging.WARNING, __file__, 0, "failed: (Job{%s} | %s): %s: %s",
            (queue, class_name, exception, _clip(error)), None, extra=fields,
        )  # fmt: skip
        if backtrace and job_log.isEnabledFor(logging.INFO):  # below the line, as a traceback is
            record.exc_text = "\n".join(escape_controls(f"    {line}") for line in backtrace)
        job_log.handle(record)

    def _pickup_status(self, job_id: str | None, prefix: str) -> tuple[str | None, StatusRecord | None]:
        """Tracked jobs (payload ``id`` with a status key): status 2, ``started`` kept."""
        if not job_id:
            return None, None
        key = self.keys.status(job_id, prefix)
        raw = self._retry(lambda: self.redis.get(key), "read the job status")
        if raw is None:
            return None, None
        try:
            running = StatusRecord.decode(raw).advanced(JobStatus.RUNNING)
        except ProtocolError as exc:
            log.warning("ignoring unreadable status %s: %s", key, exc)
            return None, None
        self._retry(lambda: self.redis.set(key, running.encode()), "write the job status")
        return key, running

    @staticmethod
    def _finish(queue: str, outcome: Outcome, status_key: str | None, status: StatusRecord | None) -> Finish:
        final: bytes | None = None
        if status is not None and isinstance(outcome.progress, dict):  # a tracked job's last progress stays
            status = msgspec.structs.replace(status, extra={**status.extra, **outcome.progress})
        if status_key is not None and status is not None:
            if outcome.ok:
                result = outcome.result
                if result is UNSET and status.result is not UNSET:
                    result = None
                try:
                    final = status.advanced(JobStatus.COMPLETE, result=result).encode()
                except (TypeError, ValueError, OverflowError):  # a result JSON cannot hold: keep its repr
                    final = status.advanced(JobStatus.COMPLETE, result=repr(result)).encode()
            else:
                final = status.advanced(JobStatus.FAILED).encode()
        return Finish(
            queue,
            failure=None if outcome.ok else _failure_bytes(outcome),
            status_key=status_key,
            status=final,
        )

    def _run_here(self, job: Job) -> Outcome:
        procline.processing(job.queue, time.time(), job.class_name)
        self._job_running = True
        try:
            return self.runner.run(job, self.config.timeout)
        finally:
            self._job_running = False

    def _run_forked(self, job: Job) -> Outcome:
        try:
            self.hooks.run("before_fork", job)
        except Exception as exc:
            return self.runner.failed(job.queue, job.item, exc)
        self._reap_exited()
        read_fd, write_fd = os.pipe()
        self._child_pid = 0  # a kill asked for before fork() returns still reaches the child
        pid = os.fork()
        if pid == 0:
            self._child(job, read_fd, write_fd)
        os.close(write_fd)
        self._child_pid = pid
        procline.forked(pid, time.time())
        try:
            return self._wait_child(job, pid, read_fd)
        finally:
            self._child_pid = None
            os.close(read_fd)

    def _child(self, job: Job, read_fd: int, write_fd: int) -> None:
        """The forked child: run the job, write its Outcome to the pipe, ``_exit(0)``."""
        try:
            os.close(read_fd)
            self._child_signals()
            procline.processing(job.queue, time.time(), job.class_name, worker_pid=self.pid)
            try:
                self.hooks.run("after_fork", job)
            except Exception as exc:
                outcome = self.runner.failed(job.queue, job.item, exc)
            else:
                outcome = self.runner.run(job)
            encoded = encode_outcome(outcome)
            data = memoryview(_OUTCOME_SIZE.pack(len(encoded)) + encoded)  # framed: no need to wait for EOF
            with contextlib.suppress(BrokenPipeError):  # the worker is gone: see below
                while data:
                    written = os.write(write_fd, data)
                    data = data[written:]
            if os.getppid() != self.pid:
                self._finish_orphaned(job, outcome)
        except BaseException:
            log.exception("job child %d of %s failed outside the job", os.getpid(), job.class_name)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(0)

    def _finish_orphaned(self, job: Job, outcome: Outcome) -> None:
        """The worker died while this child ran the job: do the job's bookkeeping here, on a
        connection of our own, unless a pruner already took the job (then it is in ``failed``
        as DirtyExit, as Ruby would have it). So a killed worker does not also fail a job that
        in fact completed (or, in reliable mode, run it again)."""
        assert self.cycle is not None
        status_key, status = self._status_in_hand
        finish = self._finish(job.queue, outcome, status_key, status)
        try:
            if job.definition.retry is not None and not outcome.ok:
                self._settle_failure(job, outcome, status_key, status)  # guarded the same way
                return
            self.cycle.reconnect()
            self.cycle.call(finish, check=False, reserve=False, guard=job.item)
        except redis.RedisError as exc:
            log.warning("worker gone and Redis unreachable: %s is left to the pruner (%s)", job.class_name, exc)

    def _reap_exited(self, wait: float = 0.0) -> None:
        """Collect children that already reported their job's outcome, waiting up to ``wait``
        seconds for those still exiting (an exit takes a millisecond or two)."""
        deadline = time.monotonic() + wait
        while self._exiting:
            for pid in list(self._exiting):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    self._exiting.discard(pid)
            if not self._exiting or time.monotonic() >= deadline:
                return
            time.sleep(0.001)

    def _child_signals(self) -> None:
        """Ruby's child traps: TERM raises TermException in the job; the parent handles the rest."""

        def term(signum: int, frame: FrameType | None) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise TermException("SIGTERM")

        signal.signal(signal.SIGTERM, term)
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wait_child(self, job: Job, pid: int, read_fd: int) -> Outcome:
        config = self.config
        timeout = config.timeout
        deadline = time.monotonic() + timeout if timeout else None
        buf = bytearray()
        killed: str | None = None
        # TERM_CHILD: TERM at term_at (after RESQUE_PRE_SHUTDOWN_TIMEOUT), KILL at kill_at
        term_at = kill_at = math.inf
        while True:
            now = time.monotonic()
            if self._kill_job and killed is None:
                if config.term_child:
                    term_at = now + config.pre_shutdown_timeout
                    kill_at = term_at + config.term_timeout
                    killed = "term"
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    killed = "signal"
            if now >= term_at:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                term_at = math.inf
            if now >= kill_at:
                log.warning("job child %d still running %g s after TERM: killing it", pid, config.term_timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                kill_at = math.inf
            wait: float | None = None
            if min(term_at, kill_at) < math.inf:
                wait = max(0.0, min(term_at, kill_at) - now)
            if deadline is not None and killed is None:
                wait = deadline - now
                if wait <= 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    killed = "timeout"
                    continue
            ready, _, _ = select.select([read_fd, self._wake_r], [], [], wait)
            if self._wake_r in ready:
                self._drain()
            if read_fd in ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                outcome = _complete_outcome(buf)
                if outcome is not None:
                    # The job is over; the child's exit (tearing down its memory) overlaps
                    # the next reservation on the other core. It is reaped later.
                    self._exiting.add(pid)
                    return outcome
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            how = f"pid {pid} {_signal_name(signum)} (signal {signum})"
            if killed == "timeout":
                return self.runner.dirty_exit(
                    job, job.queue, "Resque::JobTimeout", f"Job exceeded the {timeout:g} s timeout: {how}"
                )
            if killed == "term":
                error = f"SIGTERM, then killed after {config.term_timeout:g} s: {how}"
                return self.runner.dirty_exit(job, job.queue, "Resque::TermException", error)
            return self.runner.dirty_exit(
                job, job.queue, "Resque::DirtyExit", f"Child process received unhandled signal {how}"
            )
        if buf:
            log.warning("child %d sent an incomplete or unreadable outcome", pid)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        how = f"pid {pid} exit {code}"
        return self.runner.dirty_exit(
            job, job.queue, "Resque::DirtyExit", f"Child process exited without finishing the job: {how}"
        )

    # -- blocking mode ------------------------------------------------------------------
    def _blocking_pop(self) -> str | None:
        """BLMOVE from the first queue into our in-flight list (the other queues are polled by
        the cycle between pops), at most 1 s at a time so signals and control commands are
        seen promptly. Returns the queue when an item may be in the in-flight list (moved, or
        the reply was lost): the adopt call then records it, atomically, from that list, so a
        kill -9 at any instant leaves the item in Redis, where a pruner finds it."""
        timeout = max(0.01, min(self.config.interval, 1.0))
        if not self.queues:
            self._sleep(timeout)
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
            if not _transient(exc):
                raise
            log.warning("Redis connection lost while waiting (%s); reconnecting", redact(str(exc)))
            self._sleep(1.0)
            return first  # the move may have happened: the adopt call finds out
        return first if item is not None else None

    # -- signals and control -------------------------------------------------------------
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
        """Put back what was there (matters when a worker runs inside a larger program)."""
        for sig, previous in self._saved_signals.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._saved_signals.clear()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    def _sleep(self, seconds: float) -> None:
        """Sleep, woken early by any signal we handle."""
        if seconds <= 0:
            return
        ready, _, _ = select.select([self._wake_r], [], [], seconds)
        if ready:
            self._drain()

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        log.warning("QUIT: exiting after the current job")
        self._stop = True
        self._wake()

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        name = _signal_name(signum)
        if signum == signal.SIGTERM and self.config.graceful_term and not self._stop_now:
            log.warning("%s (GRACEFUL_TERM): exiting after the current job", name)
            self._stop = True
            self._wake()
            return
        if self._stop_now:  # the second INT/TERM: out at once, the job in hand left to the pruner
            log.warning("second %s: exiting now", name)
            if self._child_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._child_pid, signal.SIGKILL)
            self._exit_now = True
            self._wake()
            if not self._shutting_down:  # in shutdown() its retries see _exit_now and stop
                raise _ExitNow(name)
            return
        log.warning("%s: %s the current job and exiting", name, "stopping" if self.config.term_child else "killing")
        self._stop = self._stop_now = True
        self._kill_current(name)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        log.warning("USR1: killing the current job")
        self._kill_current("SIGUSR1")

    def _kill_current(self, name: str) -> None:
        if self._child_pid is not None:
            self._kill_job = True
            self._wake()
        elif self._job_running:
            self._wake()
            raise TermException(name)
        else:
            self._wake()

    def _on_usr2(self, signum: int, frame: FrameType | None) -> None:
        if not self._paused:
            log.info("USR2: paused")
            self.hooks.run_logged("before_pause", self)
        self._paused = True
        self._wake()

    def _on_cont(self, signum: int, frame: FrameType | None) -> None:
        if self._paused:
            log.info("CONT: resumed")
            self.hooks.run_logged("after_pause", self)
        self._paused = False
        self._wake()

    def _control(self, word: str) -> None:
        """A :class:`ControlCommand` from ``Keys.control(id)``; any other word is logged and ignored."""
        log.info("control command: %s", word)
        command = ControlCommand.parse(word)
        if command is ControlCommand.PAUSE:
            if not self._remote_paused:
                self.hooks.run_logged("before_pause", self)
            self._remote_paused = True
        elif command is ControlCommand.RESUME:
            if self._remote_paused:
                self.hooks.run_logged("after_pause", self)
            self._remote_paused = False
        elif command is ControlCommand.STOP:
            self._stop = True
        elif command is ControlCommand.KILL_JOB:
            if self._child_pid is not None or self._job_running:
                os.kill(self.pid, signal.SIGUSR1)
        else:
            log.warning("ignoring unknown control command %r", word)
        self._wake()

    # -- heartbeat ----------------------------------------------------------------------
    def _beat(self) -> None:
        secs, _ = self.redis.time()
        self.redis.hset(self.keys.heartbeat, self.id, timefmt.heartbeat(float(secs)))
        self._publish_state()

    def _state_record(self) -> bytes:
        paused = self._paused or self._remote_paused
        return WorkerState(
            paused=paused, stopping=self._stop, classes=list(self.registry), supervisor=self._parent
        ).encode()

    def _publish_state(self) -> None:
        """``compat:state:<id>``: paused/stopping (which Resque's keys cannot say) and our job
        classes, for ``workers``, the dashboard and ``doctor``; it expires if we die."""
        record = self._state_record()
        ttl = int(self.config.prune_interval + self.config.heartbeat_interval)
        self.redis.set(self.keys.worker_state(self.id), record, ex=max(ttl, 1))
        self._published_state = record

    def _prune(self) -> None:
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

    def _summary(self) -> None:
        """Every ``summary_interval`` s, one INFO line: what was done since the last one."""
        every = self.config.summary_interval
        now = time.monotonic()
        if not every or now - self._summary_at < every:
            return
        done, failed = self.jobs_done, self.jobs_failed
        last_done, last_failed = self._summary_counts
        rate = (done - last_done) / (now - self._summary_at)
        busy = self._child_pid is not None or self._job_running
        state = "paused" if self._paused or self._remote_paused else "busy" if busy else "idle"
        log.info(
            "summary: processed %d (+%d), failed %d (+%d), %.1f jobs/s over %.0f s; %s",
            done, done - last_done, failed, failed - last_failed, rate, now - self._summary_at, state,
        )  # fmt: skip
        self._summary_at, self._summary_counts = now, (done, failed)

    def _beat_loop(self) -> None:
        """Heartbeat every HEARTBEAT_INTERVAL s, prune dead workers now and then (``_prune``);
        while a job runs, also read the control list (between jobs the cycle call does that);
        once a minute, maybe record the history."""
        interval = self.config.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not self._beat_stop.wait(min(0.5, max(0.0, min(next_beat, self._next_prune) - time.monotonic()))):
            try:
                if self._child_pid is not None or self._job_running:
                    command = self.redis.lpop(self.keys.control(self.id))
                    if command is not None:
                        self._control(text(command))
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + interval
                elif self._state_record() != self._published_state:
                    self._publish_state()  # a pause, resume or stop shows within half a second
                if time.monotonic() >= self._next_prune and not self._stop:
                    self._prune()
                self._summary()
                self._history.tick()
            except redis.RedisError as exc:
                log.debug("heartbeat: %s", redact(str(exc)))
            except Exception:
                log.exception("heartbeat thread error")


_OUTCOME_SIZE = struct.Struct(">I")


def _complete_outcome(buf: bytearray) -> Outcome | None:
    """The child's outcome once all of its framed bytes arrived; None while incomplete or garbled."""
    if len(buf) < _OUTCOME_SIZE.size:
        return None
    (size,) = _OUTCOME_SIZE.unpack_from(buf)
    if len(buf) < _OUTCOME_SIZE.size + size:
        return None
    try:
        return decode_outcome(bytes(buf[_OUTCOME_SIZE.size : _OUTCOME_SIZE.size + size]))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _failure_parts(outcome: Outcome, why: str) -> tuple[str, str, list[str]]:
    """(exception class, message, backtrace) of a failed outcome's record."""
    try:
        record = Failure.decode(_failure_bytes(outcome))
    except (ProtocolError, TypeError):
        return "?", why, []
    return record.exception, record.error, list(record.backtrace)


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def _failure_bytes(outcome: Outcome) -> bytes:
    failure: Any = outcome.failure
    return bytes(failure)


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
