"""A job whose last act kills its own worker (``resque-compat work -i last_act_jobs.py``), so
the worker dies in the instant the job completes: the window in which a forked child has
finished but its worker has not yet recorded it. It records itself as ``FaultJob`` does."""

from __future__ import annotations

import os
import signal
import uuid

import redis

from resque_compat import job

_client: dict[int, redis.Redis] = {}


@job("LastActJob")
def last_act_job(tag: str) -> None:
    pid = os.getpid()
    if pid not in _client:  # one client per process
        _client[pid] = redis.Redis.from_url(os.environ["FAULT_REDIS_URL"], socket_timeout=10)
    client = _client[pid]
    client.hset("fault:running", tag, f"{pid} {os.getppid()}")
    client.hdel("fault:running", tag)
    client.rpush("fault:done", f"{tag} {uuid.uuid4().hex}")
    os.kill(os.getppid(), signal.SIGKILL)
