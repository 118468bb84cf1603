"""The client against a real Redis: bytes, status records, queues, removal rules."""

from __future__ import annotations

import redis

from resque_compat import JobStatus, Resque


def test_enqueue_is_byte_identical_to_ruby(resque: Resque, r: redis.Redis) -> None:
    assert resque.enqueue("default", "GoodJob", 1, "two", {"k": "v"}, 3.5, None, True, "é") is None
    assert r.smembers("resque:queues") == {b"default"}
    assert r.lrange("resque:queue:default", 0, -1) == [
        '{"class":"GoodJob","args":[1,"two",{"k":"v"},3.5,null,true,"é"]}'.encode()
    ]


def test_tracked_enqueue_writes_php_status(resque: Resque, r: redis.Redis) -> None:
    job_id = resque.enqueue("default", "App\\Jobs\\SendMail", {"to": "a/b"}, track=True)
    assert job_id is not None and len(job_id) == 32
    item = r.lpop("resque:queue:default")
    assert item is not None
    assert item.startswith(b'{"class":"App\\\\Jobs\\\\SendMail","args":[{"to":"a/b"}],"id":"' + job_id.encode())
    assert b'"queue_time":' in item
    status = resque.status(job_id)
    assert status is not None and status.status == JobStatus.WAITING and status.started == status.updated
    assert r.ttl(f"resque:job:{job_id}:status") == -1


def test_enqueue_many_is_one_pipeline(resque: Resque, r: redis.Redis) -> None:
    ids = resque.enqueue_many("q", [("A", [1]), ("B", [2])], track=True)
    assert len(ids) == 2 and all(ids)
    assert r.llen("resque:queue:q") == 2


def test_namespace_and_prefix(redis_url: str, r: redis.Redis) -> None:
    Resque(redis_url, namespace="myapp").enqueue("zeta", "X")
    Resque(redis_url, namespace="resque:GitHub").enqueue("default", "X")
    Resque(redis_url, namespace="").enqueue("bare", "X")
    keys = {k.decode() for k in r.keys("*")}
    assert {"myapp:queues", "myapp:queue:zeta", "resque:GitHub:queue:default", "queue:bare", "queues"} <= keys


def test_destroy_ruby_rules(resque: Resque, r: redis.Redis) -> None:
    resque.enqueue("hooks", "HookedJob", "ok", 1)
    resque.enqueue("hooks", "HookedJob", "ok", 1)
    resque.enqueue("hooks", "HookedJob", "other")
    resque.enqueue("hooks", "Other", "ok", 1)
    assert resque.destroy("hooks", "HookedJob", "ok", 1) == 2
    assert resque.size("hooks") == 2
    assert resque.destroy("hooks", "HookedJob") == 1
    assert [j.payload.class_ for j in resque.peek("hooks", 0, 10) if j.payload] == ["Other"]


def test_dequeue_php_rules(resque: Resque, r: redis.Redis) -> None:
    a = resque.enqueue("default", "PHP_Job", {"n": 1}, track=True)
    resque.enqueue("default", "PHP_Job", {"n": 2}, track=True)
    resque.enqueue("default", "\\PHP_Job", {"n": 3})
    r.rpush("resque:queue:default", b"not json")
    assert a is not None
    assert resque.dequeue("default", "PHP_Job", job_id=a) == 1
    assert resque.dequeue("default", "PHP_Job", args={"x": 2}) == 1
    assert resque.dequeue("default", "PHP_Job") == 1
    assert r.lrange("resque:queue:default", 0, -1) == [b"not json"]


def test_peek_marks_broken_items(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:queue:q", b'{"class":"A","args":[]}', b"[1]")
    first, second = resque.peek("q", 0, 5)
    assert first.payload is not None and first.payload.class_ == "A"
    assert second.payload is None and second.problem


def test_info_counts(resque: Resque, r: redis.Redis) -> None:
    resque.enqueue("a", "X")
    resque.enqueue("b", "X")
    r.set("resque:stat:processed", 5)
    info = resque.info()
    assert info["pending"] == 2 and info["queues"] == 2 and info["processed"] == 5 and info["failed"] == 0
