"""The Resque wire protocol: key names, stored shapes, time formats, naming rules.

Everything that touches Redis goes through this package; nothing here does I/O.
"""

from resque_compat.protocol import inputs, timefmt
from resque_compat.protocol.keys import Keys, normalize_namespace
from resque_compat.protocol.naming import (
    WorkerId,
    new_job_id,
    normalize_class,
    parse_queue_list,
    resolve_queues,
    slot_id,
    worker_id,
)
from resque_compat.protocol.records import (
    STATUS_TTL,
    UNSET,
    DelayedItem,
    Failure,
    JobPayload,
    JobStatus,
    ProtocolError,
    Raw,
    Record,
    ScheduleEntry,
    StatusRecord,
    WorkerState,
    WorkingOn,
    decode_json,
    encode_json,
)

__all__ = [
    "STATUS_TTL",
    "UNSET",
    "DelayedItem",
    "Failure",
    "JobPayload",
    "JobStatus",
    "Keys",
    "ProtocolError",
    "Raw",
    "Record",
    "ScheduleEntry",
    "StatusRecord",
    "WorkerId",
    "WorkerState",
    "WorkingOn",
    "decode_json",
    "encode_json",
    "inputs",
    "new_job_id",
    "normalize_class",
    "normalize_namespace",
    "parse_queue_list",
    "resolve_queues",
    "slot_id",
    "timefmt",
    "worker_id",
]
