"""Coexistence: long-running workers of every implementation on the same queues and host.

Our worker starts first; Ruby's and php-resque's start after it with the same queue list, so
their start-up pruning (same host, pid not in their ``ps | grep resque`` list) looks at ours.
Then 400 jobs from every producer go through them all: each must run exactly once, and no
live worker may lose its registration.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import partial
from typing import Any

import pytest
import redis
from harness import IMPLEMENTATIONS, Peers, Running, text
from waiting import wait_for

from resque_compat import Resque

QUEUES = "co-high,co-low"
JOBS = 400


def registered(r: redis.Redis) -> set[str]:
    return {text(m) for m in r.smembers("resque:workers")}


def has_new(r: redis.Redis, before: set[str]) -> bool:
    return bool(registered(r) - before)


def enqueue_share(peers: Peers, resque: Resque, producer: str, numbers: range) -> None:
    """``producer`` enqueues jobs ``numbers`` with its own client, alternating the two queues."""
    queues = QUEUES.split(",")
    if producer == "python":
        for n in numbers:
            resque.enqueue(queues[n % 2], "Interop_Echo", {"n": n, "src": producer})
        return
    wrap = (
        (lambda n: {"n": n, "src": producer}) if producer.startswith("php") else (lambda n: [{"n": n, "src": producer}])
    )
    peers.run(producer, "enqueue_many", json.dumps([[queues[n % 2], "Interop_Echo", wrap(n)] for n in numbers]))


def ran(record: dict[str, Any]) -> tuple[str, int]:
    args = record["args"]
    job = args[0] if isinstance(args, list) else args
    return job["src"], job["n"]


def test_every_implementation_on_the_same_queues(
    peers: Peers, resque: Resque, r: redis.Redis, request: pytest.FixtureRequest
) -> None:
    present = [name for name in IMPLEMENTATIONS if peers.available(name)]
    workers_of = [name for name in present if name != "python"]
    if len(present) < 2 or not workers_of:
        # node-resque is what ./dev test installs: its reason classifies the skip (see skip_policy)
        pytest.skip(str(peers["node"].missing or f"needs two implementations' workers (available: {present})"))
    # ours first, so that the Ruby and PHP workers' start-up pruning sees it; node before the pruners too
    order = [n for n in ("python", "node", "ruby", "php-cb", "php-fork") if n in present]
    running: dict[str, Running] = {}
    ids: dict[str, str] = {}
    try:
        for name in order:
            before = registered(r)
            running[name] = peers.start_worker(name, QUEUES)
            wait_for(partial(has_new, r, before), what=f"{name}'s worker to register")
            [ids[name]] = registered(r) - before
        survivors_after_start = registered(r)
        pruned_at_start = sorted(n for n, wid in ids.items() if wid not in survivors_after_start)

        producers = ["python", *workers_of]
        share = JOBS // len(producers)
        for i, producer in enumerate(producers):
            end = JOBS if i == len(producers) - 1 else (i + 1) * share
            enqueue_share(peers, resque, producer, range(i * share, end))

        def all_ran() -> bool:
            return r.llen("resque:interop:results") >= JOBS and not any(
                r.llen(f"resque:queue:{q}") for q in QUEUES.split(",")
            )

        wait_for(all_ran, timeout=180, what=f"{JOBS} jobs to run")
        wait_for(lambda: not any(r.exists(f"resque:worker:{w}") for w in ids.values()), what="workers to go idle")
        pruned_during = sorted(n for n, wid in ids.items() if wid not in registered(r))
    finally:
        codes = {name: proc.stop() for name, proc in running.items()}

    records = [json.loads(x) for x in r.lrange("resque:interop:results", 0, -1)]
    counts = Counter(ran(rec) for rec in records)
    by_worker = Counter(rec["by"] for rec in records)
    request.node.user_properties.append(
        ("aspects", {"jobs_by_worker": dict(by_worker), "pruned": pruned_during, "exit_codes": codes})
    )
    assert len(records) == JOBS, f"{len(records)} results for {JOBS} jobs"
    assert not [job for job, times in counts.items() if times != 1], "some jobs ran more than once"
    assert r.llen("resque:failed") == 0, r.lrange("resque:failed", 0, 2)
    # node-resque's process title matches neither Ruby's nor PHP's "live worker" pattern: they
    # prune its registration (a peer-to-peer fact, reference node-resque §3.5). Everyone else must survive.
    must_survive = [n for n in ids if n != "node"]
    assert not [n for n in pruned_at_start if n in must_survive], f"pruned at start-up: {pruned_at_start}"
    assert not [n for n in pruned_during if n in must_survive], f"pruned while working: {pruned_during}"
    assert registered(r) == set(), f"left registered after SIGQUIT: {registered(r)}"
