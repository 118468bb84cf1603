"""Running one job in the current process, and writing down how it ended.

The registry decides what a payload's class name runs (never an import). Ruby-style jobs get
the positional ``args`` and Resque's class hooks; PHP-style jobs get ``self.args`` (the
payload's ``args[0]``), ``self.queue`` and ``self.job_id`` and run ``set_up``/``perform``/
``tear_down``. The outcome is either "ok" (with an optional status ``result``) or a failure
record in Ruby's key order, ready to be pushed by the next cycle call.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import os
import signal
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec

from resque_compat.jobs import progress
from resque_compat.protocol import Failure, JobPayload, ProtocolError, encode_json, timefmt
from resque_compat.protocol.progress import status_name
from resque_compat.registry import Call, DontPerform, JobDefinition, JobRegistry, current_call

if TYPE_CHECKING:
    from resque_compat.jobs.progress import ResqueStatuses

log = logging.getLogger("resque_compat.worker")

_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class TermException(BaseException):
    """Raised inside an in-process job by TERM/INT/USR1 (Ruby's ``Resque::TermException``).

    A BaseException, so a job's ``except Exception`` does not swallow the kill."""

    resque_name = "Resque::TermException"


class JobTimeoutError(BaseException):
    """Raised inside an in-process job that ran past ``--timeout``."""

    resque_name = "Resque::JobTimeout"


class MalformedJobError(Exception):
    """A queue item that is not a job payload (not JSON, not an object, no class, ...)."""


class DirtyExit(Exception):  # noqa: N818 - Resque's name
    """Passed to ``on_failure`` hooks when the job's process died (Ruby's ``Resque::DirtyExit``)."""

    resque_name = "Resque::DirtyExit"


class Outcome(msgspec.Struct, omit_defaults=True):
    """How a job ended; crosses the pipe from a forked child as JSON.

    ``result`` is the status ``result`` to write (UNSET: leave the record's as it is);
    ``failure`` the encoded failure record when the job failed; ``duration`` the seconds the
    job ran, hooks included (0: it never ran, the caller measures what it saw); ``retryable``
    whether the job's retry policy retries this failure; ``progress`` the last progress a
    tracked job reported, kept in its final status."""

    ok: bool
    result: Any = msgspec.UNSET
    failure: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    skipped: bool = False
    duration: float = 0.0
    retryable: bool = True
    progress: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


_encode_outcome = msgspec.json.Encoder().encode
_decode_outcome = msgspec.json.Decoder(Outcome).decode


def encode_outcome(outcome: Outcome) -> bytes:
    try:
        return _encode_outcome(outcome)
    except (TypeError, ValueError, OverflowError):  # a result JSON cannot hold: keep its repr
        return _encode_outcome(msgspec.structs.replace(outcome, result=repr(outcome.result)))


def decode_outcome(data: bytes) -> Outcome:
    return _decode_outcome(data)


def exception_name(exc: BaseException) -> str:
    """``module.QualName``; builtins by bare name; Resque's own names where we mimic them."""
    named = getattr(exc, "resque_name", None)
    if isinstance(named, str):
        return named
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def ruby_backtrace(tb: TracebackType | None) -> list[str]:
    """Frames as Ruby writes them (``file:line:in 'func'``), innermost first, cut at the first
    frame of the worker itself below the job's (Ruby cuts at ``lib/resque/job.rb``)."""
    frames = traceback.extract_tb(tb)
    out: list[str] = []
    for frame in reversed(frames):
        if frame.filename.startswith(_OWN_DIR):
            if out:
                break
            continue  # raised by the worker into the job (a signal handler, the timeout alarm)
        out.append(f"{frame.filename}:{frame.lineno}:in '{frame.name}'")
    return out


def error_text(exc: BaseException) -> str:
    """Ruby's ``exception.to_s``: the message, or the class name when there is none."""
    text = str(exc)
    return text if text else exception_name(exc)


def failure_record(
    item: bytes,
    *,
    exception: str,
    error: str,
    backtrace: list[str],
    worker_id: str,
    queue: str,
) -> bytes:
    """A failure in Ruby's key order. The payload is the item's own bytes when they are a JSON
    object; otherwise the item's text as a JSON string (and, for bytes that are not UTF-8,
    ``payload_base64`` with the exact bytes), so an operator can repair and retry it."""
    extra: dict[str, Any] = {}
    if _is_json_object(item):
        payload = msgspec.Raw(item)
    else:
        try:
            text = item.decode("utf-8")
        except UnicodeDecodeError:
            text = item.decode("utf-8", errors="replace")
            extra["payload_base64"] = base64.b64encode(item).decode("ascii")
        payload = msgspec.Raw(encode_json(text))
    record = Failure(
        failed_at=timefmt.failed_at(),
        payload=payload,
        exception=exception,
        error=error,
        backtrace=backtrace,
        worker=worker_id,
        queue=queue,
        extra=extra,
    )
    return record.encode()


def _is_json_object(item: bytes) -> bool:
    try:
        return isinstance(msgspec.json.decode(item), dict)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False


def parse_item(item: bytes) -> JobPayload:
    """Decode a queue item; :class:`MalformedJobError` says what is wrong with it."""
    try:
        payload = JobPayload.decode(item)
    except ProtocolError as exc:  # RecursionError and bad UTF-8 arrive as ProtocolError too
        raise MalformedJobError(f"malformed queue item: {exc}") from None
    if not payload.class_:
        raise MalformedJobError("malformed queue item: empty class")
    return payload


@dataclass
class Job:
    """A reserved job, decoded and resolved: what hooks and the runner see."""

    queue: str
    item: bytes
    payload: JobPayload
    definition: JobDefinition
    #: the PHP-style job object while it runs
    instance: Any = None
    #: what the registry resolved the payload to (an ActiveJob wrapper: the inner job's call)
    call: Call | None = None
    #: a tracked job's progress calls (php status extra fields)
    tracked: progress.TrackedProgress | None = None

    @property
    def class_name(self) -> str:
        return self.payload.class_

    @property
    def args(self) -> list[Any]:
        return self.payload.args

    @property
    def call_args(self) -> list[Any]:
        """What a Ruby-style perform and its hooks receive: a wrapped job's decoded arguments."""
        return self.call.args if self.call is not None else self.payload.args

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.call.kwargs if self.call is not None else {}

    @property
    def job_id(self) -> str | None:
        return self.payload.job_id


class JobRunner:
    """Runs jobs of one registry for one worker id; knows nothing of Redis."""

    def __init__(self, registry: JobRegistry, worker_id: str) -> None:
        self.registry = registry
        self.worker_id = worker_id
        #: where progress goes (resque-status records, php status extras); None: no progress calls
        self.statuses: ResqueStatuses | None = None
        #: runs what an ``async def`` perform returns to its end: here, a loop of its own; in a
        #: ``--concurrency`` worker, the process's shared event loop (``worker/concurrent.py``)
        self.awaiter: Callable[[Awaitable[Any]], Any] = run_awaitable

    def failed(self, queue: str, item: bytes, exc: BaseException, backtrace: list[str] | None = None) -> Outcome:
        bt = ruby_backtrace(exc.__traceback__) if backtrace is None else backtrace
        record = failure_record(
            item,
            exception=exception_name(exc),
            error=error_text(exc),
            backtrace=bt,
            worker_id=self.worker_id,
            queue=queue,
        )
        return Outcome(ok=False, failure=msgspec.Raw(record))

    def dirty_exit(self, job_or_item: Job | bytes, queue: str, exception: str, error: str) -> Outcome:
        """A job whose process died: failed with its full payload, and its on_failure hooks run."""
        item = job_or_item.item if isinstance(job_or_item, Job) else job_or_item
        retryable = True
        if isinstance(job_or_item, Job):
            exc = DirtyExit(error)
            exc.resque_name = exception
            self._on_failure(job_or_item, exc)
            retryable = _retryable(job_or_item, exc)
        record = failure_record(
            item, exception=exception, error=error, backtrace=[], worker_id=self.worker_id, queue=queue
        )
        return Outcome(ok=False, failure=msgspec.Raw(record), retryable=retryable)

    def run(self, job: Job, timeout: float | None = None) -> Outcome:
        """Perform the job with its hooks. Never raises: every end is an Outcome."""
        started = time.monotonic()
        token = current_call.set(job.call)
        try:
            with _alarm(timeout):
                result = self._perform(job)
        except DontPerform:
            outcome = Outcome(ok=True, result=False if job.definition.style == "php" else msgspec.UNSET, skipped=True)
        except BaseException as exc:  # every way a job ends is recorded
            if isinstance(exc, KeyboardInterrupt):
                exc = TermException("SIGINT")
            self._on_failure(job, exc)
            outcome = self.failed(job.queue, job.item, exc)
            outcome.retryable = _retryable(job, exc)
        else:
            outcome = Outcome(ok=True, result=msgspec.UNSET if result is None else result)
        finally:
            current_call.reset(token)
        outcome.duration = time.monotonic() - started
        if job.tracked is not None and job.tracked.fields:
            outcome.progress = job.tracked.fields
        return outcome

    # -- the two job styles --------------------------------------------------------
    def _perform(self, job: Job) -> Any:
        definition = job.definition
        if definition.style == "php":
            return self._perform_php(job)
        args, kwargs = job.call_args, job.kwargs
        for hook in definition.hooks_of("before_perform"):
            hook(*args, **kwargs)
        target: Any = definition.target
        # getattr: isclass() narrows the type to a bare class that mypy thinks has no perform
        perform: Callable[..., Any] = getattr(target, "perform") if inspect.isclass(target) else target  # noqa: B009
        result = _around(
            definition.hooks_of("around_perform"), args, lambda: self._awaited(perform(*args, **kwargs)), kwargs
        )
        for hook in definition.hooks_of("after_perform"):
            hook(*args, **kwargs)
        return result

    def _perform_php(self, job: Job) -> Any:
        instance = job.instance = self._php_instance(job)
        if job.definition.status and self.statuses is not None:
            reporter: progress.StatusReporter = instance.status_reporter
            return progress.perform_status_job(reporter, lambda: self._perform_instance(job, instance), error_text)
        return self._perform_instance(job, instance)

    def _perform_instance(self, job: Job, instance: Any) -> Any:
        job_hooks = job.definition
        for hook in job_hooks.hooks_of("before_perform"):
            getattr(instance, hook.__name__)()
        set_up = getattr(instance, "set_up", None)
        if callable(set_up):
            set_up()
        arounds = [getattr(instance, h.__name__) for h in job_hooks.hooks_of("around_perform")]
        result = _around(arounds, [], lambda: self._awaited(instance.perform()))
        tear_down = getattr(instance, "tear_down", None)
        if callable(tear_down):
            tear_down()
        for hook in job_hooks.hooks_of("after_perform"):
            getattr(instance, hook.__name__)()
        return result

    def _awaited(self, result: Any) -> Any:
        """An ``async def`` perform's coroutine runs to its end; any other result is as it is.
        None (most jobs) skips ``isawaitable``: its ABC check writes the ABC's cache in every
        forked child, costing that child copied pages."""
        return self.awaiter(result) if result is not None and inspect.isawaitable(result) else result

    def _php_instance(self, job: Job) -> Any:
        instance = job.definition.target()
        instance.args = job.args[0] if job.args else {}
        instance.queue = job.queue
        instance.job_id = job.job_id
        instance.payload = job.payload
        if self.statuses is None:
            return instance
        if job.definition.status:  # resque-status: args are [uuid, options]
            uuid, options = progress.status_job_args(job.args)
            instance.uuid, instance.options = uuid, options
            name = status_name(job.class_name, options)
            instance.status_reporter = progress.StatusReporter(self.statuses, uuid, name)
            progress.bind_calls(instance, instance.status_reporter, progress.REPORTER_CALLS)
        else:  # php style: progress as extra fields of its status (none kept when it is not tracked)
            key = self.statuses.keys.status(job.job_id, job.payload.status_prefix) if job.job_id else None
            job.tracked = progress.TrackedProgress(self.statuses.redis, key)
            progress.bind_calls(instance, job.tracked, progress.TRACKED_CALLS)
        return instance

    def _on_failure(self, job: Job, exc: BaseException) -> None:
        """Ruby runs ``on_failure*`` once per failed job, with (exception, *args); PHP-style
        jobs get (exception) on the instance that ran (a fresh one after a dirty exit)."""
        for hook in job.definition.hooks_of("on_failure"):
            try:
                if job.definition.style == "php":
                    instance = job.instance if job.instance is not None else self._php_instance(job)
                    getattr(instance, hook.__name__)(exc)
                else:
                    hook(exc, *job.call_args, **job.kwargs)
            except Exception:
                log.exception("on_failure hook %s of %s failed", getattr(hook, "__name__", hook), job.class_name)


def run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """An async job outside a concurrency worker: on an event loop of its own, as ``asyncio.run``."""
    return asyncio.run(as_coroutine(awaitable))


def as_coroutine(awaitable: Awaitable[Any]) -> Coroutine[Any, Any, Any]:
    async def wait() -> Any:
        return await awaitable

    return awaitable if inspect.iscoroutine(awaitable) else wait()


def _retryable(job: Job, exc: BaseException) -> bool:
    """Does the job's retry policy retry this exception (True when it has no policy)?"""
    policy = job.definition.retry
    return True if policy is None else policy.retries(exc)


def _around(hooks: Any, args: list[Any], perform: Callable[[], Any], kwargs: dict[str, Any] | None = None) -> Any:
    """Nest ``around_perform*`` hooks (generator functions that ``yield`` once, as Ruby's
    blocks do). A hook that returns without yielding skips the job, as in Ruby."""
    if not hooks:
        return perform()
    first, rest = hooks[0], hooks[1:]
    gen = first(*args, **(kwargs or {}))
    if not isinstance(gen, Generator):
        raise TypeError(f"around_perform hook {first.__name__} must be a generator function (use yield)")
    try:
        next(gen)
    except StopIteration:
        return None
    try:
        result = _around(rest, args, perform, kwargs)
    except BaseException as exc:
        try:
            gen.throw(exc)
        except StopIteration:
            return None
        raise
    try:
        next(gen)
    except StopIteration:
        pass
    else:
        raise RuntimeError(f"around_perform hook {first.__name__} yielded more than once")
    return result


@contextmanager
def _alarm(timeout: float | None) -> Iterator[None]:
    """In-process timeout: SIGALRM raises JobTimeoutError inside the job."""
    if not timeout:
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise JobTimeoutError(f"Job exceeded the {timeout:g} s timeout")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
