"""The worker's signal handlers, as Ruby Resque's (see the ``worker`` module for what each
signal does), and the traps of a forked job child. Handlers run in the main thread; they
write ``RunState`` and ask the executor to kill; the wake-up pipe makes any wait notice."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.executor import Executor
from resque_compat.worker.run_state import RunState
from resque_compat.worker.runner import TermException
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")


class ExitNow(BaseException):
    """Raised by a second TERM/INT to leave whatever the worker is doing at once."""


Handler = Callable[[int, FrameType | None], None]


class Traps:
    """The worker signals' handlers (TERM and INT share one), installed by ``install`` and
    replaced by what was there before by ``restore`` (matters when a worker runs inside a
    larger program). A worker's ``SignalHandlers`` and a concurrency process use it."""

    def __init__(
        self, on_quit: Handler, on_term: Handler, on_usr1: Handler, on_usr2: Handler, on_cont: Handler
    ) -> None:
        self.handlers: dict[signal.Signals, Handler] = {
            signal.SIGQUIT: on_quit,
            signal.SIGTERM: on_term,
            signal.SIGINT: on_term,
            signal.SIGUSR1: on_usr1,
            signal.SIGUSR2: on_usr2,
            signal.SIGCONT: on_cont,
        }
        self._saved: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        for sig, handler in self.handlers.items():
            self._saved[sig] = signal.signal(sig, handler)

    def restore(self) -> None:
        for sig, previous in self._saved.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._saved.clear()


class SignalHandlers:
    def __init__(
        self,
        config: WorkerConfig,
        state: RunState,
        wakeup: Wakeup,
        executor: Executor,
        run_hook: Callable[[str], None],
    ) -> None:
        self.config = config
        self.state = state
        self.wakeup = wakeup
        self.executor = executor
        self.run_hook = run_hook  # before_pause / after_pause, given the worker
        self.traps = Traps(self._on_quit, self._on_term, self._on_usr1, self._on_usr2, self._on_cont)

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        log.warning("QUIT: exiting after the current job")
        self.state.stop = True
        self.wakeup.wake()

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        name = signal_name(signum)
        state = self.state
        if signum == signal.SIGTERM and self.config.graceful_term and not state.stop_now:
            log.warning("%s (GRACEFUL_TERM): exiting after the current job", name)
            state.stop = True
            self.wakeup.wake()
            return
        if state.stop_now:  # the second INT/TERM: out at once, the job in hand left to the pruner
            log.warning("second %s: exiting now", name)
            self.executor.kill_now()
            state.exit_now = True
            self.wakeup.wake()
            if not state.shutting_down:  # in shutdown() its retries see exit_now and stop
                raise ExitNow(name)
            return
        log.warning("%s: %s the current job and exiting", name, "stopping" if self.config.term_child else "killing")
        state.stop = state.stop_now = True
        self._kill_current(name)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        log.warning("USR1: killing the current job")
        self._kill_current("SIGUSR1")

    def _kill_current(self, name: str) -> None:
        self.wakeup.wake()
        self.executor.kill(name)  # in-process: raises TermException into the job

    def _on_usr2(self, signum: int, frame: FrameType | None) -> None:
        if not self.state.paused:
            log.info("USR2: paused")
            self.run_hook("before_pause")
        self.state.paused = True
        self.wakeup.wake()

    def _on_cont(self, signum: int, frame: FrameType | None) -> None:
        if self.state.paused:
            log.info("CONT: resumed")
            self.run_hook("after_pause")
        self.state.paused = False
        self.wakeup.wake()


class ChildTerm:
    """A forked job child's traps, as Ruby's: TERM raises TermException in the job (once; the
    child then takes no further job); the worker handles every other signal."""

    def __init__(self) -> None:
        self.received = False

    def install(self, wakeup: Wakeup) -> None:
        signal.signal(signal.SIGTERM, self._term)
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        wakeup.close()  # the worker's: a child must not hold it

    def _term(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.received = True
        raise TermException("SIGTERM")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"
