"""The words a resque-compat worker takes from its control list (``Keys.control``).

The dashboard and the API (``Resque.control``) push them; the worker pops one between jobs in
the cycle script and, while a job runs, from its heartbeat thread. Ruby, PHP and Node workers
have no such list.
"""

from __future__ import annotations

import enum


class ControlCommand(enum.StrEnum):
    PAUSE = "pause"  #: stop reserving until resume (the USR2 / CONT of a remote host)
    RESUME = "resume"
    STOP = "stop"  #: finish the job in hand, then exit (QUIT)
    KILL_JOB = "kill-job"  #: kill the job in hand, keep working (USR1)

    @classmethod
    def parse(cls, word: str) -> ControlCommand | None:
        """None for a word this version does not know (a newer version's, a person's): the
        worker logs and ignores it, the senders refuse it."""
        try:
            return cls(word)
        except ValueError:
            return None

    @classmethod
    def words(cls) -> list[str]:
        return [command.value for command in cls]
