"""Rails' ActiveJob payloads on Resque: run them as Python jobs, and enqueue them for Rails.

A Rails app's ``WelcomeMailJob.perform_later(user, lang: "en")`` pushes a payload of class
:data:`WRAPPER_CLASS` whose one argument is the serialized job. The registry resolves such a
payload to the Python job registered under its ``job_class`` and calls it with the arguments
read back (:mod:`.arguments`: keyword arguments as keyword arguments, Ruby's types as
:mod:`.values`); :func:`current` gives the running job its ActiveJob metadata. The clients'
``enqueue_active_job`` writes the payload a Rails worker runs.
"""

from __future__ import annotations

from resque_compat.activejob.arguments import (
    ArgumentFormatError,
    SerializationError,
    decode_arguments,
    decode_value,
    encode_arguments,
    encode_value,
)
from resque_compat.activejob.job import (
    WRAPPER_CLASS,
    SerializedJob,
    build,
    is_wrapper,
    read_job,
    unwrap,
    wrapped_job,
    wrapper_args,
)
from resque_compat.activejob.values import (
    Duration,
    GlobalID,
    HashWithIndifferentAccess,
    RubyDateTime,
    RubyKeywords,
    RubyModule,
    Symbol,
    TimeWithZone,
)
from resque_compat.registry import current_call


def current() -> SerializedJob | None:
    """The ActiveJob job being run (``executions`` counts this attempt, as ``perform_now`` does);
    None outside an ActiveJob job."""
    call = current_call.get()
    return call.context if call is not None and isinstance(call.context, SerializedJob) else None


__all__ = [
    "WRAPPER_CLASS",
    "ArgumentFormatError",
    "Duration",
    "GlobalID",
    "HashWithIndifferentAccess",
    "RubyDateTime",
    "RubyKeywords",
    "RubyModule",
    "SerializationError",
    "SerializedJob",
    "Symbol",
    "TimeWithZone",
    "build",
    "current",
    "decode_arguments",
    "decode_value",
    "encode_arguments",
    "encode_value",
    "is_wrapper",
    "read_job",
    "unwrap",
    "wrapped_job",
    "wrapper_args",
]
