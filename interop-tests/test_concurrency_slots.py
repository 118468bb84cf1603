"""A ``--concurrency`` worker beside Ruby, php-resque and node-resque workers on the same queues
and host: each of its slots (``host:pid:queues:slot-K``) is a worker to them.

Every slot holds a job while the peers start, so a peer's start-up pruning that took a slot
would be seen (its registration or its job record gone). A planted dead worker of this host
and queue set shows each pruner did run. Then jobs from every producer run exactly once. The
second test kills the process: a peer's pruner must then take its slots as dead workers.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from functools import partial
from typing import Any

import pytest
import redis
from harness import Peers, Running, text
from waiting import wait_for

from resque_compat import Resque
from resque_compat.protocol import WorkerId

QUEUES = "cs-high,cs-low"
SLOTS = 4
JOBS = 200
#: our worker's periodic pruning must not be what removes the planted dead worker
QUIET = {"HEARTBEAT_INTERVAL": "600"}


def registered(r: redis.Redis) -> set[str]:
    return {text(m) for m in r.smembers("resque:workers")}


def slots_of(r: redis.Redis, pid: int) -> list[str]:
    return sorted(w for w in registered(r) if WorkerId.parse(w).pid == str(pid) and WorkerId.parse(w).slot)


def has_new(r: redis.Redis, before: set[str], planted: str | None) -> bool:
    return bool(registered(r) - before - {planted})


def gone(r: redis.Redis, wid: str) -> bool:
    return wid not in registered(r)


def holding(r: redis.Redis, ids: list[str]) -> bool:
    return all(r.exists(f"resque:worker:{w}") for w in ids)


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def plant_dead_worker(r: redis.Redis) -> str:
    """A worker of this host and queue set whose process is gone: what a same-host pruner removes."""
    wid = f"{os.uname().nodename}:{dead_pid()}:{QUEUES}"
    r.sadd("resque:workers", wid)
    r.set(f"resque:worker:{wid}:started", "2026-01-01 00:00:00 +0000")
    return wid


def start_ours(peers: Peers, r: redis.Redis) -> tuple[Running, list[str]]:
    ours = peers.start_worker("python", QUEUES, concurrency=SLOTS, env=QUIET)
    wait_for(lambda: len(slots_of(r, ours.proc.pid)) == SLOTS, what="our slots to register")
    return ours, slots_of(r, ours.proc.pid)


def hold_every_slot(resque: Resque, r: redis.Redis, ids: list[str]) -> None:
    for k in range(len(ids)):
        resque.enqueue("cs-high", "Interop::Hold", f"hold{k}")
    wait_for(lambda: holding(r, ids), what="every slot to hold a job")


def ran(record: dict[str, Any]) -> tuple[str, int]:
    args = record["args"]
    job = args[0] if isinstance(args, list) else args
    return job["src"], job["n"]


def test_peers_keep_every_live_slot_and_run_each_job_once(
    peers: Peers, resque: Resque, r: redis.Redis, request: pytest.FixtureRequest
) -> None:
    others = [n for n in ("node", "ruby", "php-cb", "php-fork") if peers.available(n)]
    if not peers.available("python") or not others:
        pytest.skip(str(peers["node"].missing or "needs a peer's worker beside ours"))
    running: dict[str, Running] = {}
    seen: dict[str, Any] = {}
    try:
        running["python"], ids = start_ours(peers, r)
        hold_every_slot(resque, r, ids)
        for name in others:
            fake = None if name == "node" else plant_dead_worker(r)  # node-resque prunes no one at start
            before = registered(r)
            running[name] = peers.start_worker(name, QUEUES)
            wait_for(partial(has_new, r, before, fake), what=f"{name}'s worker to register")
            if fake is not None:
                wait_for(partial(gone, r, fake), what=f"{name}'s start-up pruning to run")
            assert set(ids) <= registered(r), f"{name} pruned live slots: {sorted(set(ids) - registered(r))}"
            assert holding(r, ids), f"a slot lost its job record when {name} started"

        # how each peer reads a slot's id, from its own API
        if "ruby" in others:
            listed = {w["id"]: w for w in peers.run("ruby", "workers")}
            seen["ruby"] = {w: (listed[w]["state"], listed[w]["job"].get("queue")) for w in ids}
            assert all(state == "working" for state, _ in seen["ruby"].values()), seen["ruby"]
            pages = {"/working": f"<h1 class='wi'>{SLOTS} of "} | {f"/workers/{w}": w for w in ids}
            seen["resque-web"] = peers.run("ruby", "web_many", json.dumps(pages))
            assert all(page == {"status": 200, "has_text": True} for page in seen["resque-web"].values())
        for php in (n for n in others if n.startswith("php")):
            listed = {w["id"]: w for w in peers.run(php, "workers")}
            seen[php] = {w: (listed[w]["job"] or {}).get("queue") for w in ids}
            assert all(seen[php].values()), seen[php]  # Resque_Worker::find + job() read each slot's record
        if "node" in others:
            seen["node"] = peers.run("node", "workers")  # keyed host:pid: node folds the slots into one entry

        r.set("resque:interop:open", 1)
        producers = ["python", *[n for n in others if n != "python"]]
        queues = QUEUES.split(",")
        share = JOBS // len(producers)
        for i, producer in enumerate(producers):
            numbers = range(i * share, JOBS if i == len(producers) - 1 else (i + 1) * share)
            if producer == "python":
                for n in numbers:
                    resque.enqueue(queues[n % 2], "Interop_Echo", {"n": n, "src": producer})
                continue
            php = producer.startswith("php")
            jobs = [[queues[n % 2], "Interop_Echo", {"n": n, "src": producer} if php else [{"n": n, "src": producer}]]
                    for n in numbers]  # fmt: skip
            peers.run(producer, "enqueue_many", json.dumps(jobs))

        def all_ran() -> bool:
            return r.llen("resque:interop:results") >= JOBS + SLOTS and not any(
                r.llen(f"resque:queue:{q}") for q in queues
            )

        wait_for(all_ran, timeout=180, what=f"{JOBS} jobs to run")
        assert set(ids) <= registered(r), "a live slot was pruned while working"
    finally:
        codes = {name: proc.stop() for name, proc in running.items()}
    records = [json.loads(x) for x in r.lrange("resque:interop:results", 0, -1)]
    echoes = [rec for rec in records if rec["class"] != "Interop::Hold"]
    request.node.user_properties.append(
        ("aspects", {"seen": seen, "jobs_by_worker": dict(Counter(rec["by"] for rec in echoes)), "exit_codes": codes})
    )
    counts = Counter(ran(rec) for rec in echoes)
    assert len(echoes) == JOBS and all(times == 1 for times in counts.values()), "a job lost or run twice"
    assert sorted(rec["args"][0] for rec in records if rec["class"] == "Interop::Hold") == [
        f"hold{k}" for k in range(SLOTS)
    ]
    assert r.llen("resque:failed") == 0, r.lrange("resque:failed", 0, 2)
    assert codes["python"] == 0 and not registered(r) & set(ids)


@pytest.mark.parametrize("pruner", ["ruby", "php-cb"])
def test_a_peers_pruner_takes_the_slots_of_a_dead_process(
    peers: Peers, resque: Resque, r: redis.Redis, pruner: str, request: pytest.FixtureRequest
) -> None:
    if not peers.available(pruner) or not peers.available("python"):
        pytest.skip(str(peers[pruner].missing or peers["python"].missing))
    ours, ids = start_ours(peers, r)
    hold_every_slot(resque, r, ids)
    ours.proc.kill()
    ours.proc.wait()
    ours.stop()
    peer = peers.start_worker(pruner, QUEUES)
    try:
        wait_for(lambda: not set(ids) & registered(r), what=f"{pruner}'s pruner to take the dead slots")
    finally:
        peer.stop()
    failed = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    request.node.user_properties.append(("aspects", {"failures": len(failed)}))
    assert not any(r.exists(f"resque:worker:{w}") for w in ids)
    if pruner == "ruby":  # Ruby records the job each slot held: DirtyExit, under the slot's id
        assert sorted(f["worker"] for f in failed) == ids
        assert {f["exception"] for f in failed} == {"Resque::DirtyExit"}
    else:  # php-resque's pruner drops a dead worker's record without a failure (any worker's)
        assert failed == []
