"""Unregistering workers and pruning dead ones, with Ruby Resque 3.0's rules.

At startup and then every ½-1 heartbeat interval (jittered; the worker's heartbeat thread),
under the ``pruning_dead_workers_in_progress`` lock (``SET NX EX <heartbeat>``, as Ruby takes
it; released by compare-and-delete when the prune is done, so a restarted worker does not find
it held for a minute; a lock whose holder is a dead process of this host is broken at once):

1. every worker whose heartbeat is older than the prune interval is unregistered, whatever its
   host, and a job it held is failed with ``Resque::PruneDeadWorkerDirtyExit``;
2. every other registered worker on this host with our queue set (or all of them if we listen
   on ``*``) whose pid is not a live resque process is unregistered, failing its job with
   ``Resque::DirtyExit`` "Job still being processed".

Ids whose pid is not a number (node-resque's ``MultiWorker``: ``host:pid+1:queues``) are never
pruned by rule 2, and a process counts as live when its command line contains ``resque`` (the
titles of Ruby, PHP and our workers all do). A dead worker's in-flight item (reliable mode's
job, or a blocking pop not yet recorded) goes back to the head of its queue instead of being
failed. A dead worker whose forked job child still runs (its title ends ``(worker <pid>)``) is
left alone until the child has recorded the job. A tracked job's status ends with the claim:
3 with the 24 h expiry when failed, 1 when requeued.

The lock expires after one heartbeat interval, so two pruners can reach the same dead worker.
Its job is claimed in one script (``claim_job``): exactly one of our pruners requeues or fails
it. A Ruby or PHP pruner reads ``worker:<id>`` and writes its failure as separate commands; if
our claim lands between them, a reliable-mode job is both requeued and failed (run again,
never lost). The failure record and the unregister pipeline are Ruby's, byte for byte.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Iterable

import redis

from resque_compat.failures import Failures
from resque_compat.protocol import (
    JobPayload,
    JobStatus,
    Keys,
    ProtocolError,
    StatusRecord,
    WorkerId,
    WorkingOn,
    decode_json,
    timefmt,
)
from resque_compat.protocol.keys import FAILED_LIST, Stat
from resque_compat.protocol.scripts import CLAIM_DEAD_WORKER, RELEASE_LOCK
from resque_compat.replies import raw, text
from resque_compat.store.workers import WorkerStore
from resque_compat.worker import procline
from resque_compat.worker.runner import failure_record

log = logging.getLogger("resque_compat.worker")


#: Rounds of read-then-claim before giving up on a worker whose state keeps changing (only a
#: worker that is in fact alive, pruned for a stale heartbeat, does that).
_CLAIM_ATTEMPTS = 20
#: ``CLAIM_DEAD_WORKER``'s answers.
_CHANGED, _REQUEUED, _FAILED = -1, 1, 2


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
    both per-worker stats. Returns what happened to a held job ("failed", "requeued"), or
    None when there was none or another pruner claimed it first (see ``claim_job``)."""
    what = claim_job(client, keys, failures, worker_id, exception=exception, error=error, count_failure=count_failure)
    WorkerStore(client, keys).unregister(worker_id)
    return what


def claim_job(
    client: redis.Redis,
    keys: Keys,
    failures: Failures,
    worker_id: str,
    *,
    exception: str = "Resque::DirtyExit",
    error: str | None = "Job still being processed",
    count_failure: bool = True,
    orphan: bool = False,
) -> str | None:
    """Take the job a dead worker held, atomically (``CLAIM_DEAD_WORKER``): of any number of
    pruners racing for one worker exactly one requeues its in-flight items or records its
    failure; the others find nothing. ``orphan``: only in-flight items, and only while the
    worker is unregistered (a peer's pruner dropped it without knowing the list)."""
    claim = client.register_script(CLAIM_DEAD_WORKER)
    inflight = keys.inflight(worker_id)
    for _ in range(_CLAIM_ATTEMPTS):
        record_raw = b"" if orphan else raw(client.get(keys.worker(worker_id)) or b"")
        first = raw(client.lindex(inflight, 0) or b"")
        record = _decode_record(record_raw)
        queue = record.queue if record is not None else _fallback_queue(first, worker_id) if first else ""
        failure = b""
        list_name = FAILED_LIST
        counted = False
        # a default-mode --prefetch worker's started job (its record says "prefetched": it is no
        # longer in the list, which holds the unstarted rest): failed while the rest is requeued
        started_elsewhere = bool(first) and record is not None and record.extra.get("prefetched") is True
        if (not first or started_elsewhere) and record_raw and error is not None:
            if record is not None:
                failure = failure_record(
                    bytes(record.payload) if _is_object(record.payload) else _string_payload(record.payload),
                    exception=exception,
                    error=error.replace("{class}", _class_of(bytes(record.payload))),
                    backtrace=[],
                    worker_id=worker_id,
                    queue=record.queue,
                )
                list_name, counted = failures.list_for(record.queue), count_failure
            else:
                failure = failure_record(
                    record_raw, exception=exception, error=error, backtrace=[], worker_id=worker_id, queue=""
                )
                list_name = failures.list_for("")
        status_key, failed_status, waiting_status = _ending_statuses(
            client, keys, first or (bytes(record.payload) if record is not None else b"")
        )
        reply = claim(
            keys=[
                keys.worker(worker_id), inflight, keys.queue(queue), keys.queues, keys.workers,
                keys.failed_list(list_name), keys.failed_queues, keys.stat(Stat.FAILED),
                status_key or keys.worker(worker_id),
            ],
            args=[
                "orphan" if orphan else "dead", worker_id, record_raw, first, queue, failure,
                "" if list_name == FAILED_LIST else list_name, "1" if counted else "",
                failed_status, waiting_status,
            ],
        )  # fmt: skip
        what, moved = int(reply[0]), int(reply[1])
        if what == _CHANGED:
            continue
        if what == _REQUEUED:
            log.info("requeued %d in-flight job(s) of %s to %s", moved, worker_id, queue)
            return "failed" if failure else "requeued"
        if what == _FAILED:
            if record is None:
                log.warning("worker %s held an unreadable job record; kept in failed as text", worker_id)
            return "failed"
        return None
    log.warning("worker %s kept changing while being pruned; left as it is", worker_id)
    return None


def _ending_statuses(client: redis.Redis, keys: Keys, payload: bytes) -> tuple[str | None, bytes, bytes]:
    """A tracked job's status key and what it becomes when its dead worker's job is failed
    (3) or requeued (1), so no status stays "running" once no process runs the job. Empty
    when the job is not tracked or its status cannot be read (then it is left alone)."""
    try:
        job = JobPayload.decode(payload)
    except ProtocolError:
        return None, b"", b""
    if not job.job_id:
        return None, b"", b""
    key = keys.status(job.job_id, job.status_prefix)
    current = client.get(key)
    if current is None:
        return None, b"", b""
    try:
        status = StatusRecord.decode(raw(current))
    except ProtocolError:
        return None, b"", b""
    if status.state in (JobStatus.FAILED, JobStatus.COMPLETE):
        return None, b"", b""  # already final: a late pruner does not overwrite it
    return key, status.advanced(JobStatus.FAILED).encode(), status.advanced(JobStatus.WAITING).encode()


def _decode_record(raw: bytes) -> WorkingOn | None:
    if not raw:
        return None
    try:
        return WorkingOn.decode(raw)
    except ProtocolError:
        return None


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


def _fallback_queue(item: bytes, worker_id: str) -> str:
    """Where an in-flight item goes when its worker record is gone: the payload's own
    ``queue`` (node-resque writes one), else the first plain queue of the worker id."""
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


def resque_processes() -> dict[str, str] | None:
    """pid -> command line of processes whose command line contains ``resque`` (php-resque's
    test, which is wider than Ruby's ``resque-[0-9]``): from /proc, else ``ps``. None when
    unknowable."""
    found: dict[str, str] = {}
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
                found[entry] = cmdline.replace(b"\0", b" ").decode(errors="replace")
        return found
    try:
        out = subprocess.run(["ps", "-A", "-o", "pid=,command="], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        pid, _, command = line.strip().partition(" ")
        if "resque" in command and "resque-web" not in command:
            found[pid] = command
    return found


def _finishing_child(processes: dict[str, str], worker_pid: str) -> str | None:
    """The pid of a live job child of the dead worker ``worker_pid`` (its title ends with
    ``procline.child_mark``): it finishes and records its job itself, so the worker is left
    registered until it has; pruning it now would record a job that completes as failed."""
    mark = procline.child_mark(worker_pid)
    for pid, command in processes.items():
        if command.rstrip().endswith(mark):
            return pid
    return None


def acquire_lock(client: redis.Redis, keys: Keys, me: str, seconds: float, host: str | None = None) -> bool:
    """Ruby's ``SET pruning_dead_workers_in_progress <id> EX <heartbeat> NX``. A lock held by a
    worker of this host whose process is gone (it died mid-prune, or was killed before Ruby
    semantics let the lock expire) is broken at once, by compare-and-delete."""
    ex = max(1, int(seconds))
    if client.set(keys.prune_lock, me, ex=ex, nx=True):
        return True
    holder = client.get(keys.prune_lock)
    if holder is None:
        return bool(client.set(keys.prune_lock, me, ex=ex, nx=True))
    parsed = WorkerId.parse(text(holder))
    if parsed.host != (host or socket.gethostname()) or not parsed.pid.isdigit() or _alive(parsed.pid):
        return False
    if client.register_script(RELEASE_LOCK)(keys=[keys.prune_lock], args=[text(holder)]):
        log.info("broke the prune lock of %s (its process is gone)", text(holder))
    return bool(client.set(keys.prune_lock, me, ex=ex, nx=True))


def release_lock(client: redis.Redis, keys: Keys, me: str) -> None:
    """Compare-and-delete: only our own lock is released."""
    client.register_script(RELEASE_LOCK)(keys=[keys.prune_lock], args=[me])


def _alive(pid: str) -> bool:
    """A live resque process (the pruner's own test; a zombie or a reused pid is not one)."""
    found = resque_processes()
    return found is None or pid in found


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
    return try_prune(
        client, keys, failures, me, queues,
        heartbeat_interval=heartbeat_interval, prune_interval=prune_interval, host=host,
    ) or []  # fmt: skip


#: (worker id, stored value) pairs already warned about: a periodic prune repeats itself every
#: few seconds, the operator needs the line once (bounded: cleared when it grows large)
_warned: set[tuple[str, str]] = set()


def _warn_once(worker_id: str, value: str, message: str, *args: object) -> None:
    if (worker_id, value) in _warned:
        log.debug(message, *args)
        return
    if len(_warned) >= 1000:
        _warned.clear()
    _warned.add((worker_id, value))
    log.warning(message, *args)


def try_prune(
    client: redis.Redis,
    keys: Keys,
    failures: Failures,
    me: str,
    queues: Iterable[str],
    *,
    heartbeat_interval: float,
    prune_interval: float,
    host: str | None = None,
) -> list[str] | None:
    """One prune under the lock, which is released when done. None: another pruner holds it."""
    hostname = host or socket.gethostname()
    if not acquire_lock(client, keys, me, heartbeat_interval, hostname):
        return None
    try:
        return _prune(client, keys, failures, me, set(queues), hostname=hostname, prune_interval=prune_interval)
    finally:
        try:
            release_lock(client, keys, me)
        except redis.RedisError as exc:  # it expires by itself
            log.debug("could not release the prune lock: %s", exc)


def _prune(
    client: redis.Redis,
    keys: Keys,
    failures: Failures,
    me: str,
    my_queues: set[str],
    *,
    hostname: str,
    prune_interval: float,
) -> list[str]:
    workers = sorted(text(m) for m in client.smembers(keys.workers))
    beats = {text(k): text(v) for k, v in client.hgetall(keys.heartbeat).items()}
    secs, _ = client.time()
    now = float(secs)
    pruned: list[str] = []
    for worker_id, beat in sorted(beats.items()):
        if worker_id == me:
            continue
        seen = timefmt.parse(beat)
        if seen is None:
            _warn_once(worker_id, beat, "not pruning %s: its heartbeat %r is not a time", worker_id, beat[:100])
            continue
        if now - seen.timestamp() <= prune_interval:
            continue
        what = unregister(
            client,
            keys,
            failures,
            worker_id,
            exception="Resque::PruneDeadWorkerDirtyExit",
            error=f"Worker {worker_id} did not gracefully exit while processing {{class}}",
        )
        log.warning("pruned dead worker %s (last heartbeat %s)%s", worker_id, beat, _held(what))
        pruned.append(worker_id)
    live: dict[str, str] | None = None
    for worker_id in workers:
        if worker_id in pruned or worker_id == me:
            continue
        parsed = WorkerId.parse(worker_id)
        if parsed.host != hostname or not parsed.pid.isdigit():
            continue
        if "*" not in my_queues and set(parsed.queue_list) != my_queues:
            continue
        if live is None:
            live = resque_processes()
            if live is None:
                log.warning("cannot list processes; not pruning same-host workers")
                return pruned
        if parsed.pid in live:
            continue
        child = _finishing_child(live, parsed.pid)
        if child is not None:
            log.info("worker %s is gone; its job child %s is finishing the job", worker_id, child)
            continue
        what = unregister(client, keys, failures, worker_id)
        log.warning("pruned dead worker %s (pid %s is gone)%s", worker_id, parsed.pid, _held(what))
        pruned.append(worker_id)
    return pruned


def _held(what: str | None) -> str:
    if what == "failed":
        return "; its job was recorded as failed (DirtyExit)"
    if what == "requeued":
        return "; its job went back to its queue"
    return ""


def requeue_orphans(client: redis.Redis, keys: Keys, failures: Failures) -> int:
    """Reliable mode: in-flight lists whose worker is no longer registered (a Ruby or PHP
    pruner unregistered it without knowing the list) go back to their queues. Whether the
    worker is registered is checked again inside the claim: a worker registering after the
    SMEMBERS here keeps its list. Returns how many lists went back."""
    registered = {text(m) for m in client.smembers(keys.workers)}
    moved = 0
    for key in client.scan_iter(match=keys.inflight_pattern, count=1000):
        worker_id = keys.inflight_worker(text(key))
        if worker_id is None or worker_id in registered:
            continue
        if claim_job(client, keys, failures, worker_id, orphan=True) == "requeued":
            moved += 1
    return moved
