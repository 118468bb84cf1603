"""How a reserved job runs: one interface, interchangeable strategies (as RQ's worker classes).

* :class:`InProcess` (``--no-fork``): in the worker's own process;
* ``forking.Forking`` (the default): in a forked child, a fresh one per job, or with
  ``--jobs-per-fork``/``--minutes-per-fork`` one child for a batch of jobs.

The worker's loop calls ``run`` (main thread); signal handlers call ``kill`` and ``kill_now``
(main thread, between bytecodes); the heartbeat thread only reads ``busy``.
"""

from __future__ import annotations

import time
from typing import Protocol

from resque_compat.worker import procline
from resque_compat.worker.fetcher import Unit
from resque_compat.worker.job_end import InHand
from resque_compat.worker.runner import JobRunner, Outcome, TermException


class Executor(Protocol):
    @property
    def busy(self) -> bool:
        """A job is running now (the heartbeat thread then reads the control list)."""

    def run(self, hand: InHand, unit: Unit) -> Outcome:
        """Run the job; never raises for the job's own failure (every end is an Outcome)."""

    def kill(self, name: str) -> None:
        """From a signal handler (USR1, TERM/INT, control kill-job): end the job in hand now."""

    def kill_now(self) -> None:
        """From a second TERM/INT: the worker leaves at once; nothing may outlive it but a job
        child, which is killed."""

    def between_jobs(self, *, end_batch: bool) -> None:
        """The loop is idle (``end_batch``: paused or stopping): end what need not wait."""

    def close(self, wait: float) -> None:
        """At shutdown: end children, waiting up to ``wait`` s for those already exiting."""


class InProcess:
    """Runs the job in the worker's process; a kill raises ``TermException`` inside it."""

    def __init__(self, runner: JobRunner, timeout: float | None) -> None:
        self.runner = runner
        self.timeout = timeout
        self._running = False  # written by the loop only

    @property
    def busy(self) -> bool:
        return self._running

    def run(self, hand: InHand, unit: Unit) -> Outcome:
        job = hand.job
        procline.processing(job.queue, time.time(), job.class_name)
        self._running = True
        try:
            return self.runner.run(job, self.timeout)
        finally:
            self._running = False

    def kill(self, name: str) -> None:
        if self._running:
            raise TermException(name)

    def kill_now(self) -> None:
        return

    def between_jobs(self, *, end_batch: bool) -> None:
        return

    def close(self, wait: float) -> None:
        return
