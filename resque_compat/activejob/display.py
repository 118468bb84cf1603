"""How a wrapped ActiveJob job is shown to people (CLI, dashboard, doctor): its own class, job id
and arguments as the job receives them, not the wrapper. Total: arguments that do not decode are
shown as stored, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from resque_compat.activejob.arguments import ArgumentFormatError, decode_arguments
from resque_compat.activejob.job import SerializedJob, wrapped_job
from resque_compat.activejob.values import RubyDateTime, TimeWithZone
from resque_compat.protocol import JobPayload, encode_json


@dataclass(frozen=True)
class ShownJob:
    """A wrapped job as shown: ``arguments`` is call syntax (``1, :sym, lang='en'``)."""

    job: SerializedJob
    arguments: str
    problem: str | None = None

    @property
    def job_class(self) -> str:
        return self.job.job_class

    @property
    def job_id(self) -> str | None:
        return self.job.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_class": self.job.job_class,
            "job_id": self.job.id,
            "queue_name": _or_none(self.job.queue_name),
            "executions": self.job.execution_count,
            "enqueued_at": _or_none(self.job.enqueued_at),
            "locale": _or_none(self.job.locale),
            "timezone": _or_none(self.job.timezone),
            "arguments": self.arguments,
            "problem": self.problem,
        }


def _or_none(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int)) else None


def shown(payload: JobPayload) -> ShownJob | None:
    """The wrapped job of an ActiveJob wrapper payload; None for any other payload."""
    job = wrapped_job(payload)
    if job is None:
        return None
    try:
        args, kwargs = decode_arguments(job.arguments)
    except ArgumentFormatError as exc:
        return ShownJob(job, encode_json(job.arguments).decode(errors="replace"), str(exc))
    return ShownJob(job, describe(args, kwargs))


def describe(args: list[Any], kwargs: dict[str, Any]) -> str:
    """Arguments in call syntax, Ruby's types named: ``1, :sym, 2026-11-29T10:00:00+00:00, lang='en'``."""
    parts = [_show(each) for each in args]
    parts.extend(f"{key}={_show(value)}" for key, value in kwargs.items())
    return ", ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(each) for each in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_show(k)}: {_show(v)}" for k, v in value.items())
        kind = type(value).__name__
        return f"{kind}({{{inner}}})" if kind != "dict" else f"{{{inner}}}"
    if isinstance(value, datetime):
        prefix = (
            "DateTime "
            if isinstance(value, RubyDateTime)
            else "TimeWithZone "
            if isinstance(value, TimeWithZone)
            else ""
        )
        return prefix + value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)
