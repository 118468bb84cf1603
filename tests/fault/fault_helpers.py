"""Small helpers of the fault suite: waiting without timed assertions, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
_OUR_ENV = ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "RESQUE_NAMESPACE", "PREFIX")
CLI = [sys.executable, "-c", "from resque_compat.cli import main; main()"]


def wait_for(
    check: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; a generous bound, never an assertion on speed.

    Redis errors while polling count as "not yet" (the server may be restarting).
    """
    deadline = time.monotonic() + timeout
    while True:
        value: T | None
        try:
            value = check()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(interval)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``resque-compat ARGS`` in a child process, as an operator runs it."""
    full_env = {k: v for k, v in os.environ.items() if k not in _OUR_ENV}
    full_env.update(PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the CLI failed cleanly: non-zero exit, one ``resque-compat:`` line, no traceback."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("resque-compat: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def namespace_keys(client: redis.Redis, namespace: str = "resque") -> set[bytes]:
    return set(client.scan_iter(match=f"{namespace}:*", count=1000))
