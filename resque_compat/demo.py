"""``resque-compat demo``: one tracked job, start to finish, in the real Redis layout.

It enqueues a php-resque-style tracked job, runs the real worker on it and prints the job's status
each time it changes (``1 waiting``, ``2 running``, ``4 complete``), on ``$REDIS_URL`` when
given, else on a private redis-server that is stopped afterwards.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from resque_compat.client import Resque
from resque_compat.connection import parse_address, redact
from resque_compat.protocol import StatusRecord
from resque_compat.registry import job
from resque_compat.testing.redis_server import RedisServer

DEMO_CLASS = "Demo::Greet"
Echo = Callable[[str], None]


@job(DEMO_CLASS)
def greet(name: str, seconds: float = 1.0) -> str:
    """The demo job: takes long enough that the ``running`` status is visible."""
    time.sleep(seconds)
    return f"hello, {name}"


def run_demo(redis_spec: str | None, namespace: str | None, queue: str, echo: Echo) -> None:
    """Enqueue, work, follow: the README's first command."""
    with _redis(redis_spec, echo) as url:
        resque = Resque(url, namespace=namespace)
        job_id = resque.enqueue(queue, DEMO_CLASS, "world", track=True)
        assert job_id is not None
        echo(f"enqueued {DEMO_CLASS} on queue {queue!r} in namespace {resque.keys.namespace!r}, job id {job_id}")
        statuses = resque.follow_status(job_id, interval=0.05, timeout=60)
        _print_status(next(statuses), echo)  # waiting, before any worker exists
        stop_worker = start_worker(url, resque.keys.namespace, queue)
        try:
            for record in statuses:
                _print_status(record, echo)
        finally:
            stop_worker()


def _print_status(record: StatusRecord, echo: Echo) -> None:
    state = record.state
    echo(f"{record.status} {state.name.lower() if state else 'unknown'}")


@contextmanager
def _redis(redis_spec: str | None, echo: Echo) -> Iterator[str]:
    if redis_spec:
        echo(f"Redis: {redact(redis_spec)}")
        yield parse_address(redis_spec).url if "://" not in redis_spec else redis_spec
        return
    with RedisServer() as server:
        echo(f"Redis: private redis-server on {server.url} ({server.binary}), stopped when the demo ends")
        yield server.url


def start_worker(url: str, namespace: str, queue: str) -> Callable[[], None]:
    """The real ``resque-compat work --burst`` in a child process, with this module imported
    for its job; returns a function that waits for it (and stops it if it lingers)."""
    command = [
        sys.executable, "-m", "resque_compat", "--redis", url, "--namespace", namespace,
        "work", "--queues", queue, "--burst", "--interval", "0.1", "--import", __name__,
    ]  # fmt: skip
    process = subprocess.Popen(command)

    def stop() -> None:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGQUIT)
            process.wait(10)

    return stop
