"""The stored shapes of retries: resque-retry's suppressed failure and our pending-retry index.

resque-retry keeps only an attempt counter per job (``resque-retry:<Class>[:<digest>]``) and, with
``MultipleWithRetrySuppression``, the latest suppressed failure. To list pending retries with
their next run time without scanning every delayed list, resque-compat also keeps one
:class:`PendingRetry` per retry name in ``compat:retries`` (peers never read it).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from resque_compat.protocol.records import UNSET, Failure, ProtocolError, Record, UnsetType


class PendingRetry(Record, kw_only=True, omit_defaults=True):
    """A failed attempt whose retry waits in a queue (``where`` = "queue") or in resque-scheduler's
    delayed layout (``where`` = "delayed", due at ``at``). ``item`` is the exact bytes pushed."""

    class_: str = msgspec.field(name="class")
    queue: str
    where: str
    at: int
    attempt: int
    runs: int
    item: str
    payload: str
    failure: str
    recorded: bool = False
    retry_name: str
    #: the php-resque job id (and status prefix) the job is tracked under, carried across a delayed
    #: retry whose item cannot keep it
    job_id: str | UnsetType = UNSET
    status_prefix: str | UnsetType = UNSET


def suppressed_failure(failure: bytes, epoch: float | None = None) -> bytes:
    """MultipleWithRetrySuppression's ``failure-resque-retry:`` value: the failure record with
    ``failed_at`` in local time *without* a zone (``%Y/%m/%d %H:%M:%S``)."""
    try:
        record = Failure.decode(failure)
    except ProtocolError:
        return failure
    record.failed_at = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(epoch))
    return record.encode()


def delayed_retry_item(item: bytes, queue: str) -> bytes:
    """The delayed item a retry writes: ``{"class":…,"args":[…],"queue":…}`` with the class and
    args bytes as the payload had them (resque-retry's ``enqueue_in_with_queue``)."""
    fields: dict[str, Any] = msgspec.json.decode(item, type=dict[str, msgspec.Raw])
    args = bytes(fields.get("args", b"[]"))
    if args.strip() == b"{}":  # node-resque's cjson empty args
        args = b"[]"
    return b'{"class":' + bytes(fields["class"]) + b',"args":' + args + b',"queue":' + msgspec.json.encode(queue) + b"}"
