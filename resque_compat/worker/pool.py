"""``--count N``: a supervisor that forks N worker processes and keeps them running.

Each child is a full worker with its own pid, hence its own id. The supervisor restarts a
child that dies (not in ``--burst`` mode once a child drained its queues and exited 0),
forwards QUIT, TERM, INT, USR1, USR2 and CONT to every child (as resque/php-resque's
launcher does), and exits once its children are gone after TERM, INT or QUIT. Children stop
by themselves if the supervisor disappears. The supervisor opens no Redis connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from resque_compat.worker import procline
from resque_compat.worker.wakeup import Wakeup

log = logging.getLogger("resque_compat.worker")

_FORWARDED = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
_STOPPING = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT)
#: a child that keeps dying at once is restarted no faster than this
_RESTART_DELAY = 1.0


class Pool:
    """Supervise ``count`` children, each running ``run_worker(slot)`` (returns an exit code;
    ``slot`` is 0 … count-1 and stays with a restarted child, e.g. for a per-slot port)."""

    def __init__(self, count: int, run_worker: Callable[[int], int], *, burst: bool = False) -> None:
        self.count = count
        self.run_worker = run_worker
        self.burst = burst
        self.children: dict[int, int] = {}  # pid -> slot
        self.done_slots: set[int] = set()
        self._stopping: int | None = None
        self._wakeup = Wakeup()  # SIGCHLD and forwarded signals cut the supervisor's wait short
        self._last_start: dict[int, float] = {}

    def run(self) -> int:
        procline.set_title(f"Pool of {self.count} workers")
        for sig in _FORWARDED:
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGCHLD, lambda signum, frame: self._wakeup.wake())
        try:
            while True:
                self._reap()
                if self._stopping is not None or (self.burst and len(self.done_slots) == self.count):
                    if not self.children:
                        return 0
                else:
                    self._fill()
                self._wakeup.sleep(0.25)
        finally:
            for sig in (*_FORWARDED, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)

    def _fill(self) -> None:
        busy = set(self.children.values())
        now = time.monotonic()
        for slot in range(self.count):
            if slot in busy or slot in self.done_slots:
                continue
            if now - self._last_start.get(slot, -_RESTART_DELAY) < _RESTART_DELAY:
                continue
            self._last_start[slot] = now
            self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for sig in (*_FORWARDED, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                self._wakeup.close()
                code = self.run_worker(slot)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("pool child %d (slot %d) failed", os.getpid(), slot)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self.children[pid] = slot
        log.info("pool: started worker pid %d (slot %d)", pid, slot)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self.burst and code == 0:
                self.done_slots.add(slot)
            elif self._stopping is None:
                log.warning("pool: worker pid %d exited (%d); starting another", pid, code)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in _STOPPING:
            self._stopping = signum
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        self._wakeup.wake()
