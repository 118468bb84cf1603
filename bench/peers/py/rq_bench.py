"""RQ bench driver (runs in the bench's own venv with rq installed).

    python rq_bench.py enqueue N QUEUE          one by one with Queue.enqueue; prints {"seconds": s}
    python rq_bench.py enqueue_batch N QUEUE [sleep SECONDS]
                                                Queue.enqueue_many in chunks of 1,000 (noop, or sleep(SECONDS) jobs)
    python rq_bench.py work simple|fork QUEUE [burst]
    python rq_bench.py latency SAMPLES QUEUE    enqueue stamp jobs one at a time (3 warm-ups first), wait for each;
                                                prints {"latencies": [...]}

Env: BENCH_REDIS=host:port.
"""

import json
import os
import random
import sys
import time

from redis import Redis
from rq import Queue, SimpleWorker, Worker

host, port = os.environ.get("BENCH_REDIS", "127.0.0.1:6379").rsplit(":", 1)
r = Redis(host=host, port=int(port))
command, args = sys.argv[1], sys.argv[2:]

if command in ("enqueue", "enqueue_batch"):
    n, q = int(args[0]), Queue(args[1], connection=r)
    sleeping = args[2:3] == ["sleep"]
    seconds = float(args[3]) if sleeping else 0.0
    target, job_args = ("peer_jobs.sleep", lambda i: (seconds,)) if sleeping else ("peer_jobs.noop", lambda i: (i,))
    t0 = time.perf_counter()
    if command == "enqueue":
        for i in range(n):
            q.enqueue("peer_jobs.noop", i)
    else:
        for start in range(0, n, 1000):
            q.enqueue_many([Queue.prepare_data(target, job_args(i)) for i in range(start, min(n, start + 1000))])
    print(json.dumps({"seconds": time.perf_counter() - t0}))
elif command == "work":
    kind, q = args[0], Queue(args[1], connection=r)
    worker_class = SimpleWorker if kind == "simple" else Worker
    worker_class([q], connection=r).work(burst=len(args) > 2 and args[2] == "burst", logging_level="WARNING")
elif command == "latency":
    samples, q = int(args[0]), Queue(args[1], connection=r)
    latencies = []
    for _ in range(samples + 3):
        time.sleep(random.uniform(0, 0.002))
        t = time.time()
        q.enqueue("peer_jobs.stamp")
        _, stamp = r.blpop(["resque:bench:stamps"], timeout=10) or (None, None)
        if stamp is None:
            sys.exit("no stamp within 10 s")
        latencies.append(float(stamp) - t)
    print(json.dumps({"latencies": latencies[3:]}))
else:
    sys.exit(f"unknown command {command}")
