"""ActiveJob jobs for resque-compat's own worker in the interop suite (``work --import ajjobs``);
the Python values Rails' every-kind job must arrive as are ``tests/rails_kinds.py``.

``AjEchoJob`` and ``AjFailJob`` RPUSH ``{"by": "python-activejob", "job_class", "job_id",
"executions", "args", "kwargs", "resolved"}`` to ``<ns>:interop:results``: ``args``/``kwargs``
spell out every value with its exact type (a Symbol is not a str there), ``resolved`` is what
the GlobalID arguments resolve to through the locator registered here.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from typing import Any

import resque_compat
from resque_compat import Resque
from resque_compat.activejob import (
    Duration,
    GlobalID,
    RubyModule,
    current,
)

RESULTS = "interop:results"


def exact_types(value: Any) -> Any:
    """The value with every type spelled out, as a JSON-friendly structure."""
    if isinstance(value, dict):
        return [type(value).__name__, [[type(k).__name__, str(k), exact_types(v)] for k, v in value.items()]]
    if isinstance(value, list):
        return [exact_types(v) for v in value]
    if isinstance(value, datetime):
        return [type(value).__name__, value.isoformat()]
    if isinstance(value, Duration):
        return ["Duration", value.value, dict(value.parts)]
    if isinstance(value, date):
        return ["date", value.isoformat()]
    if isinstance(value, (GlobalID, RubyModule)):
        return [type(value).__name__, str(value)]
    return [type(value).__name__, value]


_clients: dict[int, Resque] = {}


def _client() -> Resque:
    pid = os.getpid()
    if pid not in _clients:
        if not os.environ.get("REDIS_URL"):  # never fall back to a default Redis
            raise RuntimeError("ajjobs records into $REDIS_URL, which the worker's environment must set")
        _clients[pid] = Resque()
    return _clients[pid]


@GlobalID.locator("Person")
def find_person(gid: GlobalID) -> str:
    return f"Person#{gid.model_id}"


def record(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    job = current()
    assert job is not None
    entry = {
        "by": "python-activejob",
        "job_class": job.job_class,
        "job_id": job.job_id,
        "executions": job.executions,
        "args": exact_types(list(args)),
        "kwargs": exact_types(kwargs),
        "resolved": [a.resolve() for a in args if isinstance(a, GlobalID)],
    }
    client = _client()
    client.redis.rpush(client.keys.key(RESULTS), json.dumps(entry, ensure_ascii=False))


@resque_compat.job("AjEchoJob")
def aj_echo(*args: Any, **kwargs: Any) -> None:
    record(args, kwargs)


@resque_compat.job("AjFailJob")
def aj_fail(*args: Any, **kwargs: Any) -> None:
    record(args, kwargs)
    raise RuntimeError("interop failure")


@resque_compat.job("AjFlakyJob")
def aj_flaky(*args: Any, **kwargs: Any) -> None:
    """Succeeds here: the attempt Rails' retry_on enqueued after a failure on Ruby."""
    record(args, kwargs)
