"""The worker: Resque's life cycle (startup, register, heartbeat, prune, loop, unregister) with
one Redis round trip per job, fork per job or in-process, signals, and reconnects.

Signals, as Ruby Resque: QUIT finishes the job then exits; TERM/INT kill the job now (fork:
SIGKILL to the child; no fork: ``Resque::TermException`` raised in the job), record it as
failed and exit; USR1 kills the job and keeps working; USR2 pauses; CONT resumes. The control
list (``resque-compat`` CLI, any host) sends pause / resume / stop / kill-job.

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
import os
import random
import select
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import redis

from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.failure import Failures
from resque_compat.logs import job_fields, mask_args
from resque_compat.protocol import (
    UNSET,
    JobStatus,
    ProtocolError,
    StatusRecord,
    WorkingOn,
    decode_json,
    resolve_queues,
    timefmt,
    worker_id,
)
from resque_compat.registry import JobRegistry, UnknownJobError, default_registry
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


def _transient(exc: Exception) -> bool:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


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
        self.id = worker_id(config.queues, self.pid, host)
        self.runner = JobRunner(registry, self.id)
        self.cycle: Cycle | None = None
        self.queues: list[str] = [q for q in config.queues if not q.startswith("!")]
        self._resolved_at = 0.0
        self._processed_seen = 0
        self._parent = os.getppid() if watch_parent else None
        # state set by signal handlers and the control list
        self._stop = False  # QUIT/stop: no new jobs, exit when idle
        self._stop_now = False  # TERM/INT: kill the job in hand
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
        self._registered = False
        self._next_prune = time.monotonic()
        self._saved_signals: dict[signal.Signals, Any] = {}
        self.jobs_done = 0
        self._exiting: set[int] = set()  # children that reported their outcome and are exiting
        self._status_in_hand: tuple[str | None, StatusRecord | None] = (None, None)

    # -- life cycle ---------------------------------------------------------------------
    def work(self) -> int:
        """Startup, the job loop, then unregister (always, even after an error)."""
        try:
            self.startup()
            self._loop()
            return 0
        finally:
            self.shutdown()

    def startup(self) -> None:
        """Ruby's order: procline, traps, heartbeat, prune, before_first_fork, register."""
        procline.configure(self.config.procline_prefix)
        procline.starting()
        self._install_signals()
        self.cycle = self._retry(
            lambda: Cycle(
                self.redis,
                self.keys,
                self.id,
                reliable=self.config.reliable,
                failure_backend=self.config.failure_backend,
            ),
            "load the worker script",
        )
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
        log.info("worker %s started (%s)", self.id, "fork per job" if self.config.fork else "no fork")

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
        """Stop the heartbeat, unregister as Ruby does, run worker_exit hooks."""
        self._reap_exited(wait=10.0)
        self._beat_stop.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=5)
        if self._registered:
            try:
                self._retry(lambda: pruning.unregister(self.redis, self.keys, self.failures, self.id), "unregister")
                self._registered = False
            except redis.RedisError as exc:
                log.warning("could not unregister %s: %s", self.id, redact(str(exc)))
        self.hooks.run_logged("worker_exit", self)
        self._restore_signals()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        log.info("worker %s exited after %d job(s)", self.id, self.jobs_done)

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        config = self.config
        finish: Finish | None = None
        last_check = 0.0
        idle = True
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
                self._sleep(config.interval)

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

    def _call(
        self, finish: Finish | None, *, check: bool, reserve: bool, adopt: tuple[str, bytes] | None = None
    ) -> CycleResult:
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
                    log.warning("Redis connection lost (%s); reconnecting", redact(str(exc)))
                recovering = self._processed_seen
                if self._stop_now and time.monotonic() - started > _RETRY_GIVE_UP:
                    log.warning("giving up on Redis after %.0f s while shutting down", _RETRY_GIVE_UP)
                    raise
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if result.processed >= 0:
                self._processed_seen = result.processed
            if finish is not None and finish.release_item is None:
                self.jobs_done += 1
            if recovering is not None:
                log.warning("reconnected to Redis")
                self._retry(self._reregister, "re-register")
            return result

    def _retry(self, func: Callable[[], T], what: str) -> T:
        """Idempotent Redis work: retry through connection loss with backoff."""
        delay = 0.1
        started = time.monotonic()
        while True:
            try:
                return func()
            except redis.RedisError as exc:
                if not _transient(exc) or (self._stop_now and time.monotonic() - started > _RETRY_GIVE_UP):
                    raise
                log.warning("cannot %s: %s; retrying in %.1f s", what, redact(str(exc)), delay)
                self._sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- one job ------------------------------------------------------------------------
    def _process(self, queue: str, item: bytes) -> Finish:
        """Run a reserved job; the returned Finish goes into the next cycle call."""
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
            definition = self.registry.lookup(payload.class_)
        except UnknownJobError as exc:
            outcome = self.runner.failed(queue, item, exc, backtrace=[])
            self._ended(queue, payload.job_id, payload.class_, outcome, started=started, why=str(exc))
        else:
            job = Job(queue, item, payload, definition)
            if log.isEnabledFor(logging.DEBUG):  # arguments only at DEBUG, secret-looking keys masked
                log.debug("got: (Job{%s} | %s | %s)", queue, payload.class_, mask_args(payload.args))
            outcome = self._run_forked(job) if self.config.fork else self._run_here(job)
            self._ended(queue, payload.job_id, payload.class_, outcome, started=started)
        return self._finish(queue, outcome, status_key, status)

    def _ended(
        self, queue: str, job_id: str | None, class_name: str, outcome: Outcome, *, started: float, why: str = ""
    ) -> None:
        """The job line (INFO; WARNING when the job could not even start) and the metrics.
        The duration is the job's own (a forked child sends it back), else what we saw."""
        kind = "skipped" if outcome.skipped else "ok" if outcome.ok else "failed"
        duration = outcome.duration or time.monotonic() - started
        if self.metrics is not None:
            self.metrics.observe(class_name, kind, duration)
        level = logging.WARNING if why else logging.INFO
        if log.isEnabledFor(level):
            fields = job_fields(
                job_id=job_id, class_name=class_name, queue=queue, worker=self.id, duration=duration, outcome=kind
            )
            word = "done" if kind == "ok" else kind
            log.log(level, "%s: (Job{%s} | %s)%s", word, queue, class_name, f": {why}" if why else "", extra=fields)

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
            traceback.print_exc()
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
        timeout = self.config.timeout
        deadline = time.monotonic() + timeout if timeout else None
        buf = bytearray()
        killed: str | None = None
        while True:
            if self._kill_job and killed is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed = "signal"
            wait: float | None = None
            if deadline is not None and killed is None:
                wait = deadline - time.monotonic()
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
        log.info("QUIT: exiting after the current job")
        self._stop = True
        self._wake()

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        name = _signal_name(signum)
        log.info("%s: killing the current job and exiting", name)
        self._stop = self._stop_now = True
        self._kill_current(name)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        log.info("USR1: killing the current job")
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

    def _control(self, command: str) -> None:
        """Commands from ``Keys.control(id)``: pause, resume, stop, kill-job."""
        log.info("control command: %s", command)
        if command == "pause":
            if not self._remote_paused:
                self.hooks.run_logged("before_pause", self)
            self._remote_paused = True
        elif command == "resume":
            if self._remote_paused:
                self.hooks.run_logged("after_pause", self)
            self._remote_paused = False
        elif command == "stop":
            self._stop = True
        elif command == "kill-job":
            if self._child_pid is not None or self._job_running:
                os.kill(self.pid, signal.SIGUSR1)
        else:
            log.warning("ignoring unknown control command %r", command)
        self._wake()

    # -- heartbeat ----------------------------------------------------------------------
    def _beat(self) -> None:
        secs, _ = self.redis.time()
        self.redis.hset(self.keys.heartbeat, self.id, timefmt.heartbeat(float(secs)))

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

    def _beat_loop(self) -> None:
        """Heartbeat every HEARTBEAT_INTERVAL s, prune dead workers now and then (``_prune``);
        while a job runs, also read the control list (between jobs the cycle call does that)."""
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
                if time.monotonic() >= self._next_prune and not self._stop:
                    self._prune()
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
