"""The failure store against a real Redis: Ruby's list layout and operations, php payloads kept whole."""

from __future__ import annotations

import json

import pytest
import redis

from resque_compat import JobStatus, Resque
from resque_compat.failures import FailureError, Failures
from resque_compat.protocol import Failure, Keys, Raw

RUBY = (
    b'{"failed_at":"2026/11/26 20:20:42 UTC","payload":{"class":"BadJob","args":["x"]},"exception":"ArgumentError",'
    b'"error":"boom: [\\"x\\"]","backtrace":["<scripts>/jobs.rb:13:in `perform\'"],"worker":"vm:10947:default",'
    b'"queue":"default"}'
)
PHP_PAYLOAD = (
    b'{"class":"Bad_PHP_Job","args":[{"n":1,"path":"a\\/b"}],"id":"3aabe8b46114aeaa9e784281ddb8d1da",'
    b'"queue_time":1795724498.904539}'
)
PHP = (
    b'{"failed_at":"Thu Nov 26 20:21:39 UTC 2026","payload":' + PHP_PAYLOAD + b',"exception":"Exception",'
    b'"error":"Unable to run this job!","backtrace":["#0 {main}"],"worker":"vm:12167:default","queue":"default"}'
)
NODE = (
    b'{"worker":"vm:22178","queue":"math","payload":{"class":"boom","queue":"math","args":["f"]},"exception":"Error",'
    b'"error":"f","backtrace":[],"failed_at":"Thu Nov 26 2026 20:45:03 GMT+0000 (Coordinated Universal Time)"}'
)


def failure(queue: str = "default", cls: str = "BadJob", arg: object = "x") -> Failure:
    payload = json.dumps({"class": cls, "args": [arg]}, separators=(",", ":")).encode()
    return Failure(
        failed_at="2026/11/26 20:20:42 UTC", payload=Raw(payload), exception="RuntimeError", error="boom",
        backtrace=[], worker="vm:1:default", queue=queue,
    )  # fmt: skip


def test_save_appends_ruby_record(resque: Resque, r: redis.Redis) -> None:
    resque.failures.save(failure())
    assert resque.failures.count() == 1
    stored = r.lindex("resque:failed", 0)
    assert isinstance(stored, bytes)
    assert stored.startswith(b'{"failed_at":"2026/11/26 20:20:42 UTC","payload":{"class":"BadJob"')
    assert not r.exists("resque:failed_queues")


def test_retry_appends_retried_at_last_and_requeues_original_bytes(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:failed", RUBY, NODE)
    assert resque.failures.retry(0) == "default"
    assert resque.failures.retry(1) == "math"
    first, second = (json.loads(x, object_pairs_hook=list) for x in r.lrange("resque:failed", 0, -1))
    assert [k for k, _ in first] == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue",
                                     "retried_at"]  # fmt: skip
    second_keys = [k for k, _ in second]
    assert second_keys[0] == "worker" and second_keys[-1] == "retried_at"
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"BadJob","args":["x"]}']
    assert r.lrange("resque:queue:math", 0, -1) == [b'{"class":"boom","queue":"math","args":["f"]}']
    assert r.smembers("resque:queues") == {b"default", b"math"}
    assert resque.failures.count() == 2  # retried entries stay until clear_retried


def test_retry_keeps_php_id_and_resets_status(resque: Resque, r: redis.Redis) -> None:
    status_key = "resque:job:3aabe8b46114aeaa9e784281ddb8d1da:status"
    r.set(status_key, b'{"status":3,"updated":1795724499}', ex=86400)
    r.rpush("resque:failed", PHP)
    resque.failures.retry(0)
    assert r.lrange("resque:queue:default", 0, -1) == [PHP_PAYLOAD]  # byte for byte, escapes and id kept
    status = resque.status("3aabe8b46114aeaa9e784281ddb8d1da")
    assert status is not None and status.state == JobStatus.WAITING
    assert r.ttl(status_key) == -1


def test_remove_takes_out_exactly_one_entry(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:failed", RUBY, PHP, RUBY)
    resque.failures.remove(1)
    assert r.lrange("resque:failed", 0, -1) == [RUBY, RUBY]
    resque.failures.remove(0)
    assert r.lrange("resque:failed", 0, -1) == [RUBY]
    with pytest.raises(FailureError):
        resque.failures.remove(5)


def test_clear_and_clear_retried(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:failed", RUBY, PHP, NODE)
    resque.failures.retry(0)
    resque.failures.retry(2)
    assert resque.failures.clear_retried() == 2
    assert r.lrange("resque:failed", 0, -1) == [PHP]
    assert resque.failures.clear() == 1
    assert not r.exists("resque:failed")


def test_retry_all_and_by_queue(resque: Resque, r: redis.Redis) -> None:
    for f in (failure("a"), failure("b"), failure("a")):
        resque.failures.save(f)
    assert resque.failures.retry_all(queue="a") == 2
    assert resque.size("a") == 2 and resque.size("b") == 0
    assert resque.failures.retry_all() == 3  # Ruby's requeue_all retries retried entries too
    assert resque.size("a") == 4 and resque.size("b") == 1


def test_paging(resque: Resque) -> None:
    for i in range(5):
        resque.failures.save(failure(arg=i))
    page = resque.failures.all(1, 2)
    assert [e.index for e in page] == [1, 2]
    assert [json.loads(bytes(e.record.payload))["args"] for e in page if e.record] == [[1], [2]]
    assert [e.index for e in resque.failures.all(-2, 2)] == [3, 4]
    assert len(list(resque.failures.iter(page=2))) == 5


def test_multi_queue_backend_keys(redis_url: str, r: redis.Redis) -> None:
    multi = Resque(redis_url, failure_backend="redis_multi_queue")
    multi.failures.save(failure("default"))
    multi.failures.save(failure("other"))
    assert r.smembers("resque:failed_queues") == {b"default_failed", b"other_failed"}
    assert r.llen("resque:default_failed") == 1 and r.llen("resque:other_failed") == 1
    assert not r.exists("resque:failed")
    assert multi.failures.list_names() == ["default_failed", "failed", "other_failed"]
    assert multi.failures.retry(0, "other_failed") == "other"
    stored = r.lindex("resque:other_failed", 0)
    assert stored is not None and json.loads(stored)["retried_at"]
    assert multi.failures.clear("other_failed") == 1
    assert r.smembers("resque:failed_queues") == {b"default_failed"}


def test_unknown_backend_is_refused(r: redis.Redis) -> None:
    with pytest.raises(ValueError, match="unknown failure backend"):
        Failures(r, Keys(), "mongo")  # type: ignore[arg-type]


def test_broken_records_are_listed_as_broken(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:failed", b"not json", b"[1,2]", RUBY, b'{"failed_at":"x","payload":"not a job","exception":"E",'
            b'"error":"e","backtrace":[],"worker":"w","queue":"q"}')  # fmt: skip
    entries = resque.failures.all(0, 10)
    assert [e.broken for e in entries] == [True, True, False, False]
    assert entries[0].problem and entries[1].problem
    for index in (0, 1, 3):
        with pytest.raises(FailureError):
            resque.failures.retry(index)
    resque.failures.remove(0)  # a broken entry can still be removed
    assert r.llen("resque:failed") == 3
    assert resque.size("q") == 0


def test_status_reset_only_when_tracked(resque: Resque, r: redis.Redis) -> None:
    r.rpush("resque:failed", PHP)
    resque.failures.retry(0)
    assert not r.exists("resque:job:3aabe8b46114aeaa9e784281ddb8d1da:status")  # untracked stays untracked
