"""Log lines: JSON from a real worker and scheduler (every line parses, job lines carry their
fields), text job lines with the same fields, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import spawn_worker, stop, worker_env
from waiting import wait_for

from resque_compat import Resque
from resque_compat.logs import JsonFormatter, job_fields, mask_args, scrub, setup
from resque_compat.protocol import Keys
from resque_compat.testing.redis_server import RedisServer

PASSWORD = "Pw-l0gs-s3cret"
ARG_SECRET = "hunter2-arg-secret"
JOB_KEYS = {"job_id", "class", "queue", "worker", "duration_ms", "outcome"}


@pytest.fixture(scope="module")
def acl_url() -> Iterator[str]:
    """A Redis reached as an ACL user with a password, so the URL holds a secret."""
    with RedisServer() as server:
        server.client().execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", "app", "on", f">{PASSWORD}", "~*", "&*", "+@all"
        )
        yield f"redis://app:{PASSWORD}@127.0.0.1:{server.port}/0"


@pytest.fixture
def acl_redis(acl_url: str) -> redis.Redis:
    client = redis.Redis.from_url(acl_url)
    client.flushall()
    return client


def enqueue_mix(resque: Resque) -> str:
    job_id = resque.enqueue("default", "GoodJob", {"user": "bob", "password": ARG_SECRET, "token": ARG_SECRET},
                            track=True)  # fmt: skip
    assert job_id is not None
    resque.enqueue("default", "BadJob", "x")
    resque.enqueue("default", "NoSuchJob", {"api_key": ARG_SECRET})
    resque.redis.rpush("resque:queue:default", b"not json")
    return job_id


def parse_lines(out: str) -> list[dict[str, Any]]:
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "no output"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_worker_json_lines(acl_url: str, acl_redis: redis.Redis) -> None:
    job_id = enqueue_mix(Resque(acl_url))
    proc = spawn_worker(acl_url, "-q", "default", "--burst", "-v", "--log-format", "json")  # -v -v: DEBUG
    out = stop(proc, sig=0)
    assert proc.returncode == 0, out
    records = parse_lines(out)
    assert all({"ts", "level", "msg", "logger", "pid"} <= set(rec) for rec in records)
    assert all(rec["ts"].endswith("Z") and "T" in rec["ts"] for rec in records)
    jobs = [rec for rec in records if "outcome" in rec]
    assert [(j["class"], j["outcome"]) for j in jobs] == [
        ("GoodJob", "ok"), ("BadJob", "failed"), ("NoSuchJob", "failed"), ("(malformed)", "failed")
    ]  # fmt: skip
    for j in jobs:
        assert set(j) >= JOB_KEYS, j
        assert j["queue"] == "default" and j["worker"].split(":")[1] == str(proc.pid)
        assert isinstance(j["duration_ms"], float) and j["duration_ms"] >= 0
    assert jobs[0]["job_id"] == job_id and jobs[0]["level"] == "INFO" and jobs[1]["job_id"] is None
    assert jobs[2]["level"] == "WARNING" and "NoSuchJob" in jobs[2]["msg"]
    got = [rec for rec in records if rec["msg"].startswith("got:")]
    assert got and all(rec["level"] == "DEBUG" for rec in got)
    assert "'user': 'bob'" in got[0]["msg"] and "'password': '***'" in got[0]["msg"]
    assert PASSWORD not in out and ARG_SECRET not in out


def test_worker_text_lines_carry_job_fields_and_no_args_at_info(acl_url: str, acl_redis: redis.Redis) -> None:
    job_id = enqueue_mix(Resque(acl_url))
    proc = spawn_worker(acl_url, "-q", "default", "--burst", env={"LOG_FORMAT": "text"})  # -v: INFO
    out = stop(proc, sig=0)
    assert proc.returncode == 0, out
    done = [line for line in out.splitlines() if "done: (Job{default} | GoodJob)" in line]
    assert len(done) == 1 and " INFO resque-compat[" in done[0]
    assert f"[id={job_id} worker=" in done[0] and done[0].endswith(" ms]")
    assert "bob" not in out and "got:" not in out  # arguments only at DEBUG
    assert PASSWORD not in out and ARG_SECRET not in out


def test_scheduler_json_lines(acl_url: str, acl_redis: redis.Redis) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from resque_compat.cli import main; main()", "--redis", acl_url,
         "scheduler", "--interval", "0.1"],
        env={**worker_env(), "LOG_FORMAT": "json"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for(lambda: acl_redis.exists(Keys("resque").scheduler_master_lock()), what="the scheduler to lead")
    out = stop(proc, signal.SIGTERM)
    records = parse_lines(out)
    starting = [rec for rec in records if rec["msg"].startswith("starting on")]
    assert starting and "app:***@127.0.0.1" in starting[0]["msg"]
    assert all(rec["logger"].startswith("resque_compat") for rec in records)
    assert PASSWORD not in out


def test_worker_log_format_is_checked(acl_url: str, acl_redis: redis.Redis) -> None:
    proc = spawn_worker(acl_url, "-q", "default", "--log-format", "xml")
    out = stop(proc, sig=0)
    assert proc.returncode == 2 and "xml" in out and len(out.strip().splitlines()) == 1


# -- the pure parts ---------------------------------------------------------------------------
def test_mask_args_hides_secret_keys_at_any_depth() -> None:
    args = [{"user": "bob", "Password": "p", "nested": [{"api_key": "k", "n": 1}], "auth_token": "t"}, "x", 3]
    assert mask_args(args) == [
        {"user": "bob", "Password": "***", "nested": [{"api_key": "***", "n": 1}], "auth_token": "***"}, "x", 3
    ]  # fmt: skip
    deep: Any = []
    cur = deep
    for _ in range(100):
        cur.append([])
        cur = cur[0]
    assert "***" in json.dumps(mask_args(deep))


def test_scrub_hides_url_passwords_in_any_line() -> None:
    line = "Error connecting to redis://app:s3cr3t@db:6379/0 and rediss://:only@x/1"
    assert scrub(line) == "Error connecting to redis://app:***@db:6379/0 and rediss://:***@x/1"
    assert scrub("no url here") == "no url here"


def test_json_formatter_keeps_a_traceback_on_one_line() -> None:
    stream = io.StringIO()
    setup("json", logging.DEBUG, stream=stream)
    log = logging.getLogger("resque_compat.test")

    def broken() -> None:
        raise RuntimeError("cannot reach redis://u:pw123@h/0")

    try:
        try:
            broken()
        except RuntimeError:
            log.exception("it broke")
        fields = job_fields(job_id="abc", class_name="C", queue="q", worker="h:1:q", duration=0.0123, outcome="ok")
        log.info("done", extra=fields)
        logging.getLogger("other.lib").info("not shown")
    finally:
        setup("text", logging.WARNING)
    first, second = parse_lines(stream.getvalue())
    assert first["level"] == "ERROR" and "RuntimeError" in first["exc"] and "pw123" not in stream.getvalue()
    assert second["duration_ms"] == 12.3 and second["job_id"] == "abc" and second["outcome"] == "ok"
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)
    with pytest.raises(ValueError, match="unknown log format"):
        setup("yaml")
