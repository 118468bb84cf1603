"""Unregistering workers and pruning dead ones, with Ruby Resque 3.0's rules.

At startup, under the ``pruning_dead_workers_in_progress`` lock (``SET NX EX <heartbeat>``):

1. every worker whose heartbeat is older than the prune interval is unregistered, whatever its
   host, and a job it held is failed with ``Resque::PruneDeadWorkerDirtyExit``;
2. every other registered worker on this host with our queue set (or all of them if we listen
   on ``*``) whose pid is not a live resque process is unregistered, failing its job with
   ``Resque::DirtyExit`` "Job still being processed".

Ids whose pid is not a number (node-resque's ``MultiWorker``: ``host:pid+1:queues``) are never
pruned by rule 2, and a process counts as live when its command line contains ``resque`` (the
titles of Ruby, PHP and our workers all do). A dead worker's reliable-mode in-flight job goes
back to the head of its queue instead of being failed.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Iterable

import redis

from resque_compat.failure import Failures
from resque_compat.protocol import Keys, ProtocolError, WorkerId, WorkingOn, decode_json, timefmt
from resque_compat.protocol.scripts import REQUEUE_INFLIGHT
from resque_compat.worker.runner import failure_record

log = logging.getLogger("resque_compat.worker")


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def unregister(
    client: redis.Redis,
    keys: Keys,
    failures: Failures,
    worker_id: str,
    *,
    exception: str = "Resque::DirtyExit",
    error: str | None = "Job still being processed",
    count_failure: bool = True,
) -> str | None:
    """Ruby's ``unregister_worker``: fail (or, from reliable mode, requeue) a job still held,
    then one pipeline of SREM workers, DEL worker:<id>, DEL :started, HDEL heartbeat and DEL
    both per-worker stats. Returns what happened to a held job ("failed", "requeued") or None."""
    what = None
    record_raw = client.get(keys.worker(worker_id))
    record: WorkingOn | None = None
    if record_raw:
        try:
            record = WorkingOn.decode(record_raw)
        except ProtocolError:
            record = None
    inflight = keys.inflight(worker_id)
    if client.llen(inflight):
        queue = record.queue if record is not None else _fallback_queue(client, inflight, worker_id)
        moved = client.register_script(REQUEUE_INFLIGHT)(keys=[inflight, keys.queue(queue), keys.queues], args=[queue])
        log.info("requeued %s in-flight job(s) of %s to %s", moved, worker_id, queue)
        what = "requeued"
    elif record is not None and error is not None:
        class_name = _class_of(bytes(record.payload))
        text = error.replace("{class}", class_name)
        failure = failure_record(
            bytes(record.payload) if _is_object(record.payload) else _string_payload(record.payload),
            exception=exception,
            error=text,
            backtrace=[],
            worker_id=worker_id,
            queue=record.queue,
        )
        pipe = client.pipeline(transaction=False)
        save_failure(pipe, keys, failures, record.queue, failure)
        if count_failure:
            pipe.incrby(keys.stat("failed"), 1)
        pipe.execute()
        what = "failed"
    elif record_raw and error is not None:
        log.warning("worker %s held an unreadable job record; kept in failed as text", worker_id)
        failure = failure_record(
            _bytes(record_raw), exception=exception, error=error, backtrace=[], worker_id=worker_id, queue=""
        )
        pipe = client.pipeline(transaction=False)
        save_failure(pipe, keys, failures, "", failure)
        pipe.execute()
        what = "failed"
    pipe = client.pipeline(transaction=False)
    pipe.srem(keys.workers, worker_id)
    pipe.delete(keys.worker(worker_id))
    pipe.delete(keys.worker_started(worker_id))
    pipe.hdel(keys.heartbeat, worker_id)
    pipe.delete(keys.stat("processed", worker_id))
    pipe.delete(keys.stat("failed", worker_id))
    pipe.execute()
    return what


def save_failure(pipe: redis.client.Pipeline, keys: Keys, failures: Failures, queue: str, record: bytes) -> None:
    """RPUSH an encoded failure to the backend's list (SADD failed_queues for multi-queue)."""
    name = failures.list_for(queue)
    if name != "failed":
        pipe.sadd(keys.failed_queues, name)
    pipe.rpush(keys.failed_list(name), record)


def _is_object(payload: bytes) -> bool:
    try:
        return isinstance(decode_json(bytes(payload)), dict)
    except ProtocolError:
        return False


def _string_payload(payload: bytes) -> bytes:
    """A record whose payload is a JSON string held the raw text of a malformed item."""
    try:
        value = decode_json(bytes(payload))
    except ProtocolError:
        return bytes(payload)
    return value.encode() if isinstance(value, str) else bytes(payload)


def _class_of(payload: bytes) -> str:
    try:
        value = decode_json(payload)
    except ProtocolError:
        return "?"
    return str(value.get("class", "?")) if isinstance(value, dict) else "?"


def _fallback_queue(client: redis.Redis, inflight: str, worker_id: str) -> str:
    """Where an in-flight item goes when its worker record is gone: the payload's own
    ``queue`` (node-resque writes one), else the first plain queue of the worker id."""
    item = client.lindex(inflight, 0)
    if item is not None:
        try:
            value = decode_json(item)
            if isinstance(value, dict) and isinstance(value.get("queue"), str) and value["queue"]:
                return str(value["queue"])
        except ProtocolError:
            pass
    for queue in WorkerId.parse(worker_id).queue_list:
        if not any(c in queue for c in "*?[]{}"):
            return queue
    return "failed_inflight"


def resque_pids() -> set[str] | None:
    """Pids of processes whose command line contains ``resque`` (php-resque's test, which is
    wider than Ruby's ``resque-[0-9]``): from /proc, else ``ps``. None when unknowable."""
    pids: set[str] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        entries = []
    if entries:
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = fh.read()
            except OSError:
                continue
            if b"resque" in cmdline and b"resque-web" not in cmdline:
                pids.add(entry)
        return pids
    try:
        out = subprocess.run(["ps", "-A", "-o", "pid=,command="], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        pid, _, command = line.strip().partition(" ")
        if "resque" in command and "resque-web" not in command:
            pids.add(pid)
    return pids


def prune_dead_workers(
    client: redis.Redis,
    keys: Keys,
    failures: Failures,
    me: str,
    queues: Iterable[str],
    *,
    heartbeat_interval: float,
    prune_interval: float,
    host: str | None = None,
) -> list[str]:
    """Ruby's ``prune_dead_workers`` (see the module docstring). Returns the pruned ids."""
    if not client.set(keys.prune_lock, me, ex=max(1, int(heartbeat_interval)), nx=True):
        return []
    my_queues = set(queues)
    hostname = host or socket.gethostname()
    workers = sorted(_text(m) for m in client.smembers(keys.workers))
    beats = {_text(k): _text(v) for k, v in client.hgetall(keys.heartbeat).items()}
    secs, _ = client.time()
    now = float(secs)
    pruned: list[str] = []
    for worker_id, beat in sorted(beats.items()):
        if worker_id == me:
            continue
        seen = timefmt.parse(beat)
        if seen is None or now - seen.timestamp() <= prune_interval:
            continue
        log.info("pruning dead worker %s (last heartbeat %s)", worker_id, beat)
        unregister(
            client,
            keys,
            failures,
            worker_id,
            exception="Resque::PruneDeadWorkerDirtyExit",
            error=f"Worker {worker_id} did not gracefully exit while processing {{class}}",
        )
        pruned.append(worker_id)
    live: set[str] | None = None
    for worker_id in workers:
        if worker_id in pruned or worker_id == me:
            continue
        parsed = WorkerId.parse(worker_id)
        if parsed.host != hostname or not parsed.pid.isdigit():
            continue
        if "*" not in my_queues and set(parsed.queue_list) != my_queues:
            continue
        if live is None:
            live = resque_pids()
            if live is None:
                log.warning("cannot list processes; not pruning same-host workers")
                return pruned
        if parsed.pid in live:
            continue
        log.info("pruning dead worker %s (pid %s is gone)", worker_id, parsed.pid)
        unregister(client, keys, failures, worker_id)
        pruned.append(worker_id)
    return pruned


def requeue_orphans(client: redis.Redis, keys: Keys, failures: Failures) -> int:
    """Reliable mode: in-flight lists whose worker is no longer registered (a Ruby or PHP
    pruner unregistered it without knowing the list) go back to their queues."""
    registered = {_text(m) for m in client.smembers(keys.workers)}
    prefix = keys.inflight("")
    moved = 0
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = _text(raw)
        worker_id = key[len(prefix) :]
        if worker_id in registered:
            continue
        queue = _fallback_queue(client, key, worker_id)
        n = int(client.register_script(REQUEUE_INFLIGHT)(keys=[key, keys.queue(queue), keys.queues], args=[queue]))
        if n:
            log.info("requeued %d orphaned in-flight job(s) of %s to %s", n, worker_id, queue)
        moved += n
    return moved
