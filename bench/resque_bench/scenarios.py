"""The scenarios. Each runs one system on a flushed Redis and returns result rows
(``{"system", "scenario", "jobs_per_s", ...}``), or raises :class:`Unsupported`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from resque_bench.measure import (
    BenchError,
    Drain,
    PeakMemory,
    Workers,
    commandstats,
    drain,
    finish_all,
    latencies,
    percentile,
    tree_rss_bytes,
    wait_all_registered,
    wait_registered,
)
from resque_bench.systems import (
    POLL_INTERVAL,
    RQ,
    SLEEP_SECONDS,
    Launch,
    ResqueCompat,
    System,
    Unsupported,
    Wait,
)

Row = dict[str, Any]
GB = 2**30  # jobs/s per GB: per 1,024 MB of peak RSS


@dataclass(frozen=True)
class Sizes:
    """How long each measurement runs: ``--quick`` for CI and the dev loop, full for the table."""

    seconds: float  # aimed-at duration of a throughput measurement
    pool: int  # workers in the pool scenario
    io_workers: int
    io_rounds: int  # sleep jobs per I/O worker
    poll_samples: int
    block_samples: int
    cmd_jobs: int
    backlog_small: int
    backlog_large: int
    backlog_label: str
    rss_settle: float
    mail_jobs: int  # the mail scenario: this many jobs, each waiting mail_wait seconds
    mail_wait: float
    mail_concurrency: int  # jobs at once in one process (resque-compat, node-resque)
    mail_processes: int  # processes for the peers that run one job per process
    jobs_per_fork: int
    prefetch: int = 64  # resque-compat's --prefetch row of the nofork scenario

    @classmethod
    def quick(cls) -> Sizes:
        return cls(0.5, 4, 8, 8, 10, 100, 1_000, 1_000, 100_000, "100k", 0.3, 200, 0.5, 100, 20, 100)

    @classmethod
    def full(cls) -> Sizes:
        return cls(5.0, 4, 32, 20, 100, 1_000, 2_000, 1_000, 1_000_000, "1m", 2.0, 2_000, 1.0, 200, 50, 100)

    def scaled(self, factor: float) -> Sizes:
        """Every run ``factor`` times as long (``--scale``: 0.1 for a smoke test). Below 1 the
        mail scenario also starts fewer slots and processes (starting 200 is most of its time)
        and its jobs wait less; it keeps at least one job per slot."""
        shrink = min(1.0, factor)
        slots = max(10, round(self.mail_concurrency * shrink))
        return replace(
            self,
            mail_concurrency=slots,
            mail_wait=max(0.05, self.mail_wait * shrink),
            mail_processes=max(2, round(self.mail_processes * shrink)),
            mail_jobs=max(slots, round(self.mail_jobs * factor)),
            seconds=self.seconds * factor,
            io_rounds=max(1, round(self.io_rounds * factor)),
            poll_samples=max(3, round(self.poll_samples * factor)),
            block_samples=max(5, round(self.block_samples * factor)),
            cmd_jobs=max(100, round(self.cmd_jobs * factor)),
        )


@dataclass
class Context:
    r: redis.Redis
    sizes: Sizes

    def fresh(self) -> None:
        self.r.flushall()

    def jobs_for(self, system: System, key: str, minimum: int = 4, scale: float = 1.0) -> int:
        """Enough jobs for ~``sizes.seconds`` of work at the system's expected rate."""
        expected = system.expected.get(key) or system.expected.get("nofork") or system.expected.get("fork", 100)
        return max(minimum, int(expected * self.sizes.seconds * scale))


def _launch(system: System, *, fork: bool | None, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch:
    """The requested mode; ``fork=None`` means no-fork where the system has it, else fork."""
    for each in [fork] if fork is not None else [False, True]:
        launch = system.worker(fork=each, count=count, wait=wait, burst=burst)
        if launch is not None:
            return launch
    how = {True: "fork-per-job ", False: "no-fork ", None: ""}[fork]
    raise Unsupported(f"{system.name} has no {how}worker that waits by {'polling' if wait == 'poll' else 'blocking'}"
                      if wait != "any" else f"{system.name} has no {how}worker")  # fmt: skip


def _row(system: System, scenario: str, jobs_per_s: float | None, **extra: Any) -> Row:
    return {"system": system.name, "scenario": scenario, "jobs_per_s": jobs_per_s, **extra}


def _timeout(n: int, system: System, key: str) -> float:
    expected = system.expected.get(key) or system.expected.get("nofork") or 100
    return 30 + 10 * n / expected


def _throughput(ctx: Context, system: System, scenario: str, *, fork: bool | None, count: int, key: str) -> Row:
    launch = _launch(system, fork=fork, count=count, burst=True)
    n = ctx.jobs_for(system, key if fork is not None else "nofork", scale=min(count, 2))
    ctx.fresh()
    system.prefill(ctx.r, "noop", n)
    with Workers(launch, f"{system.name}-{scenario}") as workers:
        result = drain(ctx.r, system, workers, n, _timeout(n, system, key), partial_ok=True)
    return _row(system, scenario, result.jobs_per_s, jobs=n, seconds=round(result.seconds, 3),
                workers=count, mode=launch.mode, **_partial(result))  # fmt: skip


def _partial(result: Drain) -> dict[str, Any]:
    return {"timed_out_with_unfinished": result.unfinished} if result.unfinished else {}


def nofork(ctx: Context, system: System) -> list[Row]:
    """One no-fork worker; resque-compat also with ``--prefetch`` (a row of its own)."""
    rows = [_throughput(ctx, system, "nofork", fork=False, count=1, key="nofork")]
    if isinstance(system, ResqueCompat) and "--prefetch" in system.flags:
        launch = system.prefetched(ctx.sizes.prefetch)
        n = ctx.jobs_for(system, "nofork")
        ctx.fresh()
        system.prefill(ctx.r, "noop", n)
        with Workers(launch, f"{system.name}-nofork_prefetch") as workers:
            result = drain(ctx.r, system, workers, n, _timeout(n, system, "nofork"), partial_ok=True)
        rows.append(_row(system, "nofork_prefetch", result.jobs_per_s, jobs=n, seconds=round(result.seconds, 3),
                         workers=1, mode=launch.mode, **_partial(result)))  # fmt: skip
    return rows


def fork(ctx: Context, system: System) -> list[Row]:
    return [_throughput(ctx, system, "fork", fork=True, count=1, key="fork")]


def pool(ctx: Context, system: System) -> list[Row]:
    return [_throughput(ctx, system, "pool", fork=None, count=ctx.sizes.pool, key="nofork")]


def _enqueue(ctx: Context, system: System, batch: bool) -> list[Row]:
    key = "enqueue_batch" if batch else "enqueue"
    n = ctx.jobs_for(system, key, minimum=500, scale=0.5)
    argv = system.enqueue(n, batch=batch)
    if argv is None:
        raise Unsupported(f"{system.name} has no batch enqueue" if batch else f"{system.name} has no enqueue driver")
    ctx.fresh()
    done = subprocess.run(argv, env={**os.environ, **system.base_env()}, capture_output=True, text=True,
                          timeout=30 + 10 * n / system.expected.get(key, 1000), check=False)  # fmt: skip
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"enqueue driver exited with {done.returncode}: {tail[:200]}")
    seconds = float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
    queued = int(ctx.r.llen(system.queue_key()))
    if queued != n:
        raise BenchError(f"enqueued {n} jobs but {queued} are queued")
    return [_row(system, key, n / seconds, jobs=n, seconds=round(seconds, 3))]


def enqueue(ctx: Context, system: System) -> list[Row]:
    return _enqueue(ctx, system, batch=False)


def enqueue_batch(ctx: Context, system: System) -> list[Row]:
    return _enqueue(ctx, system, batch=True)


def _latency(ctx: Context, system: System, wait: Wait) -> list[Row]:
    scenario = f"latency_{wait}"
    launch = _launch(system, fork=None, wait=wait)
    polling = wait == "poll"
    samples = ctx.sizes.poll_samples if polling else ctx.sizes.block_samples
    gap = POLL_INTERVAL if polling else 0.002
    ctx.fresh()
    with Workers(launch, f"{system.name}-{scenario}") as workers:
        wait_registered(ctx.r, system, workers)
        # RQ's jobs are not plain bytes: its own driver enqueues and times them
        lat = system.latency_samples(samples) if isinstance(system, RQ) else latencies(ctx.r, system, samples, gap)
    return [_row(system, scenario, None, p50_ms=round(percentile(lat, 0.5) * 1e3, 3),
                 p99_ms=round(percentile(lat, 0.99) * 1e3, 3), samples=len(lat), mode=launch.mode,
                 interval_s=POLL_INTERVAL if polling else None)]  # fmt: skip


def latency_poll(ctx: Context, system: System) -> list[Row]:
    return _latency(ctx, system, "poll")


def latency_block(ctx: Context, system: System) -> list[Row]:
    return _latency(ctx, system, "block")


def idle_rss(ctx: Context, system: System) -> list[Row]:
    launch = _launch(system, fork=None)
    ctx.fresh()
    with Workers(launch, f"{system.name}-idle_rss") as workers:
        wait_registered(ctx.r, system, workers)
        time.sleep(ctx.sizes.rss_settle)
        rss = tree_rss_bytes(workers.pids())
    return [_row(system, "idle_rss", None, rss_mb=round(rss / 2**20, 1), mode=launch.mode)]


HARNESS_COMMANDS = ("config|resetstat", "info", "flushall")


def cmds_per_job(ctx: Context, system: System) -> list[Row]:
    launch = _launch(system, fork=None)
    n = min(ctx.sizes.cmd_jobs, ctx.jobs_for(system, "nofork", 200, 2))
    ctx.fresh()
    system.prefill(ctx.r, "noop", n)
    ctx.r.config_resetstat()
    with Workers(launch, f"{system.name}-cmds_per_job") as workers:
        result = drain(ctx.r, system, workers, n, _timeout(n, system, "nofork"))
        stats = commandstats(ctx.r)
    for name in HARNESS_COMMANDS:
        stats.pop(name, None)
    stats[system.progress_command] = stats.get(system.progress_command, 0) - result.polls
    stats = {k: v for k, v in stats.items() if v > 0}
    total = sum(stats.values())
    top = sorted(stats.items(), key=lambda kv: -kv[1])[:8]
    return [_row(system, "cmds_per_job", None, cmds_per_job=round(total / n, 2), jobs=n, mode=launch.mode,
                 breakdown=" ".join(f"{k}={v}" for k, v in top))]  # fmt: skip


def backlog(ctx: Context, system: System) -> list[Row]:
    if isinstance(system, RQ):
        raise Unsupported("rq: its queues can only be filled through its own enqueue (too slow for a deep backlog)")
    launch = _launch(system, fork=None)
    measured = ctx.jobs_for(system, "nofork", minimum=20)
    rows = []
    for queued, label in ((ctx.sizes.backlog_small, "1k"), (ctx.sizes.backlog_large, ctx.sizes.backlog_label)):
        ctx.fresh()
        system.prefill(ctx.r, "noop", queued + measured)
        with Workers(launch, f"{system.name}-backlog_{label}") as workers:
            result = drain(ctx.r, system, workers, measured, _timeout(measured, system, "nofork"))
        rows.append(_row(system, f"backlog_{label}", result.jobs_per_s, queued=queued, jobs=measured,
                         us_per_job=round(1e6 / result.jobs_per_s, 1), mode=launch.mode))  # fmt: skip
    return rows


def io_sleep50(ctx: Context, system: System) -> list[Row]:
    count = ctx.sizes.io_workers
    launch = _launch(system, fork=None, count=count, burst=True)
    n = count * ctx.sizes.io_rounds
    ctx.fresh()
    system.prefill(ctx.r, "sleep", n)
    with Workers(launch, f"{system.name}-io_sleep50") as workers:
        result = drain(ctx.r, system, workers, n, 60 + 10 * n * SLEEP_SECONDS)
    ideal = count / SLEEP_SECONDS
    return [_row(system, "io_sleep50", result.jobs_per_s, jobs=n, workers=count, mode=launch.mode,
                 efficiency=round(result.jobs_per_s / ideal, 3))]  # fmt: skip


def fork_batch(ctx: Context, system: System) -> list[Row]:
    """Fork once per ``jobs_per_fork`` jobs (resque-multi-job-forks' JOBS_PER_FORK)."""
    per = ctx.sizes.jobs_per_fork
    launch = system.batch_fork(per)
    n = max(5 * per, ctx.jobs_for(system, "fork_batch"))
    ctx.fresh()
    system.prefill(ctx.r, "noop", n)
    with Workers(launch, f"{system.name}-fork_batch") as workers:
        result = drain(ctx.r, system, workers, n, _timeout(n, system, "fork_batch"), partial_ok=True)
    return [_row(system, "fork_batch", result.jobs_per_s, jobs=n, seconds=round(result.seconds, 3),
                 jobs_per_fork=per, mode=launch.mode, **_partial(result))]  # fmt: skip


def mail(ctx: Context, system: System) -> list[Row]:
    """Many jobs waiting on I/O (the seed's mail): resque-compat and node-resque run
    ``mail_concurrency`` at once in one process (resque-compat once with ``async def`` jobs and
    once with plain ones on threads); the others run one per process, ``mail_processes`` of them.
    Measured from the push of every job (the workers already registered) to the last finish,
    with the process tree's peak RSS sampled meanwhile."""
    z = ctx.sizes
    runs: list[tuple[str, str, Launch, int]] = []
    if isinstance(system, ResqueCompat):
        for scenario, kind in (("mail", "asleep"), ("mail_threads", "sleep")):
            runs.append((scenario, kind, system.concurrent(z.mail_concurrency, kind), z.mail_concurrency))
    else:
        try:
            runs.append(("mail", "sleep", system.concurrent(z.mail_concurrency, "sleep"), z.mail_concurrency))
        except Unsupported:
            count = min(z.mail_processes, z.mail_concurrency)
            runs.append(("mail", "sleep", _launch(system, fork=None, count=count), count))
    rows = []
    for scenario, kind, launch, slots in runs:
        try:
            rows.append(_mail_run(ctx, system, scenario, kind, launch=launch, slots=slots))
        except (BenchError, OSError) as exc:
            rows.append(_row(system, scenario, None, error=str(exc), mode=launch.mode))
    return rows


def _mail_run(ctx: Context, system: System, scenario: str, kind: str, *, launch: Launch, slots: int) -> Row:
    z = ctx.sizes
    n = z.mail_jobs
    ctx.fresh()
    with Workers(launch, f"{system.name}-{scenario}") as workers:
        registered = wait_all_registered(ctx.r, system, workers, slots)
        with PeakMemory(workers.pids()) as memory:
            started = time.perf_counter()
            system.prefill(ctx.r, kind, n, seconds=z.mail_wait)
            seconds = finish_all(ctx.r, system, workers, n, timeout=60 + 3 * n * z.mail_wait / slots, started=started)
    rate = n / seconds
    ideal = slots / z.mail_wait
    return _row(system, scenario, rate, jobs=n, seconds=round(seconds, 3), wait_s=z.mail_wait, at_once=slots,
                processes=memory.processes, registered=registered, rss_mb=round(memory.rss / 2**20, 1),
                pss_mb=round(memory.pss / 2**20, 1), per_gb=round(rate / (memory.rss / GB), 1) if memory.rss else None,
                efficiency=round(rate / ideal, 3), mode=launch.mode)  # fmt: skip


Scenario = Callable[[Context, System], list[Row]]

SCENARIOS: dict[str, Scenario] = {
    "nofork": nofork,
    "fork": fork,
    "fork_batch": fork_batch,
    "pool": pool,
    "enqueue": enqueue,
    "enqueue_batch": enqueue_batch,
    "latency_poll": latency_poll,
    "latency_block": latency_block,
    "idle_rss": idle_rss,
    "cmds_per_job": cmds_per_job,
    "backlog": backlog,
    "io_sleep50": io_sleep50,
    "mail": mail,
}
