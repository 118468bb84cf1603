"""Command plans are wire words: each runs alike through ``resp.transaction`` and a redis-py pipeline."""

from __future__ import annotations

import redis

from resque_compat import Resque
from resque_compat.activejob.enqueue import active_job_plan
from resque_compat.failures import clear_commands
from resque_compat.plans import (
    busy_commands,
    enqueue_plan,
    namespace_names,
    namespace_used_command,
    node_ping_time,
    push_raw_commands,
    remove_queue_commands,
    requeue_commands,
    stored_status_commands,
    worker_detail_commands,
    worker_row_commands,
    worker_state_commands,
)
from resque_compat.protocol import JobPayload, Keys, StatusRecord
from resque_compat.resp import Command, pack, queue_commands, transaction
from resque_compat.scheduler.delayed import push_commands, schedule_plan

KEYS = Keys("resque")
LATER = 4_000_000_000


def every_plan() -> list[Command]:
    tracked = JobPayload.new("T", [1], "abc", 0.0)
    return [
        *enqueue_plan(KEYS, "q", [("A", [1]), ("B", [])], track=True)[1],
        *push_raw_commands(KEYS, "q", b"x"),
        *remove_queue_commands(KEYS, "q"),
        *worker_row_commands(KEYS, ["h:1:q"]),
        *busy_commands(KEYS, ["h:1:q"]),
        *worker_state_commands(KEYS, ["h:1:q"]),
        *worker_detail_commands(KEYS, "h:1:q"),
        *stored_status_commands(KEYS, "abc", ""),
        namespace_used_command(KEYS),
        *requeue_commands(KEYS, "q", tracked.encode(), tracked, StatusRecord.waiting(0).encode()),
        *clear_commands(KEYS, "q_failed"),
        *push_commands(KEYS, LATER, b'{"class":"A","args":[],"queue":"q"}'),
        *schedule_plan(KEYS, LATER, "q", "A", [1])[1],
        *active_job_plan(KEYS, "AjJob", [1], None, queue="q", at=LATER)[2],
    ]


def test_every_plan_names_real_redis_commands(r: redis.Redis) -> None:
    """The first word of every planned command is a command the server knows (not a redis-py
    method name such as ``delete``)."""
    names = sorted({str(command[0]) for command in every_plan()})
    known = {name.decode() if isinstance(name, bytes) else name for name in r.command_list()}
    assert "delete" not in known  # what this check would have caught
    unknown = [name for name in names if name.lower() not in known]
    assert not unknown
    assert all(name == name.upper() for name in names)


def test_remove_queue_commands_run_as_a_transaction(r: redis.Redis, resque: Resque) -> None:
    """Failed with "unknown command 'delete'" while plans named redis-py methods."""
    resque.enqueue("gone", "X")
    resque.enqueue("kept", "Y")
    transaction(r, remove_queue_commands(resque.keys, "gone"))
    assert resque.queues() == ["kept"]
    assert r.exists("resque:queue:gone") == 0


def test_push_commands_run_as_a_transaction(r: redis.Redis) -> None:
    """Failed with "wrong number of arguments for 'zadd'" while ZADD carried a redis-py mapping."""
    item = b'{"class":"A","args":[1],"queue":"q"}'
    transaction(r, push_commands(KEYS, LATER, item))
    assert r.lrange(f"resque:delayed:{LATER}", 0, -1) == [item]
    assert r.smembers(b"resque:timestamps:" + item) == {f"delayed:{LATER}".encode()}
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(LATER).encode(), LATER)]


def test_transaction_and_pipeline_store_the_same(redis_url: str, r: redis.Redis) -> None:
    """One plan, sent both ways on two databases: the same keys and bytes."""
    plan = [*schedule_plan(KEYS, LATER, "q", "A", [1, "é"])[1], *push_raw_commands(KEYS, "q", b"\xff raw")]
    other = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    other.flushdb()
    transaction(r, plan)
    pipe = other.pipeline(transaction=True)
    queue_commands(pipe, plan)
    pipe.execute()
    for key in r.keys("*"):
        kind = r.type(key)
        assert other.type(key) == kind
        if kind == b"list":
            assert other.lrange(key, 0, -1) == r.lrange(key, 0, -1)
        elif kind == b"set":
            assert other.smembers(key) == r.smembers(key)
        else:
            assert other.zrange(key, 0, -1, withscores=True) == r.zrange(key, 0, -1, withscores=True)
    assert len(other.keys("*")) == len(r.keys("*")) == 5
    other.flushdb()


def test_pack_is_resp() -> None:
    assert pack(("ZADD", "k", LATER, "4000000000")) == (
        b"*4\r\n$4\r\nZADD\r\n$1\r\nk\r\n$10\r\n4000000000\r\n$10\r\n4000000000\r\n"
    )


def test_node_pings_and_queue_sets_decode_totally() -> None:
    """The read model's decoders of what peers store: anything unreadable is None, never a crash."""
    assert node_ping_time(b'{"time":1795725904,"name":"vm:22178","queues":"math"}') == 1795725904
    assert node_ping_time(b'{"time":1795725904.5}') == 1795725904.5
    for junk in (None, b"", b"junk", b"[]", b'{"time":"soon"}', b'{"time":true}', b"\xff"):
        assert node_ping_time(junk) is None
    found = namespace_names([b"resque:queues", b"queues", b"app:failed_queues", b"other:queues", b"\xffx:queues"])
    assert found == ["", "other", "resque", "\ufffdx"]
