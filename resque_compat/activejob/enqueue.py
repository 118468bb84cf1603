"""The Redis commands that enqueue an ActiveJob job as Rails' Resque adapter does, shared by the
sync and asyncio clients: ``enqueue`` (``Resque.enqueue_to``) now, or ``enqueue_at``
(resque-scheduler's ``enqueue_at_with_queue``) at a time."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from resque_compat.activejob.job import WRAPPER_CLASS, SerializedJob, build, wrapper_args
from resque_compat.plans import enqueue_plan
from resque_compat.protocol import Keys
from resque_compat.resp import Command
from resque_compat.scheduler.delayed import schedule_plan


def active_job_plan(
    keys: Keys,
    job_class: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    *,
    queue: str,
    at: float | datetime | None = None,
    wait: float | None = None,
    **job: Any,
) -> tuple[SerializedJob, int | None, list[Command]]:
    """The serialized job, the delayed timestamp (None: pushed now) and the commands (one MULTI).
    ``job`` takes :func:`resque_compat.activejob.build`'s other options (job_id, priority,
    locale, timezone)."""
    if at is not None and wait is not None:
        raise ValueError("give at or wait, not both")
    if wait is not None:
        if isinstance(wait, bool) or not isinstance(wait, (int, float)):
            raise ValueError(f"wait must be a number of seconds, not {type(wait).__name__}")
        at = time.time() + wait
    serialized = build(job_class, args, kwargs, queue=queue, **job)
    if at is None:
        return serialized, None, enqueue_plan(keys, queue, [(WRAPPER_CLASS, wrapper_args(serialized))], track=False)[1]
    ts, commands = schedule_plan(keys, at, queue, WRAPPER_CLASS, wrapper_args(serialized))
    return serialized, ts, commands
