"""Small helpers of the fault suite: running the CLI as an operator does, listing a namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[2]
_OUR_ENV = ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "RESQUE_NAMESPACE", "PREFIX")
CLI = [sys.executable, "-c", "from resque_compat.cli import main; main()"]


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
