"""What a Retry policy costs a job that succeeds: a no-fork burst worker, plain jobs vs the same
jobs with a policy, and the Redis commands each job sends.

    PYTHONPATH=. python bench/retry_overhead.py [JOBS] [ROUNDS]

Starts its own redis-server; JOBS jobs (default 3000) per run, the median of ROUNDS (default 3).
"""

from __future__ import annotations

import statistics
import sys
import time

from resque_compat import Resque, Retry
from resque_compat.registry import JobRegistry
from resque_compat.testing.redis_server import RedisServer
from resque_compat.worker.config import WorkerConfig
from resque_compat.worker.worker import Worker


def noop(*_args: object) -> None:
    """The job: nothing, so the worker's own Redis traffic is what is measured."""


def run(url: str, class_name: str, registry: JobRegistry, jobs: int) -> tuple[float, int]:
    """Jobs per second, and Redis commands per job (INFO commandstats' total calls)."""
    resque = Resque(url)
    resque.redis.flushall()
    resque.enqueue_many("bench", [(class_name, [i, "x"]) for i in range(jobs)])
    resque.redis.config_resetstat()
    worker = Worker(WorkerConfig(queues=("bench",), burst=True, fork=False), resque, registry=registry)
    started = time.perf_counter()
    worker.work()
    elapsed = time.perf_counter() - started
    stats = resque.redis.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat"))
    return jobs / elapsed, round(calls / jobs)


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    registry = JobRegistry()
    registry.register("Plain", noop)
    registry.register("WithRetry", noop, retry=Retry(limit=3))
    with RedisServer() as server:
        for name in ("Plain", "WithRetry"):
            results = [run(server.url, name, registry, jobs) for _ in range(rounds)]
            rate = statistics.median(r[0] for r in results)
            print(f"{name:10} {rate:7.0f} jobs/s  {results[-1][1]} Redis commands per job")


if __name__ == "__main__":
    main()
