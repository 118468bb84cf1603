"""Dashboard at scale (issue 12, point 8): 100,000 registered workers and 1,000,000 failures in a
private redis-server, every page and API twin timed, then "Retry all" and "Clear" on the million.

    python bench/dashboard_scale.py [--workers 100000] [--failures 1000000] [--repeat 3]

Prints one line per route: the median of ``--repeat`` requests (ms) and the response size.
Seeding is pipelined (about a minute for the default sizes); nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resque_compat import Resque
from resque_compat.testing.redis_server import RedisServer
from resque_compat.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NS = "resque:"
FAILURE = {
    "failed_at": "2026/11/26 20:20:42 UTC",
    "exception": "RuntimeError",
    "error": "boom",
    "backtrace": ["jobs.rb:13:in `perform'"],
    "worker": "host0:1:default",
    "queue": "default",
}


def seed(client: Any, workers: int, failures: int, batch: int = 10_000) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    for start in range(0, workers, batch):
        pipe = client.pipeline(transaction=False)
        ids = [f"host{i % 50}:{i}:default,low" for i in range(start, min(workers, start + batch))]
        pipe.sadd(NS + "workers", *ids)
        pipe.hset(NS + "workers:heartbeat", mapping=dict.fromkeys(ids, now))
        for n, wid in enumerate(ids):
            pipe.set(f"{NS}worker:{wid}:started", "2026-11-26 20:20:39 +0000")
            if n % 10 == 0:  # every tenth worker is busy
                job = {"class": "Work", "args": [n]}
                pipe.set(
                    f"{NS}worker:{wid}", json.dumps({"queue": "default", "run_at": now[:19] + "Z", "payload": job})
                )
        pipe.execute()
    for start in range(0, failures, batch):
        count = min(failures, start + batch) - start
        entries = [json.dumps({**FAILURE, "payload": {"class": "Work", "args": [start + i]}}) for i in range(count)]
        client.rpush(NS + "failed", *entries)
    client.sadd(NS + "queues", "default", "low")


PAGES = [
    "/overview", "/overview.poll", "/working", "/queues", "/queues/default", "/workers", "/workers/all",
    "/workers/host7", "/workers.poll", "/workers/host7:7:default,low", "/failed", "/failed?start=500000",
    "/failed?order=asc", "/stats/resque", "/stats/keys", "/stats.txt", "/delayed", "/schedule",
]  # fmt: skip


def timed(client: TestClient, method: str, path: str, repeat: int) -> tuple[float, int, int]:
    times = []
    size = status = 0
    for _ in range(repeat):
        t = time.perf_counter()
        response = client.request(method, path, json={} if method == "POST" else None)
        times.append((time.perf_counter() - t) * 1000)
        size, status = len(response.content), response.status_code
    return statistics.median(times), size, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--failures", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    with RedisServer() as server:
        client = server.client()
        t = time.perf_counter()
        seed(client, opts.workers, opts.failures)
        print(f"seeded {opts.workers} workers, {opts.failures} failures in {time.perf_counter() - t:.1f} s")
        app = create_app(Resque(server.url, namespace="resque"))
        with TestClient(app, base_url="http://localhost") as c:
            c.get("/overview")
            worst = 0.0
            for page in PAGES:
                for path in (page, "/api" + page):
                    if path.startswith("/api/") and (".poll" in path or path.endswith(".txt")):
                        continue
                    ms, size, status = timed(c, "GET", path, opts.repeat)
                    worst = max(worst, ms)
                    print(f"{ms:8.1f} ms  {size / 1024:9.1f} KiB  {status}  GET {path}")
            print(f"slowest page: {worst:.1f} ms")
            for action in ("/api/failed/requeue/all", "/api/failed/clear"):
                t = time.perf_counter()
                response = c.post(action, json={})
                started = (time.perf_counter() - t) * 1000
                body = response.json()
                print(f"{started:8.1f} ms  POST {action} -> {response.status_code} {json.dumps(body)[:160]}")
                task = body.get("task")
                while task and not task.get("done"):
                    time.sleep(0.5)
                    task = c.get(f"/api/tasks/{task['id']}").json()
                if task:
                    print(f"          finished in {task['seconds']:.1f} s: {json.dumps(task)[:200]}")
            print(f"queue default: {client.llen(NS + 'queue:default')} jobs, failed: {client.llen(NS + 'failed')}")


if __name__ == "__main__":
    main()
