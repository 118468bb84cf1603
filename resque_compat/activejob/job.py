"""The serialized job Rails' Resque adapter enqueues as the wrapper's one argument.

``{"class": "ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper", "args": [<serialized job>]}``;
the serialized job is ``ActiveJob::Core#serialize``: ``job_class``, ``job_id``,
``provider_job_id``, ``queue_name``, ``priority``, ``arguments``, ``executions``,
``exception_executions``, ``locale``, ``timezone``, ``enqueued_at`` in that order (Rails 6.1;
later Rails add keys such as ``scheduled_at``, kept as they are).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from resque_compat.activejob.arguments import ArgumentFormatError, decode_arguments, encode_arguments
from resque_compat.protocol import UNSET, JobPayload, ProtocolError, Record, inputs
from resque_compat.protocol.records import UnsetType

#: The class every ActiveJob job is enqueued as (Resque 3.0's adapter and Rails' own).
WRAPPER_CLASS = "ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper"

#: ``ActiveJob::Core#serialize``'s key order (Rails 6.1).
RAILS_KEY_ORDER = (
    "job_class",
    "job_id",
    "provider_job_id",
    "queue_name",
    "priority",
    "arguments",
    "executions",
    "exception_executions",
    "locale",
    "timezone",
    "enqueued_at",
)


class SerializedJob(Record, kw_only=True, omit_defaults=True):
    """The wrapper's argument: typed where resque-compat reads it, everything else kept."""

    job_class: str
    job_id: str | UnsetType | None = UNSET
    provider_job_id: Any = UNSET
    queue_name: str | UnsetType | None = UNSET
    priority: int | UnsetType | None = UNSET
    arguments: list[Any] = msgspec.field(default_factory=list)
    executions: int | UnsetType = UNSET
    exception_executions: dict[str, int] | UnsetType = UNSET
    locale: str | UnsetType | None = UNSET
    timezone: str | UnsetType | None = UNSET
    enqueued_at: str | UnsetType | None = UNSET

    @property
    def id(self) -> str | None:
        return self.job_id if isinstance(self.job_id, str) else None

    @property
    def execution_count(self) -> int:
        """``executions`` as stored: the attempts that ran before this payload was enqueued."""
        return self.executions if isinstance(self.executions, int) else 0


def is_wrapper(class_name: str) -> bool:
    return class_name.lstrip("\\") == WRAPPER_CLASS


def read_job(args: Sequence[Any]) -> SerializedJob:
    """The serialized job of a wrapper payload's ``args``; ArgumentFormatError when they are not one."""
    if len(args) != 1 or not isinstance(args[0], dict):
        raise ArgumentFormatError("an ActiveJob wrapper payload takes one argument, the serialized job")
    try:
        job = SerializedJob.from_dict(args[0])
    except ProtocolError as exc:
        raise ArgumentFormatError(f"not an ActiveJob serialized job: {exc}") from None
    if not job.job_class:
        raise ArgumentFormatError("the serialized job's job_class is empty")
    return job


def wrapped_job(payload: JobPayload) -> SerializedJob | None:
    """The serialized job inside a wrapper payload; None for any other payload or a malformed one."""
    if not is_wrapper(payload.class_):
        return None
    try:
        return read_job(payload.args)
    except ArgumentFormatError:
        return None


def enqueued_at_text(moment: float | datetime | None = None) -> str:
    """``Time.now.utc.iso8601``, as Rails 6.1 stamps ``enqueued_at`` (whole seconds, ``Z``)."""
    if isinstance(moment, datetime):
        moment = moment.timestamp()
    stamp = time.time() if moment is None else moment
    return datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(
    job_class: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: str = "default",
    job_id: str | None = None,
    priority: int | None = None,
    executions: int = 0,
    locale: str | None = "en",
    timezone: str | None = None,
    enqueued_at: float | datetime | str | None = None,
) -> SerializedJob:
    """The serialized job ``JobClass.set(queue:).perform_later(*args, **kwargs)`` writes on Rails 6.1.

    Arguments go through :func:`encode_arguments` (a SerializationError for a value ActiveJob
    has no format for)."""
    inputs.check_name("job class", job_class)
    inputs.check_name("queue", queue)
    return SerializedJob(
        job_class=job_class,
        job_id=job_id or str(uuid.uuid4()),
        provider_job_id=None,
        queue_name=queue,
        priority=priority,
        arguments=encode_arguments(args, kwargs),
        executions=executions,
        exception_executions={},
        locale=locale,
        timezone=timezone,
        enqueued_at=enqueued_at if isinstance(enqueued_at, str) else enqueued_at_text(enqueued_at),
        key_order=RAILS_KEY_ORDER,
    )


def wrapper_args(job: SerializedJob) -> list[Any]:
    """The wrapper payload's ``args``: the serialized job alone."""
    return [job.to_dict()]


class Unwrapped(msgspec.Struct, frozen=True):
    """A wrapper payload read for running: the job as this attempt sees it (``executions``
    counted as ``perform_now`` counts it) and the decoded arguments."""

    job: SerializedJob
    args: list[Any]
    kwargs: dict[str, Any]

    def retry_args(self) -> list[Any]:
        """The wrapper ``args`` for another attempt: ``executions`` carried, as ``retry_job``
        enqueues the job (the failed payload itself keeps the count it was enqueued with)."""
        return wrapper_args(self.job)


def unwrap(args: Sequence[Any]) -> Unwrapped:
    """Read a wrapper payload's ``args``: ArgumentFormatError names what Rails would not have written."""
    job = read_job(args)
    positional, keywords = decode_arguments(job.arguments)
    running = msgspec.structs.replace(job, executions=job.execution_count + 1)
    return Unwrapped(running, positional, keywords)


__all__ = [
    "RAILS_KEY_ORDER",
    "UNSET",
    "WRAPPER_CLASS",
    "SerializedJob",
    "Unwrapped",
    "build",
    "enqueued_at_text",
    "is_wrapper",
    "read_job",
    "unwrap",
    "wrapped_job",
    "wrapper_args",
]
