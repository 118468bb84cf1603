"""The ``resque-compat work`` command."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from redis.backoff import NoBackoff
from redis.retry import Retry

from resque_compat.client import Resque, default_namespace
from resque_compat.cliutil import CliContext, fail, handle_errors, on_terminal, pass_cli, progress
from resque_compat.connection import connect, parse_address
from resque_compat.envvars import help_epilog
from resque_compat.failures import BACKENDS
from resque_compat.logs import LOG_FORMATS, WORKER_TEXT, level_for, setup
from resque_compat.protocol import resolve_queues
from resque_compat.registry import JobModuleError, import_job_modules
from resque_compat.worker.concurrent import ConcurrentWorker
from resque_compat.worker.config import WorkerConfig, WorkerConfigError
from resque_compat.worker.pool import Pool
from resque_compat.worker.worker import Worker

if TYPE_CHECKING:
    from resque_compat.metrics import WorkerMetrics

log = logging.getLogger("resque_compat.worker")


def open_resque(cli: CliContext, config: WorkerConfig) -> Resque:
    """A client of the worker's own: no automatic command retry (the cycle script handles
    reconnects itself, and a blind resend could apply a finish twice), bounded socket waits."""
    address = parse_address(cli.redis_spec)
    namespace = cli.namespace
    if address.namespace and (namespace is None or namespace == default_namespace()):
        namespace = address.namespace  # Ruby's host:port/namespace form
    client = connect(
        address,
        namespace if namespace is not None else default_namespace(),
        retry=Retry(NoBackoff(), 0),
        socket_timeout=30,
        socket_connect_timeout=5,
    )

    return Resque(client, namespace=namespace, failure_backend=config.failure_backend)


def start_metrics(port: int, host: str) -> WorkerMetrics:
    """This process's job metrics, served on ``host:port``; a port that cannot be bound (or a
    missing extra) ends the process with one line, before it registers."""
    try:
        from resque_compat.metrics import WorkerMetrics  # noqa: PLC0415 - the optional metrics extra
    except ImportError:
        fail("--metrics-port needs prometheus-client: pip install 'resque-compat[metrics]'", 2)
        raise  # not reached: fail() exits
    metrics = WorkerMetrics()
    try:
        metrics.serve(port, host)
    except OSError as exc:
        fail(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}", 2)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return metrics


@contextmanager
def burst_progress(cli: CliContext, worker: Worker | ConcurrentWorker) -> Iterator[None]:
    """``work --burst`` on a terminal: a bar of the jobs done against those waiting at the start
    (one worker; a pool's children report nothing back)."""
    if not worker.config.burst or cli.json or not on_terminal(sys.stderr):
        yield
        return
    sizes = worker.resque.queue_sizes()
    total = sum(sizes[q] for q in resolve_queues(worker.config.queues, list(sizes)))
    stop = threading.Event()
    with progress(cli, total, "draining") as advance:

        def follow() -> None:
            shown = 0
            while not stop.wait(0.2):
                done = min(worker.jobs_done, total)
                advance(done - shown)
                shown = done
            advance(min(worker.jobs_done, total) - shown)

        thread = threading.Thread(target=follow, name="resque-burst-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=2)


@click.command("work", epilog=help_epilog("work"))
@click.option("-q", "--queues", metavar="Q1,Q2", help="Queues in priority order; globs and !exclude. [env: QUEUE]")
@click.option("--interval", type=float, help="Seconds between polls when idle; 0 = --burst. [env: INTERVAL; 5]")
@click.option(
    "--blocking/--polling", default=None, help="Block on the first queue (BLMOVE) instead of polling. [env: BLOCKING]"
)
@click.option("-c", "--count", type=int, help="Run a pool of N worker processes. [env: COUNT]")
@click.option(
    "--concurrency", type=click.IntRange(min=1), metavar="N",
    help="Run up to N jobs at once in this process (async jobs on one event loop, others on threads); "
    "each slot is a worker of its own. [env: CONCURRENCY; 1]",
)  # fmt: skip
@click.option("--fork/--no-fork", default=None, help="Fork per job (default) or run jobs in-process.")
@click.option(
    "--jobs-per-fork", type=int, metavar="N",
    help="A forked child runs up to N jobs, then exits (fork once per batch). [env: JOBS_PER_FORK]",
)  # fmt: skip
@click.option(
    "--minutes-per-fork", type=float, metavar="M",
    help="A forked child takes jobs for up to M minutes, then exits. [env: MINUTES_PER_FORK]",
)  # fmt: skip
@click.option(
    "--prefetch", type=click.IntRange(min=0), metavar="K",
    help="No fork only: reserve up to K jobs of one queue at once into the worker's in-flight list "
    "(fewer round trips; they leave the queue early). [env: PREFETCH; 0: off]",
)  # fmt: skip
@click.option("--burst", is_flag=True, default=False, help="Work until the queues are empty, then exit.")
@click.option("--reliable", is_flag=True, default=False, help="Keep the job in hand in Redis; requeue it if we die.")
@click.option("--timeout", type=float, help="Kill a job running longer than this many seconds. [env: JOB_TIMEOUT]")
@click.option("--pidfile", type=click.Path(dir_okay=False), help="Write the pid here. [env: PIDFILE]")
@click.option("-v", "--verbose", count=True, help="-v: info, -vv: debug. [env: VERBOSE, VVERBOSE]")
@click.option(
    "-i", "--import", "imports", multiple=True, metavar="MODULE", help="Module registering jobs. [env: APP_INCLUDE]"
)
@click.option("--failure-backend", type=click.Choice(BACKENDS), help="Where failures go. [env: FAILURE_BACKEND]")
@click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), envvar="LOG_FORMAT", default="text", show_default=True,
    help="Log lines as text or JSON (one object per line, job lines with id, class, queue, worker, duration).",
)  # fmt: skip
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), envvar="METRICS_PORT", metavar="PORT",
    help="Serve Prometheus job metrics on this port (0: off); with --count N, worker k uses PORT+k.",
)  # fmt: skip
@click.option(
    "--metrics-host", envvar="METRICS_HOST", default="127.0.0.1", show_default=True, metavar="ADDR",
    help="Address the metrics port binds to (0.0.0.0: every interface).",
)  # fmt: skip
@pass_cli
@handle_errors
def work(  # noqa: PLR0917 - one parameter per click option
    cli: CliContext,
    queues: str | None,
    interval: float | None,
    blocking: bool | None,
    count: int | None,
    concurrency: int | None,
    fork: bool | None,
    jobs_per_fork: int | None,
    minutes_per_fork: float | None,
    prefetch: int | None,
    burst: bool,
    reliable: bool,
    timeout: float | None,
    pidfile: str | None,
    verbose: int,
    imports: tuple[str, ...],
    failure_backend: str | None,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run jobs from the queues, as Ruby's `rake resque:work` and php-resque's bin/resque do."""
    try:
        config = WorkerConfig.build(
            queues=queues,
            interval=interval,
            blocking=blocking,
            fork=fork,
            burst=burst or None,
            reliable=reliable or None,
            timeout=timeout,
            count=count,
            concurrency=concurrency,
            jobs_per_fork=jobs_per_fork,
            minutes_per_fork=minutes_per_fork,
            prefetch=prefetch,
            pidfile=pidfile,
            verbose=verbose,
            imports=imports,
            failure_backend=failure_backend,
        )
    except WorkerConfigError as exc:
        fail(str(exc), 2)
        return
    # The worker's own lines (start, summaries, pruning, exit) show by default; one line per
    # job only from -v on (failures are WARNINGs, so those show by default too).
    setup(log_format, min(logging.INFO, level_for(config.verbose)), text_format=WORKER_TEXT)
    logging.getLogger("resque_compat.worker.job").setLevel(level_for(config.verbose))
    if metrics_port and config.count > 1 and metrics_port + config.count - 1 > 65535:
        fail(f"--metrics-port {metrics_port} leaves no room for {config.count} workers (PORT+k must be <= 65535)", 2)
    try:
        import_job_modules(config.imports)
    except JobModuleError as exc:
        fail(str(exc), 2)
    parse_address(cli.redis_spec)  # a bad address fails here, once, not in every child
    if config.pidfile:
        try:
            Path(config.pidfile).write_text(f"{os.getpid()}\n")
        except OSError as exc:
            fail(f"cannot write pidfile {config.pidfile}: {exc}", 2)
    kind = ConcurrentWorker if config.concurrency > 1 else Worker
    try:
        if config.count > 1:

            def run_slot(slot: int) -> int:
                metrics = start_metrics(metrics_port + slot, metrics_host) if metrics_port else None
                return kind(config, open_resque(cli, config), watch_parent=True, metrics=metrics).work()

            code = Pool(config.count, run_slot, burst=config.burst).run()
        else:
            metrics = start_metrics(metrics_port, metrics_host) if metrics_port else None
            worker = kind(config, open_resque(cli, config), metrics=metrics)
            with burst_progress(cli, worker):
                code = worker.work()
    finally:
        if config.pidfile:
            with contextlib.suppress(OSError):
                Path(config.pidfile).unlink()
    sys.exit(code)
