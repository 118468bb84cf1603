"""The scheduler's scripts touch only keys they are given in KEYS (Redis's scripting rule, which
Redis Cluster enforces), and a batch read before another scheduler moved it moves nothing twice."""

from __future__ import annotations

import redis
from monitor import Monitor, undeclared_keys

from resque_compat import Resque
from resque_compat.scheduler import DelayedQueue, Mover
from resque_compat.scheduler.lock import MasterLock


def test_every_key_a_scheduler_script_touches_is_in_keys(redis_url: str, r: redis.Redis, resque: Resque) -> None:
    dq = DelayedQueue(resque, batch=2)
    for i in range(5):
        dq.push_raw(100 + i % 2, f'{{"class":"J","args":[{i}],"queue":"q{i % 3}"}}'.encode())
    dq.push_raw(100, b"not json")  # kept aside in compat:delayed:rejected
    dq.push_raw(100, b'{"class":"J","args":[],"queue":"bad\\ud800"}')  # a queue no key can name
    dq.push_raw(300, b'{"class":"K","args":["x"],"queue":"q"}')
    dq.push_raw(400, b'{"class":"L","args":[],"queue":"q"}')
    dq.enqueue_at(4_000_000_000, "q", "M", 1)
    lock = MasterLock(resque.redis, resque.keys, value="me:1")
    with Monitor(redis_url) as monitor:
        assert lock.hold() and lock.renew()
        moved = dq.move_due(now=200)
        assert dq.enqueue_job_now("q", "K", "x") == 1
        assert dq.enqueue_timestamp_now(400).moved == 1
        assert dq.remove("q", "M", 1) == 1
        assert lock.release()
    assert (moved.moved, moved.rejected) == (5, 2)
    assert r.lrange(resque.keys.delayed_rejected, 0, -1) == [
        b"not json",
        b'{"class":"J","args":[],"queue":"bad\\ud800"}',
    ]
    scripts, bad = undeclared_keys(redis_url, monitor.lines)
    assert scripts >= 7
    assert bad == []


def test_a_batch_read_before_another_scheduler_moved_it_moves_nothing_twice(r: redis.Redis, resque: Resque) -> None:
    items = [f'{{"class":"J","args":[{i}],"queue":"q"}}'.encode() for i in range(6)]
    r.rpush("resque:delayed:100", *items)
    r.zadd("resque:delayed_queue_schedule", {"100": 100})
    slow, fast = Mover(r, resque.keys, batch=4), Mover(r, resque.keys, batch=3)
    member = b"100"
    stale = slow._read(member)  # read, then another scheduler moves the first three
    assert fast.move_due(now=150, max_batches=1).moved == 3
    moved, rejected, left, head = slow._batch_at(member, stale)
    assert (moved, rejected, left) == (1, 0, 2)  # only item 3 was still at the head
    assert head == items[4:]
    assert slow._batch_at(member, head)[:3] == (2, 0, 0)
    assert r.lrange("resque:queue:q", 0, -1) == [f'{{"class":"J","args":[{i}]}}'.encode() for i in range(6)]
    assert r.exists("resque:delayed:100", "resque:delayed_queue_schedule") == 0
