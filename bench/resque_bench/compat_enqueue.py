"""resque-compat's enqueue driver, a process of its own like every peer's.

    python -m resque_bench.compat_enqueue one|batch N QUEUE     prints {"seconds": s}

``one`` calls ``Resque.enqueue`` N times; ``batch`` calls ``Resque.enqueue_many`` with 1,000 jobs
a call. Env: BENCH_REDIS=host:port.
"""

from __future__ import annotations

import json
import os
import sys
import time

from resque_compat import Resque

BATCH = 1_000


def main(argv: list[str]) -> None:
    how, n, queue = argv[0], int(argv[1]), argv[2]
    resque = Resque(f"redis://{os.environ.get('BENCH_REDIS', '127.0.0.1:6379')}/0", namespace="resque")
    started = time.perf_counter()
    if how == "one":
        for i in range(n):
            resque.enqueue(queue, "Noop", i)
    else:
        for first in range(0, n, BATCH):
            resque.enqueue_many(queue, [("Noop", (i,)) for i in range(first, min(n, first + BATCH))])
    print(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1:])
