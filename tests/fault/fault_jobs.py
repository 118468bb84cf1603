"""Jobs the fault suite's workers run (``resque-compat work -i tests/fault/fault_jobs.py``).

Each run records itself outside the Resque namespace, on ``$FAULT_REDIS_URL`` (the real
Redis, not the proxy, so the record survives the faults aimed at the worker):

* ``fault:running`` (hash): tag -> ``"<pid> <ppid>"`` while the job runs, so a test can
  kill exactly the process that holds a job, mid-job;
* ``fault:done`` (list): ``"<tag> <run token>"`` when it finishes; a resent RPUSH repeats the
  token (the job resends it until acknowledged), a second run has a new one, so runs are
  counted exactly.

While the key ``fault:hold`` exists, jobs wait (up to 60 s) before finishing: the test
decides when "mid-job" ends.
"""

from __future__ import annotations

import os
import time
import uuid

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from resque_compat import job

_client: dict[int, redis.Redis] = {}
#: the finish record through an outage: resent every 50 ms for up to a minute (same token)
_RESEND = Retry(ConstantBackoff(0.05), retries=1200)


def _redis() -> redis.Redis:
    """One client per process (a forked child must not share its parent's socket)."""
    pid = os.getpid()
    if pid not in _client:
        _client[pid] = redis.Redis.from_url(os.environ["FAULT_REDIS_URL"], socket_timeout=10)
    return _client[pid]


@job("FaultJob")
def fault_job(tag: str, seconds: float = 0.0) -> None:
    """Record the run, wait while held (or ``seconds``), record the finish."""
    client = _redis()
    token = uuid.uuid4().hex
    client.hset("fault:running", tag, f"{os.getpid()} {os.getppid()}")
    deadline = time.monotonic() + 60
    while client.exists("fault:hold") and time.monotonic() < deadline:
        time.sleep(0.01)
    if seconds:
        time.sleep(seconds)
    # the finish record is the job's last act: a job whose own Redis call meets an outage
    # raises before it, so "completed" never counts a job that ended up failing. The record
    # itself can land with its reply lost (Redis killed between the write and the reply):
    # resent until acknowledged (for up to a minute), or the job would fail with its record written
    client.hdel("fault:running", tag)
    _RESEND.call_with_retry(lambda: client.rpush("fault:done", f"{tag} {token}"), lambda _exc: None)


@job("QuickJob")
def quick_job(n: int) -> int:
    """No I/O at all: the soak's job, so the worker's own costs are what is measured."""
    return n * 2


@job("HangJob")
def hang_job(tag: str) -> None:
    """Runs far past any test timeout."""
    _redis().hset("fault:running", tag, f"{os.getpid()} {os.getppid()}")
    time.sleep(120)


@job("StubbornJob")
def stubborn_job(tag: str) -> None:
    """Catches the termination exception (``TERM_CHILD``) and goes on for up to 60 s: a job
    slow to stop, so a second TERM/INT has something to cut short. The running record is
    written inside the ``try``: a TERM sent as soon as it shows may arrive while the HSET
    still reads its reply, and must be caught there too (a child raises it once)."""
    client = _redis()
    deadline = time.monotonic() + 60
    try:
        client.hset("fault:running", tag, f"{os.getpid()} {os.getppid()}")
        _stall(deadline)
    except BaseException:  # the point: a job that will not stop
        client.hset("fault:termed", tag, "1")
        _stall(deadline)


def _stall(deadline: float) -> None:
    while time.monotonic() < deadline:
        time.sleep(0.05)
