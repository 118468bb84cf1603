"""One job's way through the worker (Sidekiq's ``processor.rb``): decode and resolve the
item, pick up its status, count a retry policy's attempt, run it on the executor, write the
job line and the metrics, and hand its end back to the unit (``ack``, ``release`` or, for a
retry policy's failure, ``settled``). Runs on the loop (main thread)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from resque_compat.jobs.retrying import WorkerRetries, retry_line
from resque_compat.logs import JOB_FIELDS, escape_controls, job_fields, mask_args
from resque_compat.protocol import JobStatus, ProtocolError, StatusRecord
from resque_compat.registry import JobRegistry, UnresolvableJobError
from resque_compat.worker.executor import Executor
from resque_compat.worker.fetcher import Unit
from resque_compat.worker.job_end import InHand, failure_bytes, failure_parts, finish_of, settle_failure
from resque_compat.worker.redis_retry import Retrier
from resque_compat.worker.run_state import RunState
from resque_compat.worker.runner import Job, JobRunner, MalformedJobError, Outcome, parse_item

if TYPE_CHECKING:  # the metrics extra is optional
    from resque_compat.metrics import WorkerMetrics
    from resque_compat.protocol import Keys
    from resque_compat.store.workers import WorkerStore

log = logging.getLogger("resque_compat.worker")
#: one line per job: successes at INFO (``-v``), failures at WARNING (shown by default)
job_log = logging.getLogger("resque_compat.worker.job")
#: the class label of a queue item that is not a job
MALFORMED = "(malformed)"


class Processor:
    def __init__(
        self,
        *,
        store: WorkerStore,
        keys: Keys,
        worker_id: str,
        reliable: bool,
        registry: JobRegistry,
        runner: JobRunner,
        retries: WorkerRetries,
        executor: Executor,
        state: RunState,
        retry: Retrier,
        metrics: WorkerMetrics | None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.id = worker_id
        self.reliable = reliable
        self.registry = registry
        self.runner = runner
        self.retries = retries
        self.executor = executor
        self.state = state
        self.retry = retry
        self.metrics = metrics

    def process(self, unit: Unit) -> None:
        """Run a reserved job and tell the unit how it ended."""
        if self.state.stop:  # told to stop while the reservation was in flight: give it back
            unit.release()
            return
        queue, item = unit.queue, unit.item
        started = time.monotonic()
        try:
            payload = parse_item(item)
        except MalformedJobError as exc:
            outcome = self.runner.failed(queue, item, exc, backtrace=[])
            self._ended(queue, None, MALFORMED, outcome, started=started, why=str(exc))
            unit.ack(finish_of(queue, outcome, None, None))
            return
        status_key, status = self._pickup_status(payload.job_id, payload.status_prefix)
        try:
            call = self.registry.resolve(payload.class_, payload.args)
        except UnresolvableJobError as exc:
            outcome = self.runner.failed(queue, item, exc, backtrace=[])
            self._ended(queue, payload.job_id, payload.class_, outcome, started=started, why=str(exc))
            unit.ack(finish_of(queue, outcome, status_key, status))
            return
        job = Job(queue, item, payload, call.definition, call=call)
        if log.isEnabledFor(logging.DEBUG):  # arguments only at DEBUG, secret-looking keys masked
            log.debug("got: (Job{%s} | %s | %s)", queue, call.class_name, mask_args(payload.args))
        attempt = 0
        if call.definition.retry is not None:
            policy = call.definition.retry
            unit.flush()
            carried = self.retry(lambda: self.retries.begin(*call.identity, item, policy), "count the attempt")
            if carried is not None and status_key is None:  # a tracked job back from a delayed retry
                status_key, status = self._pickup_status(*carried)
            attempt = self.retries.attempt_of(item)
        hand = InHand(job, status_key, status, attempt)
        outcome = self.executor.run(hand, unit)
        if not outcome.ok and self.state.stop_now and self.reliable:
            # interrupted by shutdown: reliable mode gives it back, at the head of its queue
            log.warning(
                "requeued (Job{%s} | %s) interrupted by shutdown", queue, call.class_name,
                extra=job_fields(job_id=payload.job_id, class_name=call.class_name, queue=queue, worker=self.id,
                                 duration=time.monotonic() - started, outcome="requeued"),
            )  # fmt: skip
            waiting = status.advanced(JobStatus.WAITING).encode() if status is not None else None
            unit.release(status_key, waiting)
            return
        self._ended(queue, payload.job_id, call.class_name, outcome, started=started)
        if call.definition.retry is not None:
            self._settle(unit, hand, outcome)
            return
        unit.ack(finish_of(queue, outcome, status_key, status))

    def _settle(self, unit: Unit, hand: InHand, outcome: Outcome) -> None:
        """A job with a retry policy: success finishes as usual, clearing its attempt counter;
        a failure is retried or given up by one guarded script instead of the cycle's finish."""
        job = hand.job
        call = job.call
        assert call is not None
        if outcome.ok:
            finish = finish_of(job.queue, outcome, hand.status_key, hand.status)
            unit.ack(dataclasses.replace(finish, forget=self.retries.succeeded(*call.identity)))
            return
        settled = self.retry(lambda: settle_failure(self.retries, hand, outcome), "retry")
        unit.settled(settled.processed)
        policy = job.definition.retry
        assert policy is not None
        line = retry_line(
            call.class_name, job.queue, attempt=hand.attempt, policy=policy, settled=settled,
            failure=failure_bytes(outcome),
        )  # fmt: skip
        log.warning("%s", line)

    def _ended(
        self, queue: str, job_id: str | None, class_name: str, outcome: Outcome, *, started: float, why: str = ""
    ) -> None:
        """The job line and the metrics. A success is INFO on ``resque_compat.worker.job`` (shown
        with ``-v``); a failure is one WARNING there (shown by default) with the exception's
        class and message, its backtrace below at ``-v``, and all three as JSON fields.
        The duration is the job's own (a forked child sends it back), else what we saw."""
        kind = "skipped" if outcome.skipped else "ok" if outcome.ok else "failed"
        duration = outcome.duration or time.monotonic() - started
        if self.metrics is not None:
            self.metrics.observe(class_name, kind, duration)
        level = logging.INFO if outcome.ok else logging.WARNING
        if not job_log.isEnabledFor(level):
            return
        fields = job_fields(
            job_id=job_id, class_name=class_name, queue=queue, worker=self.id, duration=duration, outcome=kind
        )
        if outcome.ok:
            job_log.info("%s: (Job{%s} | %s)", "done" if kind == "ok" else kind, queue, class_name, extra=fields)
            return
        exception, error, backtrace = failure_parts(outcome, why)
        fields[JOB_FIELDS].update(exception=exception, error=error, backtrace=backtrace)
        record = job_log.makeRecord(
            job_log.name, logging.WARNING, __file__, 0, "failed: (Job{%s} | %s): %s: %s",
            (queue, class_name, exception, _clip(error)), None, extra=fields,
        )  # fmt: skip
        if backtrace and job_log.isEnabledFor(logging.INFO):  # below the line, as a traceback is
            record.exc_text = "\n".join(escape_controls(f"    {line}") for line in backtrace)
        job_log.handle(record)

    def _pickup_status(self, job_id: str | None, prefix: str) -> tuple[str | None, StatusRecord | None]:
        """Tracked jobs (payload ``id`` with a status key): status 2, ``started`` kept."""
        if not job_id:
            return None, None
        key = self.keys.status(job_id, prefix)
        raw = self.retry(lambda: self.store.status_bytes(key), "read the job status")
        if raw is None:
            return None, None
        try:
            running = StatusRecord.decode(raw).advanced(JobStatus.RUNNING)
        except ProtocolError as exc:
            log.warning("ignoring unreadable status %s: %s", key, exc)
            return None, None
        self.retry(lambda: self.store.set_status(key, running.encode()), "write the job status")
        return key, running


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"
