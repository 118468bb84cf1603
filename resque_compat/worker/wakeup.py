"""The self-pipe that wakes the worker's waits (idle sleeps, a forked job's wait) when a signal
handler or a control command changed what the worker should do; a concurrency process's
supervisor and a pool's wait on one too."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select


class Wakeup:
    """``wake()`` from a signal handler or the heartbeat thread; ``sleep()`` and the fork
    executor's ``select`` return early when it is called."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        for fd in (self.read_fd, self.write_fd):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.write_fd, b"!")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.read_fd, 512):
                pass

    def sleep(self, seconds: float) -> None:
        """Sleep, woken early by any signal the worker handles."""
        if seconds <= 0:
            return
        ready, _, _ = select.select([self.read_fd], [], [], seconds)
        if ready:
            self.drain()

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
