"""One slot of a ``--concurrency`` worker (``worker/concurrent.py`` is the process): a
``Worker`` of its own to every peer, whose loop runs on a thread of the process's.

Where jobs run: every slot has a thread that makes its cycle calls and runs its jobs' hooks. A
perform that is ``async def`` (or returns an awaitable) runs on the process's one asyncio event
loop while the slot's thread waits for it; any other perform runs on the slot's thread (a pool of
N threads). A job class (or function) with ``executor = "thread"`` runs even an async perform on
its slot's thread, on a loop of its own (async code that blocks its loop).

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
import ctypes
import logging
import math
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import redis

from resque_compat.protocol import slot_id
from resque_compat.worker import procline, pruning
from resque_compat.worker.executor import Executor
from resque_compat.worker.fetcher import Unit
from resque_compat.worker.job_end import InHand
from resque_compat.worker.runner import Job, JobTimeoutError, Outcome, TermException, as_coroutine, run_awaitable
from resque_compat.worker.worker import Worker

if TYPE_CHECKING:
    from resque_compat.worker.concurrent import ConcurrentWorker

log = logging.getLogger("resque_compat.worker")

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


def interruption(base: type[TermException | JobTimeoutError], message: str) -> type[BaseException]:
    """An exception class raising ``base`` with ``message``: what is raised in another thread
    must be a class, instantiated there without arguments."""

    def init(self: BaseException) -> None:
        base.__init__(self, message)

    return type(base.__name__, (base,), {"__init__": init, "__module__": base.__module__})


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
