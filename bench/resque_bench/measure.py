"""How numbers are taken, the same way for every system.

* Throughput: the harness polls the system's finished-job counter every few ms and divides the
  jobs finished between the first and the last reading by the time between them. Process
  start-up (interpreter, imports, registration) is outside the window, and nothing inside a
  worker is trusted to time itself.
* Latency: the harness pushes one ``stamp`` job (the system's own bytes) and notes the wall
  clock; the job RPUSHes its own wall clock to ``resque:bench:stamps`` when it starts.
* RSS: the sum of VmRSS over the worker's process tree, read from ``/proc``; under load, the
  peak of samples taken every quarter second while the jobs run (PSS beside it, which splits
  pages that forked processes share instead of counting them once per process).
* Commands: ``CONFIG RESETSTAT``, then ``INFO commandstats`` (commands run inside Lua are counted
  by Redis too), minus the harness's own polling reads.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis

from resque_bench.cache import CACHE
from resque_bench.systems import QUEUE, STAMPS, Launch, System

POLL_EVERY = 0.005


class BenchError(RuntimeError):
    """A measurement that could not be taken (the row carries the message)."""


class Workers:
    """Started worker processes, each in its own process group so stopping takes its children too."""

    def __init__(self, launch: Launch, log_name: str) -> None:
        logs = CACHE / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{log_name}.log"
        self.launch = launch
        env = {**os.environ, **launch.env}
        with self.log_path.open("wb") as log:
            self.procs = [
                subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                for argv in launch.argvs
            ]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def all_exited(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def failed(self) -> str | None:
        """Why a worker died on its own (non-zero exit), with the log's last line."""
        for p in self.procs:
            if p.poll() not in (None, 0):
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
                return f"worker exited with {p.returncode}: {tail[0][:200]} (log: {self.log_path})"
        return None

    def stop(self, grace: float = 1.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                _signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, deadline - time.monotonic()))
            _signal_group(p.pid, signal.SIGKILL)  # whatever of the group is left (forked children, minions)
            p.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class Drain:
    jobs: int
    seconds: float
    polls: int
    unfinished: int = 0  # jobs left when a partial_ok drain timed out

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


def drain(
    r: redis.Redis, system: System, workers: Workers, target: int, timeout: float, *, partial_ok: bool = False
) -> Drain:
    """Wait until ``target`` jobs are finished; the rate between the first and last readings.
    ``partial_ok``: at the timeout, the rate over the jobs done so far (a busy machine can slow a
    system far below the rate its job count was sized for), marked as such in the row."""
    first: tuple[float, int] | None = None
    polls = 0
    deadline = time.monotonic() + timeout
    while True:
        done = system.progress(r)
        now = time.perf_counter()
        polls += 1
        if done > 0 and first is None:
            first = (now, done)
        if done >= target:
            break
        problem = workers.failed()
        if problem:
            raise BenchError(problem)
        if workers.all_exited():
            raise BenchError(f"workers exited after {done} of {target} jobs (log: {workers.log_path})")
        if time.monotonic() > deadline:
            if partial_ok and first is not None and done - first[1] >= max(10, target // 10):
                return Drain(done - first[1], now - first[0], polls, unfinished=target - done)
            raise BenchError(f"timeout after {timeout:.0f} s with {done} of {target} jobs done")
        time.sleep(POLL_EVERY)
    if first is None or done == first[1]:
        raise BenchError(f"all {target} jobs finished before the second reading: use more jobs")
    return Drain(done - first[1], now - first[0], polls)


def wait_all_registered(r: redis.Redis, system: System, workers: Workers, want: int, timeout: float = 180.0) -> int:
    """Until ``want`` workers (or slots) are registered, or their count stopped growing for 3 s
    (a system that registers fewer entries than it runs jobs at once); returns the count."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        got = system.registrations(r)
        if got >= want:
            return got
        if got != last:
            last, since = got, time.monotonic()
        elif got > 0 and time.monotonic() - since > 3.0:
            return got
        problem = workers.failed()
        if problem:
            raise BenchError(problem)
        if time.monotonic() > deadline:
            raise BenchError(f"{got} of {want} workers registered within {timeout:.0f} s (log: {workers.log_path})")
        time.sleep(0.05)


def finish_all(
    r: redis.Redis, system: System, workers: Workers, target: int, *, timeout: float, started: float
) -> float:
    """Seconds from ``started`` (a ``perf_counter`` taken before the jobs were pushed) until
    ``target`` jobs are finished."""
    deadline = time.monotonic() + timeout
    while (done := system.progress(r)) < target:
        problem = workers.failed()
        if problem:
            raise BenchError(problem)
        if time.monotonic() > deadline:
            raise BenchError(f"timeout after {timeout:.0f} s with {done} of {target} jobs done")
        time.sleep(POLL_EVERY)
    return time.perf_counter() - started


def wait_registered(r: redis.Redis, system: System, workers: Workers, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not system.registered(r):
        problem = workers.failed()
        if problem:
            raise BenchError(problem)
        if time.monotonic() > deadline:
            raise BenchError(f"no worker registered within {timeout:.0f} s (log: {workers.log_path})")
        time.sleep(0.02)


def latencies(r: redis.Redis, system: System, samples: int, gap: float, warmup: int = 3) -> list[float]:
    """Enqueue→start, one job at a time, each after a random pause of up to ``gap`` seconds
    (so a polling worker is caught at every phase of its sleep)."""
    out: list[float] = []
    r.delete(STAMPS)
    for i in range(samples + warmup):
        time.sleep(random.uniform(0, gap))
        payload = system.payload("stamp", i)
        t = time.time()
        r.rpush(system.queue_key(), payload)
        got = r.blpop([STAMPS], timeout=10)
        if got is None:
            raise BenchError("a stamp job did not start within 10 s")
        if i >= warmup:
            out.append(float(got[1]) - t)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def tree_rss_bytes(pids: list[int]) -> int:
    """Sum of VmRSS over ``pids`` and all their descendants (Linux /proc)."""
    return sum(_status_kb(pid, "VmRSS:") for pid in tree_pids(pids)) * 1024


def tree_pss_bytes(pids: list[int]) -> int:
    """Sum of PSS (shared pages divided among the processes sharing them) over the tree."""
    total = 0
    for pid in tree_pids(pids):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total * 1024


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def tree_pids(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class PeakMemory:
    """Samples the RSS and PSS of a process tree in a thread while the block runs; keeps the peaks
    and the most processes seen at once."""

    def __init__(self, pids: list[int], every: float = 0.25) -> None:
        self.pids, self.every = pids, every
        self.rss = self.pss = self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-peak-memory", daemon=True)

    def sample(self) -> None:
        tree = tree_pids(self.pids)
        self.processes = max(self.processes, sum(1 for p in tree if Path(f"/proc/{p}").exists()))
        self.rss = max(self.rss, sum(_status_kb(p, "VmRSS:") for p in tree) * 1024)
        self.pss = max(self.pss, tree_pss_bytes(self.pids))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def commandstats(r: redis.Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT."""
    stats = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def queue_empty(r: redis.Redis, system: System) -> bool:
    return int(r.llen(system.queue_key())) == 0


__all__ = [
    "QUEUE", "BenchError", "Drain", "PeakMemory", "Workers", "commandstats", "drain", "finish_all", "latencies",
    "tree_rss_bytes", "wait_all_registered",
]  # fmt: skip
