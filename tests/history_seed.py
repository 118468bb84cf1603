"""A week of history as the sampler records it, for the dashboard tests and the README screenshot:
a steady mail queue, a default queue that backs up and drains, a class that starts failing
40 minutes ago, and two minutes with no sampler (a gap)."""

from __future__ import annotations

import json
import math
import time

import redis

from resque_compat.history import Sampler
from resque_compat.protocol import Keys

NS = "resque:"
#: minutes ago that no sampler recorded
GAP = (12, 13)
FAILING_SINCE = 40  # minutes ago, ``Mailer::Bounce`` starts failing


def _failure(cls: str, at: float) -> bytes:
    record = {
        "failed_at": time.strftime("%Y/%m/%d %H:%M:%S UTC", time.gmtime(at)),
        "payload": {"class": cls, "args": []},
        "exception": "RuntimeError",
        "error": "boom",
        "backtrace": [],
        "worker": "vm:1:mail",
        "queue": "mail",
    }
    return json.dumps(record, separators=(",", ":")).encode()


def seed_history(client: redis.Redis, now: float | None = None) -> list[float]:
    """Record samples for the last week (hourly), day (every 10 min) and hour (every minute);
    returns the sample times."""
    end = float(client.time()[0]) if now is None else now
    end -= end % 60
    sampler = Sampler(client, Keys())
    times = [end - h * 3600 for h in range(7 * 24, 24, -1)]
    times += [end - m * 600 for m in range(24 * 6, 6, -1)]
    times += [end - m * 60 for m in range(60, -1, -1) if m not in GAP]
    for name in ("mail", "default"):
        client.sadd(NS + "queues", name)
    processed = failed = 0
    last = times[0] - 60
    for t in times:
        minutes = (t - last) / 60
        ago = (end - t) / 60
        done = int(minutes * (40 + 25 * math.sin(t / 5400)))
        bounces = int(minutes * 3) if ago <= FAILING_SINCE else 0
        timeouts = int(minutes * 1) if int(t / 60) % 7 == 0 else 0
        processed += done + bounces + timeouts
        failed += bounces + timeouts
        pipe = client.pipeline()
        pipe.set(NS + "stat:processed", processed)
        pipe.set(NS + "stat:failed", failed)
        for i in range(bounces):
            pipe.rpush(NS + "failed", _failure("Mailer::Bounce", t - 30 + i))
        for i in range(timeouts):
            pipe.rpush(NS + "failed", _failure("Report::Timeout", t - 20 + i))
        pipe.delete(NS + "queue:mail", NS + "queue:default")
        pipe.rpush(NS + "queue:mail", *[b"{}"] * (5 + int(t / 60) % 4))
        backlog = max(0, int(60 - abs(ago - 30) * 3)) if ago <= 60 else int(10 + 8 * math.sin(t / 20000))
        if backlog:
            pipe.rpush(NS + "queue:default", *[b"{}"] * backlog)
        pipe.execute()
        sampler.record(t + 1)
        last = t
    return [t + 1 for t in times]
