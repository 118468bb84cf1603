"""Control commands from ``Keys.control(id)`` (pause, resume, stop, kill-job), sent by the
``resque-compat`` CLI from any host. The loop reads them between jobs (in its cycle call), the
heartbeat thread while a job runs; both apply them here."""

from __future__ import annotations

import logging
from collections.abc import Callable

from resque_compat.protocol.control import ControlCommand
from resque_compat.worker.run_state import RunState
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")


class Control:
    def __init__(
        self, state: RunState, wakeup: Wakeup, kill_job: Callable[[], None], run_hook: Callable[[str], None]
    ) -> None:
        self.state = state
        self.wakeup = wakeup
        self.kill_job = kill_job  # the job in hand, if any
        self.run_hook = run_hook  # before_pause / after_pause, given the worker

    def apply(self, word: str) -> None:
        """A :class:`ControlCommand`; any other word is logged and ignored."""
        log.info("control command: %s", word)
        command = ControlCommand.parse(word)
        state = self.state
        if command is ControlCommand.PAUSE:
            if not state.remote_paused:
                self.run_hook("before_pause")
            state.remote_paused = True
        elif command is ControlCommand.RESUME:
            if state.remote_paused:
                self.run_hook("after_pause")
            state.remote_paused = False
        elif command is ControlCommand.STOP:
            state.stop = True
        elif command is ControlCommand.KILL_JOB:
            self.kill_job()
        else:
            log.warning("ignoring unknown control command %r", word)
        self.wakeup.wake()
