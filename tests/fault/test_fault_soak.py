"""Soak: at least 100,000 jobs through one fork and one no-fork worker (``SOAK_JOBS`` each).

Flat memory (RSS growth under 5 % after warm-up), no leaked file descriptors, no zombies.
Slow: run it with ``pytest -m slow tests/fault/test_fault_soak.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from fault_results import ScenarioResult
from waiting import wait_for
from worker_farm import QUEUE, Farm

from resque_compat.testing.redis_server import RedisServer

SOAK_JOBS = int(os.environ.get("SOAK_JOBS", "100000"))
WARMUP = 0.1  # the first 10 % fill caches, the allocator's pools, the connection pool


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def zombies_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return found


@pytest.fixture
def soak_farm() -> Iterator[Farm]:
    with RedisServer() as server:
        farm = Farm(server.url)
        yield farm
        farm.close()


@pytest.mark.slow
@pytest.mark.scenario("soak")
@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_soak_memory_fds_zombies(soak_farm: Farm, fault_result: ScenarioResult, mode: str) -> None:
    farm = soak_farm
    for start in range(0, SOAK_JOBS, 5000):
        farm.resque.enqueue_many(QUEUE, [("QuickJob", [n]) for n in range(start, min(SOAK_JOBS, start + 5000))])
    started = time.monotonic()
    worker = farm.start(mode, "--interval", "0.5")

    def processed() -> int:
        return int(farm.raw.get("resque:stat:processed") or 0)

    wait_for(lambda: processed() >= SOAK_JOBS * WARMUP, timeout=3600, interval=0.5, what="warm-up")
    warm_rss, warm_fds = rss_kib(worker.pid), open_fds(worker.pid)
    peak_rss, peak_fds, max_zombies = warm_rss, warm_fds, 0
    while processed() < SOAK_JOBS:
        assert worker.poll() is None, farm.log_tail()
        peak_rss = max(peak_rss, rss_kib(worker.pid))
        peak_fds = max(peak_fds, open_fds(worker.pid))
        max_zombies = max(max_zombies, len(zombies_of(worker.pid)))
        assert time.monotonic() - started < 3600, "soak did not finish within an hour"
        time.sleep(0.5)
    end_rss, end_fds, end_zombies = rss_kib(worker.pid), open_fds(worker.pid), zombies_of(worker.pid)
    seconds = time.monotonic() - started
    assert farm.stop(worker) == 0

    fault_result.jobs = SOAK_JOBS
    fault_result.completed = processed()
    fault_result.failed = farm.raw.llen("resque:failed")
    fault_result.lost = SOAK_JOBS - fault_result.completed - farm.raw.llen(f"resque:queue:{QUEUE}")
    growth = (end_rss - warm_rss) / warm_rss
    fault_result.note(
        f"{mode[2:]}: {SOAK_JOBS / seconds:.0f} jobs/s; RSS {warm_rss} -> {end_rss} KiB "
        f"({growth:+.1%}, peak {peak_rss}); fds {warm_fds} -> {end_fds} (peak {peak_fds}); "
        f"zombies at end {len(end_zombies)} (max seen {max_zombies})"
    )
    assert fault_result.completed == SOAK_JOBS and fault_result.failed == 0
    assert growth < 0.05, f"RSS grew {growth:.1%} after warm-up"
    assert end_fds <= warm_fds, f"file descriptors {warm_fds} -> {end_fds}"
    assert not end_zombies
    # fork mode reaps a child that already reported its outcome at the next fork (or when idle), so at
    # most two are seen at once: that one and the running job's child between its exit and its reaping
    assert max_zombies <= 2
