"""Run ``resque-compat`` as a person would: stdin, stdout and stderr on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"


def cli_env(redis_url: str, **extra: str) -> dict[str, str]:
    drop = ("RESQUE_NAMESPACE", "PREFIX", "REDIS_BACKEND", "FAILURE_BACKEND", "QUEUE", "QUEUES", "COUNT", "INTERVAL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), COLUMNS="100", TERM="xterm")
    env.update(extra)
    return env


def in_terminal(
    args: list[str], env: dict[str, str], answer: str | None = None, timeout: float = 60.0
) -> tuple[int, str]:
    """Run ``python -m resque_compat ARGS`` on a pty; ``answer`` is typed once a prompt shows.
    Returns the exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "resque_compat", *args], stdin=slave, stdout=slave, stderr=slave, env=env,
        close_fds=True,
    )  # fmt: skip
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if answer is not None and b"[y/N]" in shown:
                    os.write(master, answer.encode() + b"\n")
                    answer = None
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError("command did not finish:\n" + shown.decode(errors="replace"))
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
    return code, shown.decode(errors="replace").replace("\r\n", "\n")


def piped(args: list[str], env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """The same command from a script: no terminal anywhere."""
    return subprocess.run(
        [sys.executable, "-m", "resque_compat", *args], capture_output=True, text=True, env=env, check=False,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
