"""Jobs for the retry and progress tests (resque-retry and resque-status layouts).

A job that must fail a given number of times counts its runs in Redis (``RUNS_KEY`` below),
so the count survives forked children and pool processes alike.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

import resque_compat
from resque_compat import Retry
from resque_compat.jobs.progress import StatusJob


class SmtpDownError(Exception):
    pass


class BadAddressError(Exception):
    pass


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["PLUGIN_JOBS_REDIS"])


def _run_number(name: str) -> int:
    return int(_redis().incr(f"test:runs:{name}"))


@resque_compat.job("Mailer::Flaky", retry=Retry(limit=3))
def flaky(name: str, fail_times: int) -> None:
    """Fails the first ``fail_times`` runs, then succeeds."""
    if _run_number(name) <= fail_times:
        raise SmtpDownError(f"smtp down (run {name})")


@resque_compat.job("Mailer::Always", retry=Retry(limit=2))
def always(name: str) -> None:
    raise SmtpDownError(f"always {_run_number(name) - 1}")


@resque_compat.job("Mailer::Delayed", retry=Retry(limit=2, backoff=[0, 1, 1]))
def delayed(name: str, fail_times: int) -> None:
    if _run_number(name) <= fail_times:
        raise SmtpDownError("later")


@resque_compat.job("Mailer::Picky", retry=Retry(limit=5, retry_on=(SmtpDownError,), fatal=(BadAddressError,)))
def picky(kind: str) -> None:
    raise BadAddressError("no such user") if kind == "fatal" else ValueError("not retried")


@resque_compat.job("Mailer::EveryAttempt", retry=Retry(limit=1, record_attempts=True))
def every_attempt(name: str) -> None:
    raise SmtpDownError(f"attempt {_run_number(name)}")


@resque_compat.job("Mailer::Crash", retry=Retry(limit=1))
def crash(name: str) -> None:
    if _run_number(name) == 1:
        os.kill(os.getpid(), 9)


@resque_compat.job("Mailer::Tracked", retry=Retry(limit=1))
class TrackedMail:
    """php style, tracked: reports progress, fails once."""

    args: dict[str, Any]

    def perform(self) -> str:
        self.at(1, 4, "connecting")  # type: ignore[attr-defined]
        if _run_number(str(self.args["name"])) == 1:
            raise SmtpDownError("first try")
        self.at(4, 4, "sent")  # type: ignore[attr-defined]
        return "sent"


@resque_compat.job("Mailer::TrackedLater", retry=Retry(limit=1, delay=60))
class TrackedLater(TrackedMail):
    pass


@resque_compat.job("Reports::Build", status=True)
class BuildReport(StatusJob):
    def perform(self) -> None:
        total = int(self.options.get("steps", 3))
        for i in range(total):
            self.at(i + 1, total, f"step {i + 1}")
            time.sleep(float(self.options.get("pause", 0)))
        if self.options.get("custom"):
            self.completed("All done", {"extra": 42})


@resque_compat.job("Reports::Fail", status=True)
class FailingReport:
    def perform(self) -> None:
        self.at(5, 10, "halfway")  # type: ignore[attr-defined]
        raise ValueError(f"boom {self.options['n']}")  # type: ignore[attr-defined]
