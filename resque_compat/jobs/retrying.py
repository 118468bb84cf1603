"""Retries on Redis: the worker's side (count the attempt, then retry or give up in one step)
and the operator's (list pending retries, run one now, give one up).

The layout is resque-retry's, so a Ruby resque-retry worker and ours agree on a job's attempts:
the counter ``resque-retry:<Class>[:<digest>]`` (``-1``, then 0, 1, 2 ... INCR'd as each run
starts, DEL'd on success or give-up), the retry itself pushed back to the queue (delay 0) or
into resque-scheduler's delayed layout, and, while a retry is pending, the suppressed failure in
``failure-resque-retry:<...>`` (TTL 2 x delay, as MultipleWithRetrySuppression writes it).
Only the final failure reaches ``failed`` unless the policy records every attempt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from resque_compat.failures import BackendName, failure_list_name
from resque_compat.protocol import Failure, JobPayload, JobStatus, Keys, ProtocolError, StatusRecord, timefmt
from resque_compat.protocol.keys import FAILED_LIST, Stat
from resque_compat.protocol.records import STATUS_TTL
from resque_compat.protocol.retries import PendingRetry, delayed_retry_item, suppressed_failure
from resque_compat.protocol.scripts import RETRY_BEGIN, RETRY_FINISH, RETRY_STEER
from resque_compat.replies import raw, text

if TYPE_CHECKING:
    from resque_compat.jobs.retry import Retry

log = logging.getLogger("resque_compat.worker")


@dataclass(frozen=True)
class Settled:
    """What a failed attempt became: ``retried`` (else given up), when, and the processed count."""

    applied: bool
    processed: int
    retried: bool
    at: int = 0


class WorkerRetries:
    """The worker's retry bookkeeping for the job in hand (one at a time per worker)."""

    def __init__(self, client: redis.Redis, keys: Keys, worker_id: str, backend: BackendName, reliable: bool) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        self.backend = backend
        self.reliable = reliable
        self._begin = client.register_script(RETRY_BEGIN)
        self._finish = client.register_script(RETRY_FINISH)
        self._attempt: tuple[bytes, int] | None = None
        self._tracked: tuple[str, str] | None = None

    def begin(self, class_name: str, args: list[Any], item: bytes, policy: Retry) -> tuple[str, str] | None:
        """Count the run that starts now (its attempt number is kept for :meth:`settle`). Returns
        the ``(job id, status prefix)`` a delayed retry carried for a tracked job, if any."""
        name = Keys.retry_name(class_name, args)
        expire = "" if policy.expire_after is None else repr(float(policy.expire_after))
        delays = [repr(float(d)) for d in (policy.backoff or (policy.delay,))]
        reply = self._begin(
            keys=[self.keys.retry_attempts(name), self.keys.pending_retries], args=[name, expire, *delays]
        )
        self._attempt = (item, int(reply[0]))
        self._tracked = None
        if reply[1]:
            try:
                pending = PendingRetry.decode(raw(reply[1]))
            except ProtocolError:
                return None
            if isinstance(pending.job_id, str) and pending.job_id:
                prefix = pending.status_prefix if isinstance(pending.status_prefix, str) else ""
                self._tracked = (pending.job_id, prefix)
        return self._tracked

    def attempt_of(self, item: bytes) -> int:
        if self._attempt is not None and self._attempt[0] == item:
            return self._attempt[1]
        return 0

    def succeeded(self, class_name: str, args: list[Any]) -> str:
        """``after_perform_retry``: the counter goes, in the cycle call that records the success
        (``Finish.forget``: no round trip of its own); returns its key."""
        self._attempt = self._tracked = None
        return self.keys.retry_attempts(Keys.retry_name(class_name, args))

    def settle(
        self,
        *,
        queue: str,
        item: bytes,
        identity: tuple[str, list[Any]],
        next_attempt: tuple[str, list[Any]] | None,
        policy: Retry,
        retryable: bool,
        tracked: tuple[str, str] | None = None,
        failure: bytes,
        status_key: str | None,
        status: StatusRecord | None,
        attempt: int,
        now: float | None = None,
    ) -> Settled:
        """Retry the failed attempt or give up, as one guarded script call (safe to repeat).

        ``identity`` names the job across attempts (its attempt counter); ``next_attempt`` is the
        payload another attempt is pushed as when it differs from the item (an ActiveJob job carries
        ``executions``); else the item's own bytes go back, byte for byte."""
        keys = self.keys
        class_name = identity[0]
        name = Keys.retry_name(*identity)
        again = item if next_attempt is None else JobPayload.new(*next_attempt).encode()
        retry = retryable and policy.allows(attempt)
        list_name = failure_list_name(self.backend, queue)
        record = failure if (policy.record_attempts or not retry) else b""
        t = time.time() if now is None else now
        status_bytes, status_ttl = b"", ""
        if status_key is not None and status is not None:
            state = JobStatus.WAITING if retry else JobStatus.FAILED
            status_bytes = status.advanced(state).encode()
            status_ttl = "" if retry else str(STATUS_TTL)
        mode, retry_bytes, member, ts = "give-up", b"", "", 0
        retry_list, retry_set = keys.queue(queue), keys.queues
        suppressed, ttl = b"", 0
        entry = b""
        if retry:
            delay = policy.delay_after(attempt)
            if delay <= 0:
                mode, retry_bytes, member, ts = "now", again, queue, int(t)
            else:
                ts = int(t + delay)
                retry_bytes = delayed_retry_item(again, queue)
                mode, member = "later", keys.delayed_member(ts)
                retry_list, retry_set = keys.delayed(ts), keys.timestamps(retry_bytes.decode())
                if not policy.record_attempts:
                    suppressed, ttl = suppressed_failure(failure, t), 2 * delay
            runs = policy.runs
            pending = PendingRetry(
                class_=class_name,
                queue=queue,
                where="queue" if mode == "now" else "delayed",
                at=ts,
                attempt=attempt + 2,
                runs=runs or 0,
                item=retry_bytes.decode(),
                payload=again.decode("utf-8", errors="replace"),
                failure=failure.decode("utf-8", errors="replace"),
                recorded=bool(record),
                retry_name=name,
            )
            carried = tracked or self._tracked
            if carried is not None:
                pending.job_id = carried[0]
                if carried[1]:
                    pending.status_prefix = carried[1]
            entry = pending.encode()
        reply = self._finish(
            keys=[
                keys.worker(self.worker_id),
                keys.stat(Stat.PROCESSED),
                keys.stat(Stat.PROCESSED, self.worker_id),
                keys.stat(Stat.FAILED),
                keys.stat(Stat.FAILED, self.worker_id),
                keys.inflight(self.worker_id),
                status_key or keys.worker(self.worker_id),
                keys.retry_attempts(name),
                keys.retry_failure(name),
                retry_list,
                retry_set,
                keys.delayed_schedule,
                keys.failed_list(list_name),
                keys.failed_queues,
                keys.pending_retries,
            ],
            args=[
                item,
                mode,
                retry_bytes,
                member,
                str(ts),
                suppressed,
                str(ttl),
                record,
                "" if list_name == FAILED_LIST else list_name,
                status_bytes,
                status_ttl,
                "1" if self.reliable else "",
                name,
                entry,
            ],
        )
        self._attempt = self._tracked = None
        return Settled(bool(int(reply[0])), int(reply[1]), retry, ts)


def retry_line(class_name: str, queue: str, *, attempt: int, policy: Retry, settled: Settled, failure: bytes) -> str:
    """The worker's log line for a settled failure: attempt n of m, and the next run's time."""
    try:
        record = Failure.decode(failure)
        why = f"{record.exception}: {record.error}"
    except ProtocolError:
        why = "failed"
    runs = policy.runs
    of = f"of {runs}" if runs is not None else "(no limit)"
    head = f"(Job{{{queue}}} | {class_name}) attempt {attempt + 1} {of} failed ({why})"
    if not settled.applied:  # a pruner (or this very call, before its reply was lost) finished it
        return f"failed: {head}; the job was already finished elsewhere, nothing more recorded"
    if not settled.retried:
        return f"gave up: {head}; recorded in failed"
    return f"retrying: {head}; attempt {attempt + 2} {of}, next run at {timefmt.run_at(settled.at)}"


@dataclass(frozen=True)
class PendingEntry:
    """One pending retry as read back: the entry (None when unreadable) and its stored bytes."""

    name: str
    raw: bytes
    entry: PendingRetry | None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.entry is None:
            return {"name": self.name, "problem": self.problem, "raw": self.raw.decode("utf-8", errors="replace")}
        e = self.entry
        return {
            "name": self.name,
            "class": e.class_,
            "queue": e.queue,
            "where": e.where,
            "next_run_at": timefmt.run_at(e.at),
            "at": e.at,
            "attempt": e.attempt,
            "runs": e.runs or None,
            "exception": _failure_field(e.failure, "exception"),
            "error": _failure_field(e.failure, "error"),
        }


def _failure_field(failure: str, name: str) -> str:
    try:
        return str(getattr(Failure.decode(failure), name))
    except ProtocolError:
        return ""


class RetryError(LookupError):
    """A steering action that cannot be done (no such retry, or it already moved on)."""


class NoPendingRetryError(RetryError):
    """No pending retry by that name (the dashboard answers 404; other RetryErrors are 409s)."""


class PendingRetries:
    """Pending retries for operators: list, run now, give up (CLI and dashboard)."""

    def __init__(self, client: redis.Redis, keys: Keys, backend: BackendName = "redis") -> None:
        self.redis = client
        self.keys = keys
        self.backend = backend
        self._steer = client.register_script(RETRY_STEER)

    def entries(self) -> list[PendingEntry]:
        """Every pending retry, soonest first; unreadable entries listed with their problem."""
        stored = self.redis.hgetall(self.keys.pending_retries)
        out = [_decode_entry(text(k), raw(v)) for k, v in stored.items()]
        return sorted(out, key=lambda p: (p.entry is None, p.entry.at if p.entry else 0, p.name))

    def get(self, name: str) -> PendingEntry:
        value = self.redis.hget(self.keys.pending_retries, name)
        if value is None:
            raise NoPendingRetryError(f"no pending retry {name!r}")
        return _decode_entry(name, raw(value))

    def retry_now(self, name: str) -> None:
        """Move a delayed retry to its queue now (its attempt counter is kept)."""
        self._act(name, "now")

    def give_up(self, name: str) -> None:
        """Drop the retry, reset its counter, and record its last failure in ``failed``."""
        self._act(name, "give-up")

    def _act(self, name: str, action: str) -> None:
        found = self.get(name)
        e = found.entry
        if e is None:
            if action == "give-up":  # an unreadable entry can only be dropped
                self.redis.hdel(self.keys.pending_retries, name)
                return
            raise RetryError(f"pending retry {name!r} is unreadable: {found.problem}")
        if action == "now" and e.where != "delayed":
            raise RetryError(f"retry {name!r} is already in queue {e.queue!r}")
        list_name = failure_list_name(self.backend, e.queue)
        failure = b"" if e.recorded else e.failure.encode()
        keys = self.keys
        done = self._steer(
            keys=[
                keys.pending_retries,
                keys.delayed(e.at),
                keys.timestamps(e.item),
                keys.delayed_schedule,
                keys.queue(e.queue),
                keys.queues,
                keys.retry_attempts(e.retry_name),
                keys.retry_failure(e.retry_name),
                keys.failed_list(list_name),
                keys.failed_queues,
            ],
            args=[
                name,
                found.raw,
                action,
                e.where,
                e.item,
                e.payload,
                str(e.at),
                keys.delayed_member(e.at),
                e.queue,
                failure,
                "" if list_name == FAILED_LIST else list_name,
            ],
        )
        if not int(done):
            raise RetryError(f"retry {name!r} already moved on (a scheduler or a worker took it)")


def _decode_entry(name: str, value: bytes) -> PendingEntry:
    try:
        return PendingEntry(name, value, PendingRetry.decode(value))
    except ProtocolError as exc:
        return PendingEntry(name, value, None, str(exc))
