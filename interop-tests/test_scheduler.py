"""Scheduler interop: delayed jobs scheduled by one side and enqueued by the other's scheduler,
and only one master at a time between resque-scheduler (Ruby) and ours.

Peers that schedule: Ruby (``enqueue_at``), resque/php-resque's ``ResqueScheduler::enqueueIn``
and node-resque (``enqueueAt``). Peers that move: Ruby's ``handle_delayed_items``, the fork's
``ResqueScheduler_Worker`` and node-resque's ``Scheduler.poll``. Ours: ``DelayedQueue`` and
``resque-compat scheduler``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from harness import Peer, Peers, Running, our_cli, our_env, text
from waiting import wait_for

from resque_compat import Resque
from resque_compat.scheduler import DelayedQueue
from resque_compat.testing.redis_server import RedisServer

Q = "later"
LOCK = "resque:resque:resque_scheduler_master_lock"
ARGS: list[Any] = [{"text": "héllo ✓", "path": "a/b", "nested": {"k": [1, 2.5]}, "n": 7}]


@pytest.fixture
def our_scheduler(redis_server: RedisServer) -> Peer:
    """``resque-compat scheduler`` as a subprocess."""
    probe = our_cli(redis_server, "scheduler", "--help")
    if probe.returncode != 0 or "--once" not in probe.stdout:
        pytest.fail(f"python: `resque-compat scheduler --once` is not usable: {probe.stderr.strip()[:200]}")
    return Peer("python-scheduler", [])


def soon(lead: float = 0.5) -> int:
    """A whole-second timestamp at least ``lead`` seconds ahead: still in the future ("due" is
    ts <= now everywhere) when a peer's process gets to schedule it, and due soon after."""
    return int(time.time() + lead) + 1


def wait_due(ts: int) -> None:
    """Let the wall clock pass ``ts`` (liveness, not a timing assertion)."""
    wait_for(lambda: time.time() >= ts + 0.05, timeout=10, what=f"timestamp {ts}")


def once(redis_server: RedisServer) -> dict[str, Any]:
    proc = our_cli(redis_server, "--json", "scheduler", "--once")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def queued(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(f"resque:queue:{Q}", 0, -1)]


def delayed_left(r: redis.Redis) -> list[str]:
    return sorted(text(k) for k in [*r.keys("resque:delayed:*"), *r.keys("resque:delayed_queue_schedule")])


# -- scheduled by a peer, moved by ours -------------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["ruby", "php-fork", "node"])
def test_ours_enqueues_what_a_peer_scheduled(
    scheduler: str, our_scheduler: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis
) -> None:
    peers[scheduler].require()
    ts = soon(lead=8.0)  # the peer's interpreter starts (seconds on a loaded machine) before it schedules
    if scheduler == "php-fork":
        peers.run(scheduler, "enqueue_in", str(ts - int(time.time())), Q, "Interop_Echo", json.dumps(ARGS[0]))
    else:
        peers.run(scheduler, "enqueue_at", str(ts), Q, "Interop::Echo", json.dumps(ARGS))
    assert r.zcard("resque:delayed_queue_schedule") == 1 and not queued(r)
    wait_due(int(r.zrange("resque:delayed_queue_schedule", 0, 0, withscores=True)[0][1]))
    assert once(redis_server) == {"master": True, "moved": 1, "rejected": 0}
    [job] = queued(r)
    assert job == {"class": "Interop_Echo" if scheduler == "php-fork" else "Interop::Echo", "args": ARGS}
    assert delayed_left(r) == []
    if scheduler != "php-fork":  # php-resque-scheduler keeps no timestamps: sets
        assert r.keys("resque:timestamps:*") == []
    assert r.get(LOCK) is None, "the --once pass must release the master lock"


# -- scheduled by us, moved by a peer -------------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["ruby", "php-fork", "node"])
def test_a_peer_enqueues_what_we_scheduled(scheduler: str, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    peers[scheduler].require()
    ts = soon()
    assert DelayedQueue(resque).enqueue_at(ts, Q, "Interop::Echo", *ARGS) == ts
    wait_due(ts)
    out = peers.run(scheduler, "scheduler_once")
    assert out["delayed_left"] == 0, out
    [job] = queued(r)
    assert (job["class"], job["args"]) == ("Interop::Echo", ARGS)
    assert delayed_left(r) == []
    if scheduler == "ruby":  # Ruby's encoding of the item is ours byte for byte, so its SREM finds our set
        assert r.keys("resque:timestamps:*") == []
        assert list(job) == ["class", "args"]


# -- one master at a time ---------------------------------------------------------------------------


@pytest.fixture
def ruby_scheduler(peers: Peers, ruby: Peer) -> Iterator[Running]:
    proc = peers.start("ruby", "scheduler")
    try:
        yield proc
    finally:
        proc.stop()


def test_ours_stands_by_while_ruby_leads(
    our_scheduler: Peer, ruby_scheduler: Running, redis_server: RedisServer, resque: Resque, r: redis.Redis
) -> None:
    ruby_value = f":{ruby_scheduler.first['pid']}"
    wait_for(lambda: text(r.get(LOCK) or b"").endswith(ruby_value), what="Ruby's scheduler to lead")
    assert once(redis_server) == {"master": False, "moved": 0, "rejected": 0}
    ts = soon()
    DelayedQueue(resque).enqueue_at(ts, Q, "Interop::Echo", *ARGS)
    wait_due(ts)
    assert once(redis_server)["master"] is False
    wait_for(lambda: bool(queued(r)), what="Ruby's scheduler to move the due job")
    assert [j["args"] for j in queued(r)] == [ARGS]
    assert text(r.get(LOCK) or b"").endswith(ruby_value)
    assert ruby_scheduler.stop() == 0
    assert r.get(LOCK) is None, "Ruby's scheduler released its lock on QUIT"
    assert once(redis_server)["master"] is True


def test_ruby_stands_by_while_ours_leads(
    our_scheduler: Peer, ruby: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis
) -> None:
    proc = subprocess.Popen(
        our_cli(redis_server, "scheduler", "--interval", "0.2", argv_only=True),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, start_new_session=True, env=our_env(),
    )  # fmt: skip
    ours = Running("python-scheduler", proc)
    try:
        mine = f"{socket.gethostname()}:{proc.pid}"
        wait_for(lambda: r.get(LOCK) == mine.encode(), what=f"our scheduler to lead as {mine}")
        ts = soon(lead=2.0)
        peers.run("ruby", "enqueue_at", str(ts), Q, "Interop::Echo", json.dumps(ARGS))
        wait_due(ts)
        out = peers.run("ruby", "scheduler_once")
        assert out["master"] is False, out
        wait_for(lambda: bool(queued(r)), what="our scheduler to move the due job")
        assert queued(r) == [{"class": "Interop::Echo", "args": ARGS}]
        assert r.get(LOCK) == mine.encode()
    finally:
        code = ours.stop()
    assert code == 0
    assert r.get(LOCK) is None, "our scheduler released its lock on QUIT"
    assert peers.run("ruby", "scheduler_once")["master"] is True
