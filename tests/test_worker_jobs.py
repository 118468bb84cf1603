"""Jobs through a real worker: Ruby and PHP styles, hooks, statuses, bad input, timeouts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import job_log_lines, run_burst

from resque_compat import Resque

FORK_WAITING = '{"status":1,"updated":1795724576,"started":1795724576,"result":null}'


@pytest.fixture
def job_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "jobs.log"
    monkeypatch.setenv("JOB_LOG", str(path))
    return path


@pytest.mark.parametrize("fork", [False, True])
def test_ruby_hooks_in_resque_order(redis_url: str, r: redis.Redis, job_log: Path, fork: bool) -> None:
    resque = Resque(redis_url)
    resque.enqueue("default", "Mailer::Welcome", "ok", 1)
    resque.enqueue("default", "Mailer::Welcome", "fail")
    resque.enqueue("default", "Mailer::Welcome", "skip")
    run_burst(redis_url, fork=fork)
    assert job_log_lines(job_log) == [
        "before_first_fork",
        "before_perform", "before_perform_b", "around in", "perform ['ok', 1]", "around out", "after_perform",
        "before_perform", "before_perform_b", "around in", "perform ['fail']", "on_failure RuntimeError",
        "before_perform",
    ]  # fmt: skip
    failures = r.lrange("resque:failed", 0, -1)
    assert len(failures) == 1
    record = json.loads(failures[0])
    assert record["exception"] == "RuntimeError" and record["error"] == "e1"
    assert record["payload"] == {"class": "Mailer::Welcome", "args": ["fail"]}
    assert r.get("resque:stat:processed") == b"3" and r.get("resque:stat:failed") == b"1"


@pytest.mark.parametrize("fork", [False, True])
def test_php_style_and_status_transitions(redis_url: str, r: redis.Redis, job_log: Path, fork: bool) -> None:
    resque = Resque(redis_url)
    ok = resque.enqueue("default", "App\\Jobs\\SendMail", {"to": "a/b"}, track=True)
    bad = resque.enqueue("default", "\\App\\Jobs\\SendMail", {"fail": True}, track=True)
    assert ok and bad
    run_burst(redis_url, fork=fork)
    lines = job_log_lines(job_log)
    assert lines[1:4] == ["set_up", f"php perform {{'to': 'a/b'}} default {ok}", "tear_down"]
    done = json.loads(r.get(f"resque:job:{ok}:status") or b"")
    assert done["status"] == 4 and done["result"] == {"ok": True, "echo": {"to": "a/b"}}
    assert isinstance(done["started"], int) and done["updated"] >= done["started"]
    failed = json.loads(r.get(f"resque:job:{bad}:status") or b"")
    assert failed["status"] == 3 and "result" not in failed  # chrisboulton shape stays as it was
    for job_id in (ok, bad):
        assert 86000 < r.ttl(f"resque:job:{job_id}:status") <= 86400
    record = json.loads(r.lindex("resque:failed", 0) or b"")
    assert record["exception"] == "ValueError" and record["error"] == "Unable to run this job!"


def test_fork_shaped_status_keeps_result_and_prefix(redis_url: str, r: redis.Redis) -> None:
    """resque/php-resque's payload (``prefix``) and status record (``result``)."""
    for job_id, cls, args in (("a1", "Forty", [{}]), ("a2", "PHP_Job", [{"skip": 1}]), ("a3", "Nope", [{}])):
        r.rpush("resque:queue:default", json.dumps(
            {"class": cls, "args": args, "id": job_id, "prefix": "tenant7", "queue_time": 1795724576.49}
        ))  # fmt: skip
        r.set(f"resque:job:tenant7_{job_id}:status", FORK_WAITING)
    run_burst(redis_url)
    assert json.loads(r.get("resque:job:tenant7_a1:status") or b"")["result"] == 42
    skipped = json.loads(r.get("resque:job:tenant7_a2:status") or b"")
    assert skipped["status"] == 4 and skipped["result"] is False  # DontPerform in set_up, as the fork writes
    unknown = json.loads(r.get("resque:job:tenant7_a3:status") or b"")
    assert list(unknown) == ["status", "updated", "started", "result"]
    assert unknown["status"] == 3 and unknown["started"] == 1795724576 and unknown["result"] is None
    record = json.loads(r.lindex("resque:failed", 0) or b"")
    assert record["exception"] == "resque_compat.registry.UnknownJobError"
    assert record["error"] == "Could not find job class Nope."
    assert r.get("resque:stat:processed") == b"3" and r.get("resque:stat:failed") == b"1"


def test_untracked_jobs_do_no_status_io(redis_url: str, r: redis.Redis) -> None:
    r.rpush("resque:queue:default", b'{"class":"Forty","args":[{}],"id":"zz","queue_time":1.0}')
    run_burst(redis_url)
    assert not r.keys("resque:job:*")


def test_malformed_items_are_failed_with_raw_bytes(redis_url: str, r: redis.Redis) -> None:
    items = [
        b"not json",
        b"[1,2]",
        b'"just a string"',
        b'{"args":[]}',
        b'{"class":"GoodJob","args":"x"}',
        b'{"class":"GoodJob","args":["\xff\xfe"]}',
        b"\xff\xfe{bad",
        b"[" * 5000 + b"]" * 5000,
        b"y" * 1_000_000,
    ]
    r.rpush("resque:queue:default", *items, b'{"class":"Noop","args":[]}')
    run_burst(redis_url)
    assert r.get("resque:stat:processed") == str(len(items) + 1).encode()
    assert r.get("resque:stat:failed") == str(len(items)).encode()
    assert r.llen("resque:queue:default") == 0
    records = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert len(records) == len(items)
    for item, record in zip(items, records, strict=True):
        assert list(record)[:7] == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
        assert record["exception"] == "resque_compat.worker.runner.MalformedJobError"
        if "payload_base64" in record:
            assert base64.b64decode(record["payload_base64"]) == item
        elif isinstance(record["payload"], str):
            assert record["payload"].encode() == item
        else:
            assert json.dumps(record["payload"], separators=(",", ":")).encode() == item
    assert "payload_base64" in records[5] and "payload_base64" in records[6]


@pytest.mark.parametrize("fork", [False, True])
def test_job_timeout(redis_url: str, r: redis.Redis, fork: bool) -> None:
    Resque(redis_url).enqueue("default", "Sleep", 30, "t")
    Resque(redis_url).enqueue("default", "Noop")
    run_burst(redis_url, fork=fork, timeout=0.3)
    record = json.loads(r.lindex("resque:failed", 0) or b"")
    assert record["exception"] == "Resque::JobTimeout"
    assert record["payload"] == {"class": "Sleep", "args": [30, "t"]}
    assert r.get("resque:stat:processed") == b"2" and r.get("resque:stat:failed") == b"1"


def test_child_exit_without_outcome_is_dirty_exit(redis_url: str, r: redis.Redis) -> None:
    Resque(redis_url).enqueue("default", "Crash", 3)
    run_burst(redis_url, fork=True)
    record = json.loads(r.lindex("resque:failed", 0) or b"")
    assert record["exception"] == "Resque::DirtyExit"
    assert record["error"].startswith("Child process exited without finishing the job: pid ")
    assert record["error"].endswith(" exit 3")
    assert record["payload"] == {"class": "Crash", "args": [3]} and record["backtrace"] == []
