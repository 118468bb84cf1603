"""What the history sampler costs: per recorded minute, per tick that is not due, and in Redis memory.

    PYTHONPATH=. python bench/history_cost.py [QUEUES] [FAILURES_PER_MINUTE]

Starts its own redis-server, fills QUEUES queues (default 50) and a failure list of 20,000
entries, then records 300 simulated minutes with FAILURES_PER_MINUTE new failures each (default
60) and reports the sampler's wall time, Redis commands and the history's memory once the
tiers are full (the minute tier is full after 120 samples; the others are extrapolated from
their caps, since a sample's size does not depend on the tier).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import redis

from resque_compat.history import Sampler
from resque_compat.protocol import Keys
from resque_compat.protocol.history import TIERS
from resque_compat.testing.redis_server import RedisServer

NS = "resque:"


def failure(cls: str, at: float) -> bytes:
    record = {
        "failed_at": time.strftime("%Y/%m/%d %H:%M:%S UTC", time.gmtime(at)),
        "payload": {"class": cls, "args": [{"user": 42, "note": "x" * 200}]},
        "exception": "RuntimeError",
        "error": "boom",
        "backtrace": [f"/app/jobs/{cls}.rb:{n}:in `perform'" for n in range(20)],
        "worker": "host:1:default",
        "queue": "default",
    }
    return json.dumps(record, separators=(",", ":")).encode()


def commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def main(queues: int = 50, per_minute: int = 60) -> None:
    with RedisServer() as server:
        client = server.client()
        pipe = client.pipeline()
        for i in range(queues):
            pipe.sadd(NS + "queues", f"queue{i}")
            pipe.rpush(NS + f"queue:queue{i}", *[b'{"class":"Job","args":[]}'] * (i + 1))
        start = 1_795_000_000 - 300 * 60
        for i in range(20_000):
            pipe.rpush(NS + "failed", failure(f"Old{i % 30}", start - 86_400 + i))
        pipe.execute()
        sampler = Sampler(client, Keys())
        times, calls = [], []
        for minute in range(300):
            t = start + minute * 60
            pipe = client.pipeline()
            pipe.incrby(NS + "stat:processed", 3000)
            pipe.incrby(NS + "stat:failed", per_minute)
            for i in range(per_minute):
                pipe.rpush(NS + "failed", failure(f"Class{i % 12}", t - 50 + i * 50 / per_minute))
            pipe.execute()
            before = commands(client)
            began = time.perf_counter()
            sampler.record(t)
            times.append(time.perf_counter() - began)
            calls.append(commands(client) - before)
        memory = {tier.name: int(client.memory_usage(NS + "compat:history:" + tier.name) or 0) for tier in TIERS}
        lengths = {tier.name: int(client.llen(NS + "compat:history:" + tier.name)) for tier in TIERS}
        per_sample = memory["minute"] / lengths["minute"]
        full = sum(per_sample * tier.cap for tier in TIERS)
        idle = Sampler(client, Keys())
        idle.tick()
        began = time.perf_counter()
        for _ in range(100_000):
            idle.tick()
        not_due = (time.perf_counter() - began) / 100_000
        print(f"queues={queues} failures/min={per_minute} failure list={client.llen(NS + 'failed')}")
        p95 = sorted(times)[int(len(times) * 0.95)]
        print(f"record(): median {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms,", end=" ")
        print(f"{statistics.median(calls):.0f} Redis commands")
        print(f"tick() when not due: {not_due * 1e9:.0f} ns, no Redis command")
        print(f"stored: {lengths} samples, {per_sample:.0f} bytes/sample; all tiers full: {full / 1024:.0f} KiB")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
