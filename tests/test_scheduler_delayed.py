"""Delayed jobs on resque-scheduler's layout: the bytes, peers' items, removal, moving."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import redis

from resque_compat import Resque
from resque_compat.scheduler import DelayedQueue, Mover, enqueue_delayed


def later(seconds: int = 3600) -> int:
    return int(time.time()) + seconds


@pytest.fixture
def dq(resque: Resque) -> DelayedQueue:
    return DelayedQueue(resque)


def test_enqueue_at_writes_resque_schedulers_bytes(dq: DelayedQueue, r: redis.Redis) -> None:
    ts = later()
    assert dq.enqueue_at(ts, "default", "GoodJob", "later", {"id": 7}) == ts
    item = b'{"class":"GoodJob","args":["later",{"id":7}],"queue":"default"}'
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == [item]
    assert r.smembers(b"resque:timestamps:" + item) == {f"delayed:{ts}".encode()}
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(ts).encode(), float(ts))]


def test_raw_utf8_and_slashes(dq: DelayedQueue, r: redis.Redis) -> None:
    ts = later()
    dq.enqueue_at(ts, "default", "Mail", "é/ü")
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == ['{"class":"Mail","args":["é/ü"],"queue":"default"}'.encode()]


def test_past_or_now_enqueues_immediately(dq: DelayedQueue, r: redis.Redis) -> None:
    assert dq.enqueue_at(time.time() - 5, "default", "GoodJob", "past") is None
    assert dq.enqueue_at(datetime.now(UTC), "default", "GoodJob", "now") is None
    assert r.lrange("resque:queue:default", 0, -1) == [
        b'{"class":"GoodJob","args":["past"]}',
        b'{"class":"GoodJob","args":["now"]}',
    ]
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_enqueue_in_and_datetime(dq: DelayedQueue) -> None:
    ts = dq.enqueue_in(120, "default", "GoodJob")
    assert ts is not None
    assert abs(ts - (time.time() + 120)) <= 1
    when = datetime.fromtimestamp(later(300), UTC)
    assert dq.enqueue_at(when, "q", "J") == int(when.timestamp())


def test_enqueue_delayed_helper_for_the_cli(resque: Resque, r: redis.Redis) -> None:
    ts = later()
    assert enqueue_delayed(resque, ts, "default", "J", [1, "a"]) == ts
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == [b'{"class":"J","args":[1,"a"],"queue":"default"}']


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda dq: dq.enqueue_at("tomorrow", "q", "J"), "unix seconds or a datetime"),
        (lambda dq: dq.enqueue_in("5", "q", "J"), "number of seconds"),
        (lambda dq: dq.enqueue_in(5, "", "J"), "queue name"),
        (lambda dq: dq.enqueue_in(5, "q", " "), "class name"),
    ],
)
def test_bad_input(dq: DelayedQueue, call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(dq)  # type: ignore[operator]


def seed_peers(r: redis.Redis, ts: int) -> None:
    """Items as php-resque-scheduler (no timestamps set, args wrapped) and node-resque write them."""
    r.rpush(f"resque:delayed:{ts}", b'{"class":"SendFollowUpEmail","args":[{"id":7}],"queue":"email"}')
    r.rpush(f"resque:delayed:{ts}", b'{"class":"add","queue":"math","args":[3,4]}')
    r.sadd('resque:timestamps:{"class":"add","queue":"math","args":[3,4]}', f"delayed:{ts}")
    r.zadd("resque:delayed_queue_schedule", {str(ts): ts})


def test_inspection(dq: DelayedQueue, r: redis.Redis) -> None:
    t1, t2 = later(100), later(200)
    dq.enqueue_at(t1, "default", "A", 1)
    dq.enqueue_at(t1, "default", "B", 2)
    seed_peers(r, t2)
    assert dq.count() == 4
    assert dq.timestamp_count() == 2
    assert dq.timestamps() == [(t1, 2), (t2, 2)]
    assert dq.timestamps(1, 1) == [(t2, 2)]
    assert dq.next_timestamp() == t1
    jobs = dq.jobs_at(t2)
    assert [(j.class_name, j.queue, j.args) for j in jobs] == [
        ("SendFollowUpEmail", "email", [{"id": 7}]),
        ("add", "math", [3, 4]),
    ]
    assert dq.scheduled_at("math", "add", 3, 4) == [t2]
    assert dq.scheduled_at("email", "SendFollowUpEmail", {"id": 7}) == [t2]
    assert len(dq.find(lambda c, a: a == [2])) == 1


def test_remove_exact_uses_timestamps_sets_and_scan(dq: DelayedQueue, r: redis.Redis) -> None:
    t1, t2 = later(100), later(200)
    dq.enqueue_at(t1, "default", "A", 1)
    dq.enqueue_at(t2, "default", "A", 1)
    dq.enqueue_at(t2, "default", "A", 2)
    seed_peers(r, t2)
    assert dq.remove("default", "A", 1) == 2
    assert r.exists(f"resque:delayed:{t1}") == 0
    assert r.zscore("resque:delayed_queue_schedule", str(t1)) is None  # emptied timestamp forgotten
    assert not r.exists('resque:timestamps:{"class":"A","args":[1],"queue":"default"}')
    # php item: no timestamps set, found by scanning; node item: other key order
    assert dq.remove("email", "SendFollowUpEmail", {"id": 7}) == 1
    assert dq.remove("math", "add", 3, 4) == 1
    assert not r.exists('resque:timestamps:{"class":"add","queue":"math","args":[3,4]}')
    assert dq.remove("math", "add", 3, 4) == 0
    assert dq.count() == 1
    assert dq.remove("default", "A", 2, scan=False) == 1
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_remove_selection(dq: DelayedQueue, r: redis.Redis) -> None:
    ts = later()
    for i in range(5):
        dq.enqueue_at(ts, "default", "Report", {"user": i})
    dq.enqueue_at(ts, "default", "Other", {"user": 1})
    removed = dq.remove_selection(lambda _c, args: args[0]["user"] % 2 == 1, class_name="Report")
    assert removed == 2
    assert sorted(j.args[0]["user"] for j in dq.all_jobs() if j.class_name == "Report") == [0, 2, 4]
    assert dq.count() == 4


def test_clear(dq: DelayedQueue, r: redis.Redis) -> None:
    for i in range(3):
        dq.enqueue_at(later(100 + i), "default", "A", i)
    seed_peers(r, later(500))
    r.set("resque:queue-unrelated", "x")
    assert dq.clear() == 4
    assert sorted(r.keys("*")) == [b"resque:queue-unrelated"]


def test_enqueue_timestamp_now_moves_every_peers_item(dq: DelayedQueue, r: redis.Redis) -> None:
    ts = later()
    dq.enqueue_at(ts, "default", "GoodJob", "later", {"id": 7})
    seed_peers(r, ts)
    result = dq.enqueue_timestamp_now(ts)
    assert (result.moved, result.rejected) == (3, 0)
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"GoodJob","args":["later",{"id":7}]}']
    # php item: args pushed as stored ([ {...} ], what a PHP worker reads as args[0])
    assert r.lrange("resque:queue:email", 0, -1) == [b'{"class":"SendFollowUpEmail","args":[{"id":7}]}']
    # node item: the queue member dropped, class/args in Ruby's order
    assert r.lrange("resque:queue:math", 0, -1) == [b'{"class":"add","args":[3,4]}']
    assert r.smembers("resque:queues") == {b"default", b"email", b"math"}
    assert sorted(r.keys("resque:timestamps:*")) == []
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_enqueue_job_now(dq: DelayedQueue, r: redis.Redis) -> None:
    t1, t2 = later(100), later(200)
    dq.enqueue_at(t1, "default", "A", 1)
    dq.enqueue_at(t2, "default", "A", 1)
    dq.enqueue_at(t2, "default", "B")
    assert dq.enqueue_job_now("default", "A", 1) == 2
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"A","args":[1]}'] * 2
    assert dq.timestamps() == [(t2, 1)]


MOVE_CASES = [
    # (stored item, queue, expected queue item)
    (b'{"class":"GoodJob","args":["soon"],"queue":"default"}', "default", b'{"class":"GoodJob","args":["soon"]}'),
    (b'{"class":"E","args":[],"queue":"default"}', "default", b'{"class":"E","args":[]}'),
    (b'{"class":"N","args":{},"queue":"default"}', "default", b'{"class":"N","args":[]}'),  # node's cjson []
    (b'{"class":"Z","queue":"default"}', "default", b'{"class":"Z","args":[]}'),
    (b'{"class":"H","args":{"a":1},"queue":"default"}', "default", b'{"class":"H","args":[{"a":1}]}'),
    (b'{"class": "jobs.Add", "queue": "math", "args": [3, 4]}', "math", b'{"class":"jobs.Add","args":[3, 4]}'),
    (
        '{"class":"S","args":["a\\"}],{","é\\u00e9\\/",1.0,1e2,12345678901234567890],"queue":"q\\"x"}'.encode(),
        'q"x',
        '{"class":"S","args":["a\\"}],{","é\\u00e9\\/",1.0,1e2,12345678901234567890]}'.encode(),
    ),
    (b'{"queue":"default","args":[[],{}],"class":"K"}', "default", b'{"class":"K","args":[[],{}]}'),
]


@pytest.mark.parametrize(("stored", "queue", "expected"), MOVE_CASES)
def test_moved_bytes(r: redis.Redis, resque: Resque, stored: bytes, queue: str, expected: bytes) -> None:
    r.rpush("resque:delayed:100", stored)
    r.zadd("resque:delayed_queue_schedule", {"100": 100})
    result = Mover(r, resque.keys).move_due(now=150)
    assert (result.moved, result.rejected) == (1, 0)
    assert r.lrange(f"resque:queue:{queue}", 0, -1) == [expected]


@pytest.mark.parametrize(
    "stored",
    [b"not json", b"[1,2]", b'{"args":[1],"queue":"x"}', b'{"class":"X","args":[1]}', b'{"class":1,"queue":"q"}'],
)
def test_unusable_items_are_kept_aside_not_lost(r: redis.Redis, resque: Resque, stored: bytes) -> None:
    r.rpush("resque:delayed:100", stored, b'{"class":"Ok","args":[],"queue":"q"}')
    r.zadd("resque:delayed_queue_schedule", {"100": 100})
    mover = Mover(r, resque.keys)
    result = mover.move_due(now=150)
    assert (result.moved, result.rejected) == (1, 1)
    assert r.lrange(mover.rejected_key, 0, -1) == [stored]
    assert r.lrange("resque:queue:q", 0, -1) == [b'{"class":"Ok","args":[]}']
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_only_due_timestamps_move_in_order(r: redis.Redis, resque: Resque) -> None:
    dq = DelayedQueue(resque)
    for ts in (300, 100, 200):
        dq.push_raw(ts, f'{{"class":"J","args":[{ts}],"queue":"q"}}'.encode())
    result = Mover(r, resque.keys).move_due(now=250)
    assert (result.moved, result.timestamps) == (2, 2)
    assert r.lrange("resque:queue:q", 0, -1) == [b'{"class":"J","args":[100]}', b'{"class":"J","args":[200]}']
    assert dq.timestamps() == [(300, 1)]


def test_thousands_at_one_timestamp_move_in_bounded_batches(r: redis.Redis, resque: Resque) -> None:
    dq = DelayedQueue(resque)
    items = [f'{{"class":"J","args":[{i}],"queue":"q"}}'.encode() for i in range(5000)]
    pipe = r.pipeline()
    pipe.rpush("resque:delayed:100", *items)
    for item in items[:10]:
        pipe.sadd(b"resque:timestamps:" + item, "delayed:100")
    pipe.zadd("resque:delayed_queue_schedule", {"100": 100})
    pipe.execute()
    mover = Mover(r, resque.keys, batch=100)
    first = mover.move_due(now=150, max_batches=1)
    assert (first.moved, r.llen("resque:delayed:100")) == (100, 4900)
    rest = mover.move_due(now=150)
    assert (rest.moved, rest.batches) == (4900, 49)
    assert r.lrange("resque:queue:q", 0, -1) == [f'{{"class":"J","args":[{i}]}}'.encode() for i in range(5000)]
    assert r.keys("resque:timestamps:*") == []
    assert dq.count() == 0


def test_move_stops_between_batches_when_asked(r: redis.Redis, resque: Resque) -> None:
    r.rpush("resque:delayed:100", *[b'{"class":"J","args":[],"queue":"q"}'] * 250)
    r.zadd("resque:delayed_queue_schedule", {"100": 100})
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    result = Mover(r, resque.keys, batch=100).move_due(now=150, should_stop=stop)
    assert result.moved == 100
    assert r.llen("resque:delayed:100") + r.llen("resque:queue:q") == 250


def test_namespace_is_honoured(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url, namespace="myapp")
    ts = later()
    DelayedQueue(resque).enqueue_at(ts, "q", "J")
    assert r.exists(f"myapp:delayed:{ts}", "myapp:delayed_queue_schedule") == 2
    assert r.smembers('myapp:timestamps:{"class":"J","args":[],"queue":"q"}') == {f"delayed:{ts}".encode()}
    assert DelayedQueue(resque).enqueue_timestamp_now(ts).moved == 1
    assert r.lrange("myapp:queue:q", 0, -1) == [b'{"class":"J","args":[]}']
