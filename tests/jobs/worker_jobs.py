"""Jobs for the worker tests: Ruby style, PHP style, hooks, slow, crashing.

Jobs that need to leave a trace append a line to the file named by ``$JOB_LOG`` (one
``<pid> <text>`` line each), so tests can see what ran, where, and in which order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import resque_compat
from resque_compat import DontPerform
from resque_compat.worker import worker_hooks


def note(text: str) -> None:
    path = os.environ.get("JOB_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()} {text}\n")


@resque_compat.job("GoodJob")
def good_job(*args: Any) -> None:
    note(f"GoodJob {list(args)!r}")


@resque_compat.job("BadJob")
def bad_job(*args: Any) -> None:
    raise ArgumentError(f"boom: {list(args)!r}")


class ArgumentError(Exception):
    pass


@resque_compat.job("Noop")
def noop(*args: Any) -> None:
    pass


@resque_compat.job("Sleep")
def sleep_job(seconds: float, tag: str = "") -> None:
    note(f"start {tag}")
    time.sleep(seconds)
    note(f"end {tag}")


@resque_compat.job("Crash")
def crash(code: int = 3) -> None:
    os._exit(code)


@resque_compat.job("Mailer::Welcome")
class Welcome:
    """Ruby style with Resque's hooks (run in alphabetical order of name)."""

    @staticmethod
    def before_perform(*args: Any) -> None:
        note("before_perform")
        if args and args[0] == "skip":
            raise DontPerform()

    @staticmethod
    def before_perform_b(*args: Any) -> None:
        note("before_perform_b")

    @staticmethod
    def around_perform_x(*args: Any) -> Iterator[None]:
        note("around in")
        yield
        note("around out")

    @staticmethod
    def perform(*args: Any) -> None:
        note(f"perform {list(args)!r}")
        if args and args[0] == "fail":
            raise RuntimeError("e1")

    @staticmethod
    def after_perform(*args: Any) -> None:
        note("after_perform")

    @staticmethod
    def on_failure_note(exc: BaseException, *args: Any) -> None:
        note(f"on_failure {type(exc).__name__}")


@resque_compat.job("App\\Jobs\\SendMail", "PHP_Job")
class SendMail:
    """PHP style: args dict, set_up/perform/tear_down, perform's value is the status result."""

    args: dict[str, Any]
    queue: str
    job_id: str | None

    def set_up(self) -> None:
        note("set_up")
        if self.args.get("skip"):
            raise DontPerform()

    def perform(self) -> Any:
        note(f"php perform {self.args!r} {self.queue} {self.job_id}")
        if self.args.get("fail"):
            raise ValueError("Unable to run this job!")
        return {"ok": True, "echo": self.args}

    def tear_down(self) -> None:
        note("tear_down")


@resque_compat.job("Forty")
class Forty:
    def perform(self) -> int:
        return 42


@worker_hooks.before_first_fork
def _first(worker: Any) -> None:
    note("before_first_fork")


@worker_hooks.before_fork
def _before(job: Any) -> None:
    if os.environ.get("JOB_LOG_FORK_HOOKS"):
        note(f"before_fork {job.class_name}")


@worker_hooks.after_fork
def _after(job: Any) -> None:
    if os.environ.get("JOB_LOG_FORK_HOOKS"):
        note(f"after_fork {job.class_name}")
