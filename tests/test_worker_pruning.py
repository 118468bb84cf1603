"""Pruning a dead worker when several pruners race for it (real Redis, real threads).

The prune lock lasts one heartbeat interval, so two pruners can reach the same dead worker:
its job must end in exactly one place (requeued in reliable mode, one failure record
otherwise), and exactly one pruner may report having handled it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from waiting import wait_for

from resque_compat.failures import Failures
from resque_compat.protocol import Keys
from resque_compat.worker import pruning

ROUNDS = 150
DEAD = "deadhost:4242:q"
ITEM = b'{"class":"Slow","args":[1,"x"],"id":"abc"}'
RECORD = b'{"queue":"q","run_at":"2026-11-26T20:20:39Z","payload":' + ITEM + b"}"


def _dead_worker(r: redis.Redis, keys: Keys, *, reliable: bool, record: bytes | None = RECORD) -> None:
    """What a worker killed mid-job leaves behind (reliable: its in-flight list too)."""
    pipe = r.pipeline(transaction=False)
    pipe.sadd(keys.workers, DEAD)
    pipe.set(keys.worker_started(DEAD), "2026-11-26 20:20:39 +0000")
    pipe.hset(keys.heartbeat, DEAD, "2000-01-01T00:00:00+00:00")  # long expired
    pipe.set(keys.stat("processed", DEAD), 3)
    if record is not None:
        pipe.set(keys.worker(DEAD), record)
    if reliable:
        pipe.rpush(keys.inflight(DEAD), ITEM)
    pipe.execute()


def _race(url: str, pruners: list[Callable[[redis.Redis], object]]) -> list[object]:
    """Run the pruners at once, each on a client of its own; their results in order."""
    barrier = threading.Barrier(len(pruners))
    results: list[object] = [None] * len(pruners)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        client = redis.Redis.from_url(url)
        try:
            barrier.wait()
            results[i] = pruners[i](client)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pruners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def _by_heartbeat(client: redis.Redis) -> str | None:
    """Rule 1 of the pruner (expired heartbeat)."""
    keys = Keys()
    return pruning.unregister(
        client, keys, Failures(client, keys), DEAD,
        exception="Resque::PruneDeadWorkerDirtyExit",
        error=f"Worker {DEAD} did not gracefully exit while processing {{class}}",
    )  # fmt: skip


def _by_pid(client: redis.Redis) -> str | None:
    """Rule 2 of the pruner (same host, pid gone)."""
    keys = Keys()
    return pruning.unregister(client, keys, Failures(client, keys), DEAD)


def _prune(client: redis.Redis) -> str | None:
    """A whole startup prune by another worker (the lock is free: the last one expired)."""
    keys = Keys()
    pruning.prune_dead_workers(
        client, keys, Failures(client, keys), "otherhost:1:q", ["q"], heartbeat_interval=1, prune_interval=60
    )
    return None  # which pruner claimed the job is not visible from here


def _orphans(client: redis.Redis) -> int:
    keys = Keys()
    return pruning.requeue_orphans(client, keys, Failures(client, keys))


def _assert_unregistered(r: redis.Redis, keys: Keys) -> None:
    assert not r.sismember(keys.workers, DEAD)
    assert not r.exists(keys.worker(DEAD), keys.worker_started(DEAD), keys.inflight(DEAD))
    assert not r.hexists(keys.heartbeat, DEAD)
    assert not r.exists(keys.stat("processed", DEAD), keys.stat("failed", DEAD))


@pytest.mark.parametrize("reliable", [True, False], ids=["reliable", "default"])
@pytest.mark.parametrize("first", [_by_heartbeat, _prune], ids=["unregister", "prune_dead_workers"])
def test_two_pruners_racing_for_one_dead_worker_handle_its_job_once(
    redis_url: str, r: redis.Redis, reliable: bool, first: Callable[[redis.Redis], str | None]
) -> None:
    keys = Keys()
    for n in range(ROUNDS):
        r.flushdb()
        _dead_worker(r, keys, reliable=reliable)
        results = _race(redis_url, [first, _by_pid])
        claimed = [res for res in results if res is not None]
        failed = r.lrange(keys.failed, 0, -1)
        queued = r.lrange(keys.queue("q"), 0, -1)
        where = f"round {n}: pruners said {results}, failed={failed}, queued={queued}"
        assert len(claimed) == 1 if first is _by_heartbeat else len(claimed) <= 1, where
        if reliable:
            assert set(claimed) <= {"requeued"} and queued == [ITEM] and failed == [], where
            assert r.smembers(keys.queues) == {b"q"} and not r.exists(keys.stat("failed"))
        else:
            assert set(claimed) <= {"failed"} and queued == [] and len(failed) == 1, where
            record = json.loads(failed[0])
            assert record["payload"] == json.loads(ITEM) and record["worker"] == DEAD and record["queue"] == "q"
            assert record["exception"] in ("Resque::DirtyExit", "Resque::PruneDeadWorkerDirtyExit"), where
            assert r.get(keys.stat("failed")) == b"1", where
        _assert_unregistered(r, keys)


def test_pruners_and_an_orphan_sweep_racing_requeue_once(redis_url: str, r: redis.Redis) -> None:
    """A starting reliable worker's orphan sweep joins the race: still one requeue."""
    keys = Keys()
    for n in range(ROUNDS):
        r.flushdb()
        _dead_worker(r, keys, reliable=True)
        results = _race(redis_url, [_by_heartbeat, _by_pid, _orphans])
        queued = r.lrange(keys.queue("q"), 0, -1)
        where = f"round {n}: {results}, queued={queued}"
        assert queued == [ITEM] and not r.exists(keys.failed), where
        assert [res for res in results[:2] if res is not None] in (["requeued"], []), where
        assert results[2] in (0, 1), where
        assert (results[2] == 1) != ("requeued" in results), where
        _assert_unregistered(r, keys)


def test_blocking_window_item_without_a_record_goes_back_to_its_queue(r: redis.Redis) -> None:
    """A reliable blocking worker that died between BLMOVE and recording the job: no
    worker:<id> record, the item alone in its in-flight list; it goes back, nothing is failed."""
    keys = Keys()
    _dead_worker(r, keys, reliable=True, record=None)
    assert _by_pid(r) == "requeued"
    assert r.lrange(keys.queue("q"), 0, -1) == [ITEM] and not r.exists(keys.failed)
    _assert_unregistered(r, keys)


def test_orphan_sweep_leaves_a_registered_worker_alone(r: redis.Redis) -> None:
    keys = Keys()
    _dead_worker(r, keys, reliable=True)
    assert _orphans(r) == 0
    assert r.lrange(keys.inflight(DEAD), 0, -1) == [ITEM] and r.get(keys.worker(DEAD)) == RECORD
    r.srem(keys.workers, DEAD)  # unregistered by a peer's pruner that knows no in-flight list
    assert _orphans(r) == 1
    assert r.lrange(keys.queue("q"), 0, -1) == [ITEM] and not r.exists(keys.inflight(DEAD))


def test_unreadable_record_is_failed_once_as_text(r: redis.Redis) -> None:
    keys = Keys()
    _dead_worker(r, keys, reliable=False, record=b"not json")
    assert _by_pid(r) == "failed"
    assert _by_heartbeat(r) is None
    [raw] = r.lrange(keys.failed, 0, -1)
    record = json.loads(raw)
    assert record["payload"] == "not json" and record["exception"] == "Resque::DirtyExit" and record["queue"] == ""
    _assert_unregistered(r, keys)


# -- statuses end with the job; the lock is released; a dead holder's lock is broken ----------
HOST = "thishost"
GONE_PID = "999999999"  # no process has this pid
TRACKED = b'{"class":"Slow","args":[1],"id":"j1","prefix":"acme"}'


def _tracked_dead_worker(r: redis.Redis, keys: Keys, *, reliable: bool, status: bytes) -> str:
    dead = f"{HOST}:{GONE_PID}:q"
    pipe = r.pipeline(transaction=False)
    pipe.sadd(keys.workers, dead)
    pipe.set(keys.worker(dead), b'{"queue":"q","run_at":"2026-11-26T20:20:39Z","payload":' + TRACKED + b"}")
    if reliable:
        pipe.rpush(keys.inflight(dead), TRACKED)
    pipe.set(keys.status("j1", "acme"), status)
    pipe.execute()
    return dead


def _prune_as(r: redis.Redis, me: str = f"{HOST}:1:q", host: str = HOST) -> list[str] | None:
    keys = Keys()
    return pruning.try_prune(
        r, keys, Failures(r, keys), me, ["q"], heartbeat_interval=60, prune_interval=300, host=host
    )


@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_a_pruned_jobs_status_ends(r: redis.Redis, reliable: bool) -> None:
    """php fork prefix included: failed (3, 24 h TTL), or waiting (1, no TTL) when requeued."""
    keys = Keys()
    dead = _tracked_dead_worker(r, keys, reliable=reliable, status=b'{"status":2,"updated":1,"started":1}')
    assert _prune_as(r) == [dead]
    status = json.loads(r.get(keys.status("j1", "acme")) or b"{}")
    if reliable:
        assert status["status"] == 1 and status["started"] == 1
        assert r.ttl(keys.status("j1", "acme")) == -1
        assert r.lrange(keys.queue("q"), 0, -1) == [TRACKED]
    else:
        assert status["status"] == 3 and status["started"] == 1
        assert 86000 < r.ttl(keys.status("j1", "acme")) <= 86400
    assert not r.exists(keys.prune_lock)  # released once the prune was done


def test_an_untracked_or_final_status_is_left_alone(r: redis.Redis) -> None:
    keys = Keys()
    _tracked_dead_worker(r, keys, reliable=False, status=b'{"status":4,"updated":1}')
    _prune_as(r)
    assert r.get(keys.status("j1", "acme")) == b'{"status":4,"updated":1}'
    r.flushdb()
    _tracked_dead_worker(r, keys, reliable=False, status=b"")
    r.delete(keys.status("j1", "acme"))
    _prune_as(r)
    assert not r.exists(keys.status("j1", "acme"))  # php-resque writes no status for untracked jobs


def test_the_prune_lock_of_a_live_pruner_is_respected_and_a_dead_ones_broken(r: redis.Redis) -> None:
    keys = Keys()
    r.set(keys.prune_lock, f"otherhost:{os.getpid()}:q", ex=60)
    assert _prune_as(r) is None
    assert r.get(keys.prune_lock) == f"otherhost:{os.getpid()}:q".encode()  # another host: never broken
    r.set(keys.prune_lock, f"{HOST}:{GONE_PID}:q", ex=60)  # same host, process gone (killed mid-prune)
    assert _prune_as(r) == []
    assert not r.exists(keys.prune_lock)
    # compare-and-delete: a lock taken by someone else meanwhile is not ours to release
    r.set(keys.prune_lock, "someone-else", ex=60)
    pruning.release_lock(r, keys, f"{HOST}:1:q")
    assert r.get(keys.prune_lock) == b"someone-else"


def test_a_dead_worker_whose_job_child_still_runs_is_left_to_the_child(r: redis.Redis) -> None:
    """The child finishes and records the job itself: pruning now would fail a job that completes."""
    keys = Keys()
    hostname = socket.gethostname()
    dead = f"{hostname}:{GONE_PID}:q"
    r.sadd(keys.workers, dead)
    r.set(keys.worker(dead), RECORD)
    title = f"resque-9.9.9: Processing q since 1 [Slow] (worker {GONE_PID})"
    child = subprocess.Popen(
        [sys.executable, "-c", f"import setproctitle,time; setproctitle.setproctitle({title!r}); time.sleep(60)"]
    )
    try:
        cmdline = Path(f"/proc/{child.pid}/cmdline")
        wait_for(lambda: cmdline.read_bytes().startswith(title.encode()), what="the child to set its title")
        assert _prune_as(r, f"{hostname}:1:q", hostname) == []
        assert r.sismember(keys.workers, dead) and r.get(keys.worker(dead)) == RECORD
    finally:
        child.kill()
        child.wait()
    pruning.try_prune(r, keys, Failures(r, keys), f"{hostname}:1:q", ["q"], heartbeat_interval=60, prune_interval=300)
    assert not r.sismember(keys.workers, dead) and r.llen(keys.failed) == 1


def test_an_unparseable_heartbeat_is_warned_about_once(r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    """The periodic prune runs every few seconds: the operator gets the line once, not each time."""
    keys = Keys()
    r.hset(keys.heartbeat, "otherhost:1:q", "not a time")
    with caplog.at_level("DEBUG", logger="resque_compat.worker"):
        for _ in range(3):
            pruning.try_prune(r, keys, Failures(r, keys), "me:1:q", ["q"], heartbeat_interval=60, prune_interval=300)
    lines = [rec for rec in caplog.records if "is not a time" in rec.getMessage()]
    assert [rec.levelname for rec in lines] == ["WARNING", "DEBUG", "DEBUG"]
    assert r.hget(keys.heartbeat, "otherhost:1:q") == b"not a time"
