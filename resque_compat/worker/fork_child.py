"""A forked job child: runs its first job (inherited from the fork) and, in a batch, the jobs
its worker sends after it; reports each outcome, then waits until the worker has recorded it.
If the worker dies first, the child records the job itself on a connection of its own, unless
a pruner already took it (then it is in ``failed`` as DirtyExit, as Ruby would have it). So a
killed worker does not also fail a job that in fact completed (or, in reliable mode, run it
again). Its title carries ``(worker <pid>)`` until then, so a same-host pruner leaves the job
to it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, NoReturn

import redis

from resque_compat.protocol import ProtocolError, StatusRecord
from resque_compat.registry import UnresolvableJobError
from resque_compat.worker import procline
from resque_compat.worker.job_end import InHand, finish_of, settle_failure
from resque_compat.worker.pipe_frames import JOB, LEAVE, Order, outcome_frame, read_order, write_all
from resque_compat.worker.runner import Job, MalformedJobError, Outcome, TermException, parse_item
from resque_compat.worker.signals import ChildTerm

if TYPE_CHECKING:
    from resque_compat.worker.forking import Forking

log = logging.getLogger("resque_compat.worker")


def serve(fork: Forking, hand: InHand, orders: int, outcomes: int) -> NoReturn:
    """The child's whole life; ends with ``_exit(0)``."""
    try:
        term = ChildTerm()
        term.install(fork.wakeup)
        failed_setup: Exception | None = None
        try:
            fork.hooks.run("after_fork", hand.job)  # once per child, as resque-multi-job-forks
        except Exception as exc:
            failed_setup = exc
        current: InHand | None = hand
        jobs = 0
        while current is not None:
            job = current.job
            procline.processing(job.queue, time.time(), job.class_name, worker_pid=fork.worker_pid)
            if failed_setup is not None:
                outcome = fork.runner.failed(job.queue, job.item, failed_setup)
            else:
                outcome = fork.runner.run(job)
            last = failed_setup is not None or term.received
            with contextlib.suppress(BrokenPipeError):  # the worker is gone: see below
                write_all(outcomes, outcome_frame(outcome, last=last))
            reply = read_order(orders)
            if reply is None:  # end of file before the record: the worker died
                _finish_orphaned(fork, current, outcome)
                break
            jobs += 1
            if reply[0] == LEAVE or last or jobs >= fork.jobs_per_child:
                break  # fork per job: exit at the acknowledgement, not at the worker's close
            procline.set_title(f"Forked child of worker {fork.worker_pid}: waiting for its next job")
            current = _next(fork, read_order(orders))
    except TermException:
        pass  # TERM while waiting between jobs: nothing in hand
    except BaseException:
        log.exception("job child %d of worker %d failed outside the job", os.getpid(), fork.worker_pid)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)


def _next(fork: Forking, reply: tuple[bytes, Order | None] | None) -> InHand | None:
    """The next job of the batch, resolved as the worker resolved it; None: the batch is over."""
    if reply is None or reply[0] != JOB or reply[1] is None:
        return None
    order = reply[1]
    status: StatusRecord | None = None
    if order.status is not None:
        with contextlib.suppress(ProtocolError):
            status = StatusRecord.decode(order.status)
    try:
        payload = parse_item(order.item)
        call = fork.registry.resolve(payload.class_, payload.args)
    except (MalformedJobError, UnresolvableJobError):  # the worker resolved it: cannot happen
        log.exception("job child %d cannot resolve a job its worker resolved", os.getpid())
        return None
    job = Job(order.queue, order.item, payload, call.definition, call=call)
    return InHand(job, order.status_key, status, order.attempt)


def _finish_orphaned(fork: Forking, hand: InHand, outcome: Outcome) -> None:
    job = hand.job
    finish = finish_of(job.queue, outcome, hand.status_key, hand.status)
    try:
        if job.definition.retry is not None and job.call is not None:
            if not outcome.ok:
                settle_failure(fork.retries, hand, outcome)  # guarded the same way
                return
            finish = dataclasses.replace(finish, forget=fork.retries.succeeded(*job.call.identity))
        fork.fetcher.finish_guarded(finish, job.item)
    except redis.RedisError as exc:
        log.warning("worker gone and Redis unreachable: %s is left to the pruner (%s)", job.class_name, exc)
