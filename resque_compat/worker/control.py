"""Control commands from ``Keys.control(id)`` (pause, resume, stop, kill-job), sent by the
``resque-compat`` CLI from any host. The loop reads them between jobs (in its cycle call), the
heartbeat thread while a job runs; both apply them here."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

from resque_compat.worker.run_state import RunState
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")


class Control:
    def __init__(
        self, state: RunState, wakeup: Wakeup, busy: Callable[[], bool], run_hook: Callable[[str], None]
    ) -> None:
        self.state = state
        self.wakeup = wakeup
        self.busy = busy
        self.run_hook = run_hook  # before_pause / after_pause, given the worker

    def apply(self, command: str) -> None:
        log.info("control command: %s", command)
        state = self.state
        if command == "pause":
            if not state.remote_paused:
                self.run_hook("before_pause")
            state.remote_paused = True
        elif command == "resume":
            if state.remote_paused:
                self.run_hook("after_pause")
            state.remote_paused = False
        elif command == "stop":
            state.stop = True
        elif command == "kill-job":
            if self.busy():  # as USR1, so the kill happens in the main thread's handler
                os.kill(os.getpid(), signal.SIGUSR1)
        else:
            log.warning("ignoring unknown control command %r", command)
        self.wakeup.wake()
