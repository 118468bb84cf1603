"""What signals and control commands told the worker, in one place with one writer per field.

Python runs signal handlers in the main thread, between bytecodes of the loop; the heartbeat
thread reads the control list while a job runs. Who writes what:

==================  =====================================================================
field               written by
==================  =====================================================================
``stop``            QUIT, TERM/INT, GRACEFUL_TERM (signal handlers); control ``stop`` (the
                    loop between jobs, the heartbeat thread during one); the loop when a
                    pool supervisor is gone. Only ever set, never cleared.
``stop_now``        TERM/INT (signal handler). Only ever set.
``exit_now``        a second TERM/INT (signal handler). Only ever set.
``paused``          USR2 / CONT (signal handlers).
``remote_paused``   control ``pause`` / ``resume`` (loop or heartbeat thread, see ``stop``).
``shutting_down``   ``Worker.shutdown`` (main thread).
==================  =====================================================================

Everything else the worker changes while running has one owner: the fetcher's counters and
pending finish (the loop), the executor's child and kill request (the loop; a signal handler
only asks for a kill through ``Executor.kill``), the heartbeat's schedule (its thread).
Each field is one bool assignment, so a reader in another thread sees the old or the new value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunState:
    stop: bool = False  # no new jobs; exit when the job in hand is recorded
    stop_now: bool = False  # kill the job in hand, then exit
    exit_now: bool = False  # leave at once; the job in hand is left to the pruner
    paused: bool = False  # USR2
    remote_paused: bool = False  # control "pause"
    shutting_down: bool = False

    @property
    def any_pause(self) -> bool:
        return self.paused or self.remote_paused
