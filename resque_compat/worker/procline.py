"""The process title: how Ruby and PHP pruners on the same host tell a live worker.

Ruby keeps only processes whose command line matches ``resque-[0-9]`` (or ``resque:work``);
php-resque those containing ``resque``. Every title we set starts ``resque-<version>:``, as
Ruby's does (``resque-3.0.0: Waiting for default``), so neither prunes a live Python worker.
"""

from __future__ import annotations

import os
import threading

from setproctitle import setproctitle

from resque_compat import __version__

_settings = {"prefix": os.environ.get("RESQUE_PROCLINE_PREFIX", "")}
_thread = threading.local()


def silence_thread() -> None:
    """A concurrency slot's thread: its waiting/processing titles are not the process's (its
    supervisor sets one title for all slots)."""
    _thread.silent = True


def configure(prefix: str) -> None:
    """Ruby's ``RESQUE_PROCLINE_PREFIX``: text put before ``resque-<version>``."""
    _settings["prefix"] = prefix


def title(text: str) -> str:
    return f"{_settings['prefix']}resque-{__version__}: {text}"


def set_title(text: str) -> None:
    if not getattr(_thread, "silent", False):
        setproctitle(title(text))


def starting() -> None:
    setproctitle(f"{_settings['prefix']}resque: Starting")


def waiting(queues: list[str] | tuple[str, ...]) -> None:
    set_title("Waiting for " + ",".join(queues))


def processing(queue: str, since: float, class_name: str, worker_pid: int | None = None) -> None:
    """A forked job child adds ``(worker <pid>)``: a same-host pruner that finds the worker
    dead but this child alive leaves the job to the child, which records it itself."""
    mark = f" {child_mark(worker_pid)}" if worker_pid is not None else ""
    set_title(f"Processing {queue} since {int(since)} [{class_name}]{mark}")


def child_mark(worker_pid: int | str) -> str:
    return f"(worker {worker_pid})"


def forked(pid: int, at: float) -> None:
    set_title(f"Forked {pid} at {int(at)}")


def paused() -> None:
    set_title("Paused")
