"""Helpers for the worker tests: a burst in-process, or ``resque-compat work`` as a real process; waiting for state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from waiting import wait_for

from resque_compat import JobRegistry, Resque
from resque_compat.worker import Worker, WorkerConfig

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def worker_env(job_log: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QUEUE", "QUEUES", "INTERVAL", "BLOCKING", "COUNT")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS)])
    if job_log is not None:
        env["JOB_LOG"] = str(job_log)
    env.update(extra)
    return env


def spawn_worker(
    redis_url: str, *args: str, job_log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``resque-compat --redis URL work -i jobs.worker_jobs ARGS`` in a new process."""
    cmd = [
        sys.executable, "-c", "from resque_compat.cli import main; main()",
        "--redis", redis_url, "work", "-i", "jobs.worker_jobs", "-v", *args,
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, env={**worker_env(job_log), **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def run_burst(redis_url: str, queues: tuple[str, ...] = ("default",), registry: JobRegistry | None = None,
              namespace: str | None = None, **options: Any) -> Worker:  # fmt: skip
    options.setdefault("fork", False)
    config = WorkerConfig(queues=queues, burst=True, **options)
    kwargs: dict[str, Any] = {"host": "vm"}
    if registry is not None:
        kwargs["registry"] = registry
    worker = Worker(config, Resque(redis_url, namespace=namespace), **kwargs)
    assert worker.work() == 0
    return worker


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGQUIT, timeout: float = 20.0) -> str:
    """Signal a worker (``sig=0``: just wait) and wait for it; returns its output."""
    if sig and proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("worker did not exit:\n" + out.decode(errors="replace")) from None
    return out.decode(errors="replace")


def worker_id_of(r: redis.Redis, pid: int, namespace: str = "resque") -> str:
    for member in r.smembers(f"{namespace}:workers"):
        wid = member.decode()
        if wid.split(":")[1] == str(pid):
            return wid
    return ""


def registered(r: redis.Redis, pid: int) -> str:
    return wait_for(lambda: worker_id_of(r, pid), what=f"worker {pid} to register")


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def job_log_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines() if " " in line]
