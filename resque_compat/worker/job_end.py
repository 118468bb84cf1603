"""How a job's end is written down: the cycle's ``Finish`` from an ``Outcome`` and the job's
status, and a retry policy's guarded settle. Used by the worker and by a forked child whose
worker died (it records the job itself, the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from resque_compat.jobs.retrying import Settled, WorkerRetries
from resque_compat.protocol import UNSET, Failure, JobStatus, ProtocolError, StatusRecord
from resque_compat.worker.cycle import Finish
from resque_compat.worker.runner import Job, Outcome


@dataclass(frozen=True)
class InHand:
    """A job being run and what recording its end needs: its status (tracked jobs) and, under
    a retry policy, the attempt number counted when it began."""

    job: Job
    status_key: str | None = None
    status: StatusRecord | None = None
    attempt: int = 0


def finish_of(queue: str, outcome: Outcome, status_key: str | None, status: StatusRecord | None) -> Finish:
    final: bytes | None = None
    if status is not None and isinstance(outcome.progress, dict):  # a tracked job's last progress stays
        status = msgspec.structs.replace(status, extra={**status.extra, **outcome.progress})
    if status_key is not None and status is not None:
        if outcome.ok:
            result = outcome.result
            if result is UNSET and status.result is not UNSET:
                result = None
            try:
                final = status.advanced(JobStatus.COMPLETE, result=result).encode()
            except (TypeError, ValueError, OverflowError):  # a result JSON cannot hold: keep its repr
                final = status.advanced(JobStatus.COMPLETE, result=repr(result)).encode()
        else:
            final = status.advanced(JobStatus.FAILED).encode()
    return Finish(
        queue,
        failure=None if outcome.ok else failure_bytes(outcome),
        status_key=status_key,
        status=final,
    )


def settle_failure(retries: WorkerRetries, hand: InHand, outcome: Outcome) -> Settled:
    """A retry policy's failure: retried or given up by one guarded script (``jobs/retrying.py``)
    instead of the cycle's finish, so a crash can neither lose the retry nor record it twice."""
    job, status = hand.job, hand.status
    policy, call = job.definition.retry, job.call
    assert policy is not None and call is not None
    if status is not None and isinstance(outcome.progress, dict):
        status = msgspec.structs.replace(status, extra={**status.extra, **outcome.progress})
    return retries.settle(
        queue=job.queue,
        item=job.item,
        identity=call.identity,
        next_attempt=None if call.retry_args is None else call.next_attempt(),
        policy=policy,
        retryable=outcome.retryable,
        tracked=(job.job_id, job.payload.status_prefix) if job.job_id else None,
        failure=failure_bytes(outcome),
        status_key=hand.status_key,
        status=status,
        attempt=hand.attempt,
    )


def failure_bytes(outcome: Outcome) -> bytes:
    failure: Any = outcome.failure
    return bytes(failure)


def failure_parts(outcome: Outcome, why: str) -> tuple[str, str, list[str]]:
    """(exception class, message, backtrace) of a failed outcome's record."""
    try:
        record = Failure.decode(failure_bytes(outcome))
    except (ProtocolError, TypeError):
        return "?", why, []
    return record.exception, record.error, list(record.backtrace)
