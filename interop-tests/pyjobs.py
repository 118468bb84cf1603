"""Job classes for resque-compat's own worker in the interop suite (``work --import pyjobs``).

They mirror the peers' drivers (``peers/*``): each echo job RPUSHes
``{"by": "python", "class": ..., "args": ..., "id": ...}`` to ``<ns>:interop:results`` so a test
can tell which implementation ran a job, how often, and with which arguments. Ruby-style jobs
record their positional arguments; the PHP-style ``App\\Jobs\\Echo`` records ``self.args``
(the payload's ``args[0]``), as php-resque's ``$this->args`` would be.

The worker is started with ``REDIS_URL`` / ``RESQUE_NAMESPACE`` in its environment, which is
where these jobs find the Redis and namespace to record into.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import resque_compat
from resque_compat import Resque
from resque_compat.jobs.progress import StatusJob

RESULTS = "interop:results"
_clients: dict[int, Resque] = {}


def _client() -> Resque:
    """One client per process: a forking worker must not share its parent's sockets."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = Resque()
    return _clients[pid]


def record(class_name: str, args: Any, job_id: str | None = None) -> None:
    client = _client()
    entry = {"by": "python", "class": class_name, "args": args, "id": job_id}
    client.redis.rpush(client.keys.key(RESULTS), json.dumps(entry, ensure_ascii=False, separators=(",", ":")))


def _echo_as(name: str) -> Any:
    def perform(*args: Any) -> None:
        record(name, list(args))

    perform.__name__ = perform.__qualname__ = "echo_" + name.replace(":", "_").replace("\\", "_")
    return perform


interop_echo = resque_compat.job("Interop::Echo")(_echo_as("Interop::Echo"))
interop_echo_php_name = resque_compat.job("Interop_Echo")(_echo_as("Interop_Echo"))
node_echo = resque_compat.job("echo")(_echo_as("echo"))


@resque_compat.job("Interop::Sleep", "Interop_Sleep")
def interop_sleep(*args: Any) -> None:
    """Sleeps ``args[0]`` seconds (or ``args[0]["seconds"]``), then records: keeps a worker busy."""
    first = args[0] if args else 1
    seconds = first.get("seconds", 1) if isinstance(first, dict) else first
    time.sleep(float(seconds))
    record("Interop::Sleep", list(args))


@resque_compat.job("Interop::Hold")
def interop_hold(tag: str) -> None:
    """Holds its worker until ``<ns>:interop:open`` exists, then records: a job in flight for as
    long as a test needs (a concurrency worker's slots, while peers start and prune)."""
    client = _client()
    while not client.redis.exists(client.keys.key("interop:open")):
        time.sleep(0.02)
    record("Interop::Hold", [tag])


@resque_compat.job("Interop::Fail", "Interop_Fail")
def interop_fail(*args: Any) -> None:
    raise RuntimeError("interop failure")


@resque_compat.job("App\\Jobs\\Echo")
class AppJobsEcho:
    """PHP style: the worker sets ``args`` (``args[0]``), ``queue`` and ``job_id``."""

    args: Any
    queue: str
    job_id: str | None

    def perform(self) -> dict[str, Any]:
        record("App\\Jobs\\Echo", self.args, getattr(self, "job_id", None))
        return {"ok": True}


# -- resque-retry and resque-status (test_plugins.py, peers/ruby/plugins.rb) ---------------------


@resque_compat.job("Interop::RetryFlaky", retry=resque_compat.Retry(limit=3))
def interop_retry_flaky(*args: Any) -> None:
    """Always fails: with resque-retry's ``@retry_limit = 3`` the fourth run gives up."""
    record("Interop::RetryFlaky", list(args))
    raise RuntimeError("python flaky")


@resque_compat.job("Interop::DelayedRetry", retry=resque_compat.Retry(limit=2, delay=1))
def interop_delayed_retry(name: str) -> None:
    """Fails its first run; the retry goes through resque-scheduler's delayed layout (1 s)."""
    record("Interop::DelayedRetry", [name])
    client = _client()
    if int(client.redis.incr(client.keys.key(f"interop:runs:{name}"))) == 1:
        raise RuntimeError("first run fails")


@resque_compat.job("Interop::Report", status=True)
class InteropReport(StatusJob):
    """A resque-status job: ``steps`` progress reports, ``pause`` seconds apart."""

    def perform(self) -> None:
        steps = int(self.options.get("steps", 3))
        for i in range(steps):
            self.at(i + 1, steps, f"step {i + 1}")
            time.sleep(float(self.options.get("pause", 0)))
        record("Interop::Report", [self.uuid, self.options])
