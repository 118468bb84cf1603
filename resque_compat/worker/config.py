"""Worker settings, from CLI options and the environment variables Ruby and PHP users already set.

Precedence: an explicit CLI option, then the environment (``QUEUE``/``QUEUES``, ``INTERVAL``,
``BLOCKING``, ``COUNT``, ``PIDFILE``, ``VERBOSE``/``VVERBOSE``/``LOGGING``, ``APP_INCLUDE``,
``FORK_PER_JOB``, ``HEARTBEAT_INTERVAL``, ``PRUNE_INTERVAL``, ``RESQUE_PROCLINE_PREFIX``,
``JOB_TIMEOUT``, ``RESQUE_RELIABLE``, ``MIN_INTERVAL``/``MAX_INTERVAL``/``BACKOFF_INTERVAL``,
``TERM_CHILD``/``RESQUE_TERM_TIMEOUT``/``RESQUE_PRE_SHUTDOWN_TIMEOUT``, ``GRACEFUL_TERM``,
``RESQUE_SUMMARY_INTERVAL``, ``CONCURRENCY``, ``JOBS_PER_FORK``/``MINUTES_PER_FORK``), then Ruby's
defaults. ``INTERVAL=0`` means Ruby's
``work(0)``: drain the queues, then exit (``--burst``).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from resque_compat.failures import BACKENDS, BackendName
from resque_compat.protocol.naming import has_patterns, parse_queue_list


class WorkerConfigError(ValueError):
    """A worker setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker (or a pool of them) needs to know besides the Redis address."""

    queues: tuple[str, ...]
    interval: float = 5.0
    blocking: bool = False
    fork: bool = True
    burst: bool = False
    reliable: bool = False
    timeout: float | None = None
    count: int = 1
    #: ``--concurrency N``: up to N jobs at once in one process, each slot a worker of its own
    #: to every peer (``worker/concurrent.py``); implies in-process jobs (no fork)
    concurrency: int = 1
    pidfile: str | None = None
    verbose: int = 0
    imports: tuple[str, ...] = ()
    heartbeat_interval: float = 60.0
    prune_interval: float = 300.0
    failure_backend: BackendName = "redis"
    procline_prefix: str = ""
    #: Ruby 3.0's polling back-off: after a job the next empty poll sleeps ``min_interval``,
    #: each further one ``backoff_interval`` longer, up to ``max_interval`` (both default to
    #: ``interval``, so the sleep is a constant ``interval`` unless they are set)
    min_interval: float | None = None
    max_interval: float | None = None
    backoff_interval: float = 0.1
    #: Ruby's ``TERM_CHILD``: TERM/INT/USR1 send TERM to the job's child (a TermException the job
    #: can catch), then KILL after ``term_timeout`` s (``RESQUE_TERM_TIMEOUT``), first waiting
    #: ``pre_shutdown_timeout`` s for it to end by itself (``RESQUE_PRE_SHUTDOWN_TIMEOUT``)
    term_child: bool = False
    term_timeout: float = 4.0
    pre_shutdown_timeout: float = 0.0
    #: Ruby's ``GRACEFUL_TERM``: TERM acts as QUIT (finish the job, then exit)
    graceful_term: bool = False
    #: seconds between the one-line INFO summaries of a long-running worker (0: none)
    summary_interval: float = 60.0
    #: how often, at most, a busy worker asks Redis for control commands and pause-all-workers
    check_interval: float = 0.25
    #: resque-multi-job-forks' ``JOBS_PER_FORK`` / ``MINUTES_PER_FORK``: a forked child runs
    #: jobs until either limit (None: no such limit; neither set: one job per fork)
    jobs_per_fork: int | None = None
    minutes_per_fork: float | None = None
    #: ``--prefetch K`` (no fork only): reserve up to K jobs of one queue per call into our
    #: in-flight list and pipeline each finish with the next start (0: off, one call per job)
    prefetch: int = 0
    #: how often, at most, a busy worker re-resolves queue patterns against the ``queues`` set
    resolve_interval: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.queues or not any(not q.startswith("!") for q in self.queues):
            raise WorkerConfigError("no queues given: use --queues q1,q2 or set QUEUE (e.g. QUEUE=critical,default)")
        if not math.isfinite(self.interval) or self.interval < 0:
            raise WorkerConfigError(f"interval must be a finite number >= 0, got {self.interval}")
        if self.count < 1:
            raise WorkerConfigError(f"count must be >= 1, got {self.count}")
        if self.concurrency < 1:
            raise WorkerConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.concurrency > 1 and self.fork:
            raise WorkerConfigError("--concurrency runs jobs in the worker process: it cannot be combined with --fork")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise WorkerConfigError(f"timeout must be a finite number > 0 of seconds, got {self.timeout}")
        for name in ("min_interval", "max_interval", "backoff_interval", "term_timeout", "pre_shutdown_timeout"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise WorkerConfigError(f"{name.upper()} must be a finite number >= 0, got {value}")
        if not all(math.isfinite(v) and v > 0 for v in (self.heartbeat_interval, self.prune_interval)):
            raise WorkerConfigError("HEARTBEAT_INTERVAL and PRUNE_INTERVAL must be > 0")
        if self.jobs_per_fork is not None and self.jobs_per_fork < 1:
            raise WorkerConfigError(f"jobs per fork must be >= 1, got {self.jobs_per_fork}")
        minutes = self.minutes_per_fork
        if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
            raise WorkerConfigError(f"minutes per fork must be a finite number > 0, got {minutes}")
        if not self.fork and (self.jobs_per_fork is not None or self.minutes_per_fork is not None):
            raise WorkerConfigError("jobs/minutes per fork need forking: drop --no-fork (FORK_PER_JOB=false)")
        if self.prefetch < 0:
            raise WorkerConfigError(f"prefetch must be >= 0, got {self.prefetch}")
        if self.prefetch > 1 and (self.fork or self.concurrency > 1):
            raise WorkerConfigError("--prefetch runs jobs one after another in the worker: it needs --no-fork")
        if self.failure_backend not in BACKENDS:
            raise WorkerConfigError(f"unknown failure backend {self.failure_backend!r} (choose {', '.join(BACKENDS)})")

    def poll_intervals(self) -> tuple[float, float, float]:
        """Ruby 3.0's ``work``: (min, max, backoff), each clamped to max."""
        top = self.interval if self.max_interval is None else self.max_interval
        low = min(self.interval if self.min_interval is None else self.min_interval, top)
        return low, top, min(self.backoff_interval, top)

    @functools.cached_property
    def has_patterns(self) -> bool:
        """Globs or ``!exclusions`` (asked on every loop turn, so computed once)."""
        return has_patterns(self.queues)

    @classmethod
    def build(
        cls,
        *,
        queues: str | None = None,
        interval: float | None = None,
        blocking: bool | None = None,
        fork: bool | None = None,
        burst: bool | None = None,
        reliable: bool | None = None,
        timeout: float | None = None,
        count: int | None = None,
        concurrency: int | None = None,
        jobs_per_fork: int | None = None,
        minutes_per_fork: float | None = None,
        prefetch: int | None = None,
        pidfile: str | None = None,
        verbose: int | None = None,
        imports: tuple[str, ...] = (),
        failure_backend: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> WorkerConfig:
        """CLI values (None = not given) over the environment over defaults."""
        env = os.environ if environ is None else environ
        queue_text = queues if queues is not None else (env.get("QUEUES") or env.get("QUEUE") or "")
        if interval is None:
            interval = _float(env, "INTERVAL", 5.0)
        if burst is None:
            burst = False
        if interval == 0:  # Ruby's work(0): drain then exit
            burst = True
        if blocking is None:
            blocking = "BLOCKING" in env  # php-resque: set at all, even empty
        if concurrency is None:
            concurrency = int(_float(env, "CONCURRENCY", 1))
        if fork is None:  # concurrency slots run their jobs in the process
            fork = concurrency <= 1 and env.get("FORK_PER_JOB", "").strip().lower() != "false"
        if jobs_per_fork is None and minutes_per_fork is None and fork:  # not forking: the variables are moot
            jobs_per_fork = _int(env, "JOBS_PER_FORK")
            minutes_per_fork = _float(env, "MINUTES_PER_FORK", 0.0) if env.get("MINUTES_PER_FORK", "").strip() else None
        if prefetch is None:
            prefetch = _int(env, "PREFETCH") or 0
        if reliable is None:
            reliable = _truthy(env.get("RESQUE_RELIABLE", ""))
        if timeout is None and env.get("JOB_TIMEOUT"):
            timeout = _float(env, "JOB_TIMEOUT", 0.0)
        if count is None:
            count = int(_float(env, "COUNT", 1))
        if pidfile is None:
            pidfile = env.get("PIDFILE") or None
        if verbose is None or verbose == 0:
            if env.get("VVERBOSE"):
                verbose = 2
            elif env.get("VERBOSE") or env.get("LOGGING"):
                verbose = 1
            else:
                verbose = verbose or 0
        names = list(imports)
        if not names and env.get("APP_INCLUDE"):
            names = parse_queue_list(env["APP_INCLUDE"])
        backend = failure_backend or env.get("FAILURE_BACKEND") or "redis"
        return cls(
            queues=tuple(parse_queue_list(queue_text)),
            interval=interval,
            blocking=blocking,
            fork=fork and hasattr(os, "fork"),
            burst=burst,
            reliable=reliable,
            timeout=timeout,
            count=count,
            concurrency=concurrency,
            jobs_per_fork=jobs_per_fork,
            minutes_per_fork=minutes_per_fork,
            prefetch=prefetch,
            pidfile=pidfile,
            verbose=verbose,
            imports=tuple(names),
            heartbeat_interval=_float(env, "HEARTBEAT_INTERVAL", 60.0),
            prune_interval=_float(env, "PRUNE_INTERVAL", 300.0),
            failure_backend=backend,  # type: ignore[arg-type]
            procline_prefix=env.get("RESQUE_PROCLINE_PREFIX", ""),
            min_interval=_float(env, "MIN_INTERVAL", -1.0) if env.get("MIN_INTERVAL", "").strip() else None,
            max_interval=_float(env, "MAX_INTERVAL", -1.0) if env.get("MAX_INTERVAL", "").strip() else None,
            backoff_interval=_float(env, "BACKOFF_INTERVAL", 0.1),
            term_child="TERM_CHILD" in env,  # Ruby: set at all, even empty
            term_timeout=_float(env, "RESQUE_TERM_TIMEOUT", 4.0),
            pre_shutdown_timeout=_float(env, "RESQUE_PRE_SHUTDOWN_TIMEOUT", 0.0),
            graceful_term="GRACEFUL_TERM" in env,
            summary_interval=_float(env, "RESQUE_SUMMARY_INTERVAL", 60.0),
        )


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise WorkerConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise WorkerConfigError(f"{name} must be a number, got {raw!r}") from None
