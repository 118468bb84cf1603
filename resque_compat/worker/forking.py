"""The fork executor: each job runs in a forked child, isolated from the worker. A child runs
one job (Resque's fork per job) or, with ``--jobs-per-fork N`` / ``--minutes-per-fork M``,
a batch of jobs until either limit, paying fork once per batch (as Ruby's
resque-multi-job-forks). Either way the worker reserves every job and records every end, so
to every peer each job looks the same: its own ``worker:<id>`` record, stats and status.

A child reports each outcome and then waits until the worker says it is recorded in Redis
(``pipe_frames``): if the worker dies first, the child records the job itself. A kill, a
timeout or a TERM ends the child's batch; the next job gets a fresh child.

Owner of the state below: the loop (main thread). Signal handlers only set ``_kill_job``
(``kill``) or SIGKILL the child (``kill_now``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import select
import signal
import time
from dataclasses import dataclass

from resque_compat.jobs.retrying import WorkerRetries
from resque_compat.registry import JobRegistry
from resque_compat.worker import fork_child, procline
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.fetcher import Fetcher, Unit
from resque_compat.worker.hooks import WorkerHooks
from resque_compat.worker.job_end import InHand
from resque_compat.worker.pipe_frames import LEAVE, RECORDED, Order, complete_outcome, order_frame, write_all
from resque_compat.worker.runner import Job, JobRunner, Outcome
from resque_compat.worker.signals import signal_name
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")


@dataclass(eq=False)
class _Child:
    pid: int
    orders: int  # write end: acknowledgements and further jobs
    outcomes: int  # read end
    forked_at: float
    jobs: int = 0
    last: bool = False  # takes no further job
    unrecorded: bool = False  # sent an outcome the worker has not yet acknowledged


class Forking:
    def __init__(
        self,
        config: WorkerConfig,
        *,
        runner: JobRunner,
        registry: JobRegistry,
        hooks: WorkerHooks,
        fetcher: Fetcher,
        retries: WorkerRetries,
        wakeup: Wakeup,
    ) -> None:
        self.config = config
        self.runner = runner
        self.registry = registry
        self.hooks = hooks
        self.fetcher = fetcher
        self.retries = retries
        self.wakeup = wakeup
        self.worker_pid = os.getpid()
        batching = config.jobs_per_fork is not None or config.minutes_per_fork is not None
        self.jobs_per_child = config.jobs_per_fork or (math.inf if batching else 1)
        self.seconds_per_child = (config.minutes_per_fork or math.inf) * 60.0
        self._child: _Child | None = None
        self._running = False
        self._kill_job = False  # set by a signal handler while a job runs
        self._exiting: set[int] = set()  # children done with their jobs, to be reaped

    @property
    def busy(self) -> bool:
        return self._running

    def run(self, hand: InHand, unit: Unit) -> Outcome:
        job = hand.job
        self._kill_job = False  # a USR1 between jobs kills nothing, as Ruby's kill_child
        child = self._child
        if child is not None and not self._send(child, hand):
            self._let_go(child)  # it died between jobs: the job goes to a fresh child
            child = None
        if child is None:
            try:
                self.hooks.run("before_fork", job)
            except Exception as exc:
                return self.runner.failed(job.queue, job.item, exc)
            self._reap_exited()
            self._running = True  # a kill asked for before fork() returns still reaches the child
            child = self._fork(hand)
        self._running = True
        procline.forked(child.pid, time.time())
        try:
            outcome = self._wait(child, job)
        finally:
            self._running = False
        unit.on_recorded(functools.partial(self._recorded, child))
        return outcome

    def kill(self, name: str) -> None:
        if self._running:
            self._kill_job = True

    def kill_now(self) -> None:
        if self._running and self._child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._child.pid, signal.SIGKILL)

    def between_jobs(self, *, end_batch: bool) -> None:
        child = self._child
        if child is not None and (end_batch or self._spent(child)):
            child.last = True
            if not child.unrecorded:
                self._let_go(child)
        self._reap_exited(wait=1.0)  # no zombies while idle; under load they are reaped at the next fork

    def close(self, wait: float) -> None:
        child = self._child
        if child is not None:
            if child.unrecorded:  # stopping with its end unrecorded: a pruner's, as before
                with contextlib.suppress(OSError):
                    write_all(child.orders, order_frame(LEAVE))
            self._let_go(child)
        self._reap_exited(wait)

    # -- the worker's side of a child ---------------------------------------------------
    def _fork(self, hand: InHand) -> _Child:
        orders_r, orders_w = os.pipe()
        outcomes_r, outcomes_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(orders_w)
            os.close(outcomes_r)
            fork_child.serve(self, hand, orders_r, outcomes_w)  # never returns
        os.close(orders_r)
        os.close(outcomes_w)
        self._child = _Child(pid, orders_w, outcomes_r, time.monotonic())
        return self._child

    def _send(self, child: _Child, hand: InHand) -> bool:
        status = hand.status.encode() if hand.status is not None else None
        order = Order(hand.job.queue, hand.job.item, hand.status_key, status, hand.attempt)
        try:
            write_all(child.orders, order_frame(b"J", order))
        except OSError:
            return False
        return True

    def _recorded(self, child: _Child) -> None:
        """The child's last outcome is in Redis: tell it, and end its batch if it is over."""
        if child is not self._child:
            return
        child.unrecorded = False
        try:
            write_all(child.orders, order_frame(RECORDED))
        except OSError:
            child.last = True
        if child.last or self._spent(child):
            self._let_go(child)

    def _spent(self, child: _Child) -> bool:
        return child.jobs >= self.jobs_per_child or time.monotonic() - child.forked_at >= self.seconds_per_child

    def _let_go(self, child: _Child) -> None:
        """Close our ends (the child, past its ack, exits at end of file); reap it later."""
        for fd in (child.orders, child.outcomes):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._exiting.add(child.pid)
        if child is self._child:
            self._child = None

    def _reap_exited(self, wait: float = 0.0) -> None:
        """Collect children that are done, waiting up to ``wait`` seconds for those still
        exiting (an exit takes a millisecond or two)."""
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

    def _wait(self, child: _Child, job: Job) -> Outcome:
        config = self.config
        pid = child.pid
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
                child.last = True  # it ignores TERM from now on
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
            ready, _, _ = select.select([child.outcomes, self.wakeup.read_fd], [], [], wait)
            if self.wakeup.read_fd in ready:
                self.wakeup.drain()
            if child.outcomes in ready:
                chunk = os.read(child.outcomes, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                complete = complete_outcome(buf)
                if complete is not None:
                    # The job is over; the child waits for the record (or, its batch over,
                    # exits while the next reservation runs on the other core).
                    outcome, last = complete
                    child.jobs += 1
                    child.last = child.last or last or killed is not None
                    child.unrecorded = True
                    return outcome
        return self._died(child, job, killed, had_bytes=bool(buf))

    def _died(self, child: _Child, job: Job, killed: str | None, *, had_bytes: bool) -> Outcome:
        """The child ended without an outcome for ``job``: a failure saying how."""
        config = self.config
        pid = child.pid
        _, status = os.waitpid(pid, 0)
        for fd in (child.orders, child.outcomes):
            with contextlib.suppress(OSError):
                os.close(fd)
        if child is self._child:
            self._child = None
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            how = f"pid {pid} {signal_name(signum)} (signal {signum})"
            if killed == "timeout":
                return self.runner.dirty_exit(
                    job, job.queue, "Resque::JobTimeout", f"Job exceeded the {config.timeout:g} s timeout: {how}"
                )
            if killed == "term":
                error = f"SIGTERM, then killed after {config.term_timeout:g} s: {how}"
                return self.runner.dirty_exit(job, job.queue, "Resque::TermException", error)
            return self.runner.dirty_exit(
                job, job.queue, "Resque::DirtyExit", f"Child process received unhandled signal {how}"
            )
        if had_bytes:
            log.warning("child %d sent an incomplete or unreadable outcome", pid)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        how = f"pid {pid} exit {code}"
        return self.runner.dirty_exit(
            job, job.queue, "Resque::DirtyExit", f"Child process exited without finishing the job: {how}"
        )
