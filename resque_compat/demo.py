"""``resque-compat demo``: one tracked job, start to finish, in the real Redis layout.

It enqueues a php-resque-style tracked job, runs a worker on it and prints the job's status
each time it changes (``1 waiting``, ``2 running``, ``4 complete``), on ``$REDIS_URL`` when
given, else on a private redis-server that is stopped afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from resque_compat.client import Resque
from resque_compat.connection import parse_address, redact
from resque_compat.embedded import RedisServer
from resque_compat.failure import Failures
from resque_compat.protocol import (
    STATUS_TTL,
    Failure,
    JobPayload,
    JobStatus,
    Keys,
    ProtocolError,
    Raw,
    StatusRecord,
    WorkingOn,
    timefmt,
    worker_id,
)
from resque_compat.registry import JobRegistry, default_registry, job

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
        stop_worker = start_worker(resque, queue)
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


# ==== THE ONE PLACE TO SWITCH TO THE REAL WORKER ====================================
# Until resque_compat.worker lands, the job runs in a thread of this process through the
# same keys and records a worker writes. To switch: start the real worker here (for one
# job, on ``queue``, with DEMO_CLASS registered) and return a function that stops it.
def start_worker(resque: Resque, queue: str) -> Callable[[], None]:
    """Run a worker on ``queue`` in the background until it has done one job; returns a stopper."""
    client = redis.Redis(connection_pool=resque.redis.connection_pool)
    done = threading.Event()
    thread = threading.Thread(
        target=_work_one, args=(client, resque.keys, queue, default_registry, done), name="demo-worker", daemon=True
    )
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(10)

    return stop


def _work_one(client: redis.Redis, keys: Keys, queue: str, registry: JobRegistry, stop: threading.Event) -> None:
    """Reserve one job and perform it, writing what Ruby's and php-resque's workers write."""
    wid = worker_id([queue])
    pipe = client.pipeline(transaction=False)
    pipe.sadd(keys.workers, wid)
    pipe.set(keys.worker_started(wid), timefmt.started())
    pipe.hset(keys.heartbeat, wid, timefmt.heartbeat())
    pipe.execute()
    try:
        raw: bytes | None = None
        while raw is None and not stop.is_set():
            popped = client.lpop(keys.queue(queue))
            raw = popped if isinstance(popped, bytes) else None
            if raw is None:
                time.sleep(0.05)
        if raw is not None:
            _perform(client, keys, wid, queue, raw, registry=registry)
    finally:
        pipe = client.pipeline(transaction=False)
        pipe.srem(keys.workers, wid)
        pipe.delete(keys.worker(wid), keys.worker_started(wid), keys.stat("processed", wid), keys.stat("failed", wid))
        pipe.hdel(keys.heartbeat, wid)
        pipe.execute()


def _perform(client: redis.Redis, keys: Keys, wid: str, queue: str, raw: bytes, *, registry: JobRegistry) -> None:
    payload = JobPayload.decode(raw)
    _set_status(client, keys, payload, JobStatus.RUNNING)
    client.set(keys.worker(wid), _working_on(queue, raw))
    try:
        definition = registry.lookup(payload.class_)
        definition.target(*payload.args)
    except Exception as exc:  # any job error is recorded as a failure
        record = Failure(
            failed_at=timefmt.failed_at(), payload=Raw(raw), exception=type(exc).__name__, error=str(exc),
            backtrace=[], worker=wid, queue=queue,
        )  # fmt: skip
        pipe = client.pipeline(transaction=False)
        Failures(client, keys).save(record, pipe)
        pipe.incr(keys.stat("failed"))
        pipe.incr(keys.stat("failed", wid))
        pipe.execute()
        _set_status(client, keys, payload, JobStatus.FAILED)
    else:
        _set_status(client, keys, payload, JobStatus.COMPLETE)
    pipe = client.pipeline(transaction=False)
    pipe.incr(keys.stat("processed"))
    pipe.incr(keys.stat("processed", wid))
    pipe.delete(keys.worker(wid))
    pipe.execute()


def _working_on(queue: str, raw: bytes) -> bytes:
    return WorkingOn(queue=queue, run_at=timefmt.run_at(), payload=Raw(raw)).encode()


def _set_status(client: redis.Redis, keys: Keys, payload: JobPayload, status: JobStatus) -> None:
    """php-resque's update: only when tracked; a final status expires after 24 h."""
    if payload.job_id is None:
        return
    key = keys.status(payload.job_id, payload.status_prefix)
    current = client.get(key)
    if current is None:
        return
    try:
        record = StatusRecord.decode(current).advanced(status)
    except ProtocolError:
        return
    if status.final:
        client.set(key, record.encode(), ex=STATUS_TTL)
    else:
        client.set(key, record.encode())
