"""store.workers: the worker registry's operations write Ruby's keys exactly as Ruby does
(``register``/``unregister`` by data_store.rb) and read back what peers and people left."""

from __future__ import annotations

import redis

from resque_compat.protocol import Keys, WorkerState, timefmt
from resque_compat.store.workers import WorkerStore

IDS = ["host:1:mail", "host:2:mail,low"]


def store(r: redis.Redis) -> WorkerStore:
    return WorkerStore(r, Keys("resque"))


def test_register_writes_rubys_keys_and_again_keeps_the_start_time(r: redis.Redis) -> None:
    workers = store(r)
    workers.register(IDS, "2026-01-01 00:00:00 +0000")
    assert r.smembers("resque:workers") == {i.encode() for i in IDS}
    assert r.get("resque:worker:host:1:mail:started") == b"2026-01-01 00:00:00 +0000"
    r.delete("resque:worker:host:2:mail,low:started")
    workers.register(IDS, "2026-02-02 00:00:00 +0000", again=True)
    assert r.get("resque:worker:host:1:mail:started") == b"2026-01-01 00:00:00 +0000"
    assert r.get("resque:worker:host:2:mail,low:started") == b"2026-02-02 00:00:00 +0000"
    assert workers.registered() == set(IDS)


def test_unregister_removes_every_key_of_the_worker_and_nothing_else(r: redis.Redis) -> None:
    workers = store(r)
    workers.register(IDS)
    workers.beat(IDS)
    workers.publish_states({i: WorkerState(paused=True).encode() for i in IDS}, ttl=60)
    gone, kept = IDS
    for name in ("processed", "failed"):
        r.set(f"resque:stat:{name}:{gone}", 3)
        r.set(f"resque:stat:{name}:{kept}", 3)
    r.set(f"resque:worker:{gone}", b"{}")
    workers.unregister(gone)
    assert workers.registered() == {kept}
    assert sorted(k.decode() for k in r.keys(f"resque:*{gone}*")) == []
    assert list(workers.heartbeats()) == [kept]
    assert r.exists(f"resque:stat:processed:{kept}", f"resque:compat:state:{kept}") == 2


def test_beats_use_redis_clock_and_clear_removes_them(r: redis.Redis) -> None:
    workers = store(r)
    workers.beat(IDS, now=1_800_000_000.0)
    assert workers.heartbeats() == dict.fromkeys(IDS, timefmt.heartbeat(1_800_000_000.0))
    workers.beat(IDS[:1])
    written = timefmt.parse(workers.heartbeats()[IDS[0]])
    assert written is not None
    assert abs(written.timestamp() - workers.server_time()) <= 1
    workers.clear_heartbeats(IDS)
    assert workers.heartbeats() == {}


def test_published_state_expires_and_reads_back(r: redis.Redis) -> None:
    store(r).publish_states({IDS[0]: WorkerState(stopping=True).encode()}, ttl=0.2)
    assert WorkerState.decode(r.get(f"resque:compat:state:{IDS[0]}")).stopping
    assert r.ttl(f"resque:compat:state:{IDS[0]}") == 1  # never below one second


def test_control_words_are_read_oldest_first_per_worker(r: redis.Redis) -> None:
    workers = store(r)
    r.rpush(f"resque:compat:control:{IDS[0]}", "pause", "resume")
    assert workers.next_controls(IDS) == ["pause", None]
    assert workers.next_controls(IDS) == ["resume", None]
    assert workers.next_controls([]) == []


def test_held_and_inflight_owners(r: redis.Redis) -> None:
    workers = store(r)
    r.set(f"resque:worker:{IDS[0]}", b"record")
    r.rpush(f"resque:compat:inflight:{IDS[0]}", b"\xffitem")
    r.rpush("resque:compat:inflight:", b"x")  # no worker id: still an in-flight list name
    assert workers.held(IDS[0]) == (b"record", b"\xffitem")
    assert workers.held(IDS[0], record=False) == (b"", b"\xffitem")
    assert workers.held(IDS[1]) == (b"", b"")
    assert sorted(workers.inflight_owners()) == ["", IDS[0]]


def test_prune_lock_is_taken_once_and_released_only_by_its_holder(r: redis.Redis) -> None:
    workers = store(r)
    assert workers.take_prune_lock("a", 30)
    assert not workers.take_prune_lock("b", 30)
    assert workers.prune_lock_holder() == "a"
    assert 0 < r.ttl("resque:pruning_dead_workers_in_progress") <= 30
    assert not workers.release_prune_lock("b")
    assert workers.release_prune_lock("a")
    assert workers.prune_lock_holder() is None


def test_status_bytes_round_trip(r: redis.Redis) -> None:
    workers = store(r)
    key = Keys("resque").status("abc")
    assert workers.status_bytes(key) is None
    workers.set_status(key, b'{"status":2}')
    assert workers.status_bytes(key) == b'{"status":2}'
