"""The operator CLI against a real Redis: output for people and scripts, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from cli_runner import one_line_error
from click.testing import CliRunner

from resque_compat.cli import main
from resque_compat.testing.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
RUBY_FAILURE = (
    b'{"failed_at":"2026/11/26 20:20:42 UTC","payload":{"class":"BadJob","args":["x"]},"exception":"ArgumentError",'
    b'"error":"boom: [\\"x\\"]","backtrace":[],"worker":"vm:10947:default","queue":"default"}'
)


def snapshot(r: redis.Redis) -> dict[bytes, Any]:
    return {key: r.dump(key) for key in r.keys("*")}


def run_module(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "resque_compat", *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


# -- enqueue and status ------------------------------------------------------------------


def test_enqueue_writes_rubys_bytes(cli: Any, r: redis.Redis) -> None:
    result = cli("enqueue", "default", "GoodJob", '[1,"two",{"k":"v"},3.5,null,true,"é"]')
    assert result.exit_code == 0 and "GoodJob" in result.stdout
    expected = '{"class":"GoodJob","args":[1,"two",{"k":"v"},3.5,null,true,"é"]}'.encode()
    assert r.lrange("resque:queue:default", 0, -1) == [expected]
    assert r.smembers("resque:queues") == {b"default"}
    assert cli("enqueue", "default", "NoArgs").exit_code == 0
    assert r.lindex("resque:queue:default", 1) == b'{"class":"NoArgs","args":[]}'


def test_enqueue_track_prints_the_id_and_status_reads_it(cli: Any, r: redis.Redis) -> None:
    result = cli("enqueue", "default", "App\\Jobs\\Mail", '[{"to":"a@b"}]', "--track")
    job_id = result.stdout.strip()
    assert len(job_id) == 32 and r.exists(f"resque:job:{job_id}:status")
    assert cli("status", job_id).stdout.splitlines()[0] == "1 waiting"
    data = json.loads(cli("--json", "status", job_id).stdout)
    assert data["id"] == job_id and data["status"] == 1 and data["name"] == "waiting" and data["started"]
    r.set(f"resque:job:tenant7_{job_id}:status", b'{"status":4,"updated":1,"started":1,"result":{"ok":true}}')
    assert cli("status", job_id, "--prefix", "tenant7").stdout == (
        '4 complete\nstarted  1970-01-01T00:00:01Z\nupdated  1970-01-01T00:00:01Z\nresult   {"ok":true}\n'
    )
    shown = json.loads(cli("status", job_id, "--prefix", "tenant7", "--json").stdout)  # --json after the command
    assert shown["result"] == {"ok": True} and shown["updated"] == 1  # stored value kept
    assert shown["updated_at"] == "1970-01-01T00:00:01Z" and shown["updated_at_epoch"] == 1
    scripted = json.loads(cli("--json", "enqueue", "q", "X", "[1]", "--track").stdout)
    assert scripted["queue"] == "q" and scripted["args"] == [1] and len(scripted["id"]) == 32


def test_status_follow_prints_each_change_until_final(redis_url: str, r: redis.Redis) -> None:
    key = "resque:job:feedface:status"
    r.set(key, b'{"status":1,"updated":1,"started":1}')
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    env.pop("RESQUE_NAMESPACE", None)
    env.pop("PREFIX", None)
    cmd = [sys.executable, "-m", "resque_compat", "status", "feedface", "--follow", "--interval", "0.02"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "1 waiting\n"
        r.set(key, b'{"status":2,"updated":2,"started":1}')
        assert proc.stdout.readline() == "2 running\n"
        r.set(key, b'{"status":3,"updated":3,"started":1}')
        assert proc.stdout.readline() == "3 failed\n"
        assert proc.wait(30) == 0
        assert proc.stdout.read() == ""


# -- queues ------------------------------------------------------------------------------


def test_queues_peek_and_remove(cli: Any, r: redis.Redis) -> None:
    for i in range(3):
        cli("enqueue", "default", "Job", f"[{i}]")
    cli("enqueue", "other", "Job", "[]", "--track")
    r.rpush("resque:queue:other", b"not json")
    table = cli("queues").stdout.splitlines()
    assert table[0].split() == ["QUEUE", "SIZE"] and table[1].split() == ["default", "3"]
    assert json.loads(cli("--json", "queues").stdout) == {"default": 3, "other": 2}
    peeked = cli("peek", "default", "--start", "1", "--count", "5").stdout.splitlines()
    assert peeked[0].split() == ["#", "CLASS", "ID", "ARGS"] and len(peeked) == 3
    assert peeked[1].split() == ["1", "Job", "-", "[1]"]
    items = json.loads(cli("--json", "peek", "other", "--count", "2").stdout)
    assert items[0]["payload"]["class"] == "Job" and len(items[0]["payload"]["id"]) == 32
    assert items[1]["payload"] is None and items[1]["raw"] == "not json" and items[1]["problem"]
    assert "(broken)" in cli("peek", "other", "--count", "2").stdout
    assert cli("remove-queue", "default").stdout == "removed queue default (3 jobs)\n"
    assert not r.exists("resque:queue:default") and r.smembers("resque:queues") == {b"other"}


def test_dequeue_rules(cli: Any, r: redis.Redis) -> None:
    job_id = cli("enqueue", "q", "PHP_Job", '[{"n":1}]', "--track").stdout.strip()
    cli("enqueue", "q", "PHP_Job", '[{"n":2}]')
    cli("enqueue", "q", "RubyJob", '["ok",1]')
    cli("enqueue", "q", "RubyJob", '["ok",1]')
    cli("enqueue", "q", "RubyJob", '["keep"]')
    assert cli("dequeue", "q", "PHP_Job", "--id", job_id).stdout == "removed 1 job from q\n"
    assert cli("dequeue", "q", "PHP_Job", "--args", '{"x":2}').stdout == "removed 1 job from q\n"
    removed = json.loads(cli("--json", "dequeue", "q", "RubyJob", "--args", '["ok",1]').stdout)
    assert removed == {"queue": "q", "removed": 2}
    assert r.lrange("resque:queue:q", 0, -1) == [b'{"class":"RubyJob","args":["keep"]}']
    assert cli("dequeue", "q", "RubyJob").stdout == "removed 1 job from q\n"


# -- workers, stats, pause ------------------------------------------------------------------


def test_workers_and_stats(cli: Any, r: redis.Redis) -> None:
    wid = "vm:10947:default"
    r.sadd("resque:workers", wid, "vm:11:idle")
    r.set(f"resque:worker:{wid}", b'{"queue":"default","run_at":"2026-11-26T20:20:39Z","payload":{"class":"GoodJob",'
          b'"args":[1]}}')  # fmt: skip
    r.set(f"resque:worker:{wid}:started", "2026-11-26 20:20:39 +0000")
    r.hset("resque:workers:heartbeat", wid, "2026-11-26T20:20:39+00:00")
    r.set(f"resque:stat:processed:{wid}", 7)
    r.set(f"resque:stat:failed:{wid}", 2)
    r.set("resque:stat:processed", 9)
    lines = cli("workers").stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "QUEUES", "STARTED", "HEARTBEAT", "PROCESSED", "FAILED", "JOB"]
    working = next(line for line in lines if line.startswith(wid))
    assert "busy" in working and "GoodJob on default since 2026-11-26T20:20:39Z" in working
    assert working.count("2026-11-26T20:20:39Z") == 3  # started, heartbeat, job: one format
    assert " 7 " in working and " 2 " in working
    data = {w["id"]: w for w in json.loads(cli("--json", "workers").stdout)}
    assert data["vm:11:idle"]["state"] == "idle" and data[wid]["job"]["payload"] == {"class": "GoodJob", "args": [1]}
    info = json.loads(cli("--json", "stats").stdout)
    assert info["workers"] == 2 and info["working"] == 1 and info["processed"] == 9
    assert set(info) == {"pending", "processed", "queues", "workers", "working", "failed", "servers", "environment"}
    assert any(line.split()[:2] == ["processed", "9"] for line in cli("stats").stdout.splitlines())


def test_pause_and_resume_all(cli: Any, r: redis.Redis) -> None:
    assert cli("pause-all").exit_code == 0
    assert r.get("resque:pause-all-workers") == b"true"
    assert cli("resume-all").exit_code == 0
    assert not r.exists("resque:pause-all-workers")


# -- failures --------------------------------------------------------------------------------


def test_failed_commands(cli: Any, r: redis.Redis) -> None:
    r.rpush("resque:failed", RUBY_FAILURE, b"broken", RUBY_FAILURE.replace(b'"queue":"default"', b'"queue":"other"'))
    listing = cli("failed", "list").stdout.splitlines()
    assert listing[0].split()[:3] == ["LIST", "#", "FAILED_AT"]
    assert "ArgumentError: boom" in listing[1] and "(broken)" in listing[2] and listing[-1].startswith("(3 shown")
    only_other = json.loads(cli("--json", "failed", "list", "--queue", "other").stdout)
    assert [e["index"] for e in only_other] == [2]
    paged = json.loads(cli("--json", "failed", "list", "--start", "1", "--count", "1").stdout)
    assert [e["index"] for e in paged] == [1]
    assert cli("failed", "retry", "0").stdout == "retried 0 onto default\n"
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"BadJob","args":["x"]}']
    assert "retried" in cli("failed", "list", "--count", "1").stdout
    assert cli("failed", "clear-retried").stdout == "cleared 1 retried failures\n"
    assert cli("failed", "remove", "0").stdout == "removed failure 0 from failed\n"  # the broken one
    assert cli("failed", "retry", "--all").stdout == "retried 1 failed jobs\n"
    assert json.loads(cli("--json", "failed", "count").stdout) == {"failed": 1}
    assert cli("failed", "clear").stdout == "cleared 1 failed jobs\n"
    assert not r.exists("resque:failed")


def test_failed_multi_queue_lists(cli: Any, r: redis.Redis) -> None:
    r.sadd("resque:failed_queues", "default_failed")
    r.rpush("resque:default_failed", RUBY_FAILURE)
    entries = json.loads(cli("--json", "failed", "list").stdout)
    assert [(e["list"], e["index"]) for e in entries] == [("default_failed", 0)]
    assert cli("failed", "retry", "0", "--list", "default_failed").exit_code == 0
    assert r.llen("resque:queue:default") == 1
    assert cli("failed", "clear", "--list", "default_failed").stdout == "cleared 1 failed jobs\n"
    assert not r.sismember("resque:failed_queues", "default_failed")


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["enqueue", "q", "X", "[1,"], "not valid JSON"),
        (["enqueue", "q", "X", '{"a":1}'], "must be a JSON array"),
        (["enqueue", "q", "X", "[NaN]"], "NaN"),
        (["enqueue", "q", "", "[]"], "class name must be a non-empty string"),
        (["status", "nope"], "no status for job nope"),
        (["status", "nope", "--follow"], "no status for job nope"),
        (["failed", "retry", "7"], "no failure at index 7"),
        (["failed", "retry", "x"], "not a valid integer"),
        (["failed", "retry"], "give an INDEX or --all"),
        (["failed", "remove", "3"], "no failure at index 3"),
        (["failed", "remove", "0", "--list", "nope_failed"], "no failure list 'nope_failed'"),
        (["dequeue", "q", "X", "--args", "[]"], "--args must be a non-empty"),
        (["dequeue", "q", "X", "--args", "{"], "not valid JSON"),
        (["dequeue", "q", "X", "--id", "1", "--args", "[1]"], "not both"),
        (["remove-queue", "nope"], "no queue named 'nope'"),
        (["peek", "q", "--count", "0"], "--count"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli: Any, r: redis.Redis, args: list[str], reason: str) -> None:
    r.rpush("resque:failed", RUBY_FAILURE)
    r.rpush("resque:queue:q", b'{"class":"Y","args":[]}')
    r.sadd("resque:queues", "q")
    before = snapshot(r)
    assert reason in one_line_error(cli(*args))
    assert snapshot(r) == before


def test_bad_redis_addresses(redis_url: str) -> None:
    runner = CliRunner()
    bad_url = runner.invoke(main, ["--redis", "foo://x", "queues"])
    assert "unsupported Redis URL scheme" in one_line_error(bad_url)
    with RedisServer() as server:
        gone = server.url
    down = runner.invoke(main, ["--redis", gone, "enqueue", "q", "X"])
    assert f"cannot reach Redis at {gone}" in one_line_error(down) and down.exit_code == 3
    secret = runner.invoke(main, ["--redis", "redis://:hunter2@127.0.0.1:1/0", "queues"])
    assert "hunter2" not in one_line_error(secret)


# -- python -m resque_compat, and the demo ---------------------------------------------------


def test_module_entry_point(redis_url: str, r: redis.Redis) -> None:
    done = run_module("--json", "enqueue", "default", "X", "[1]", redis_url=redis_url)
    assert done.returncode == 0 and json.loads(done.stdout)["class"] == "X"
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"X","args":[1]}']
    bad = run_module("enqueue", "default", "X", "nope", redis_url=redis_url)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.startswith("resque-compat: ARGS_JSON is not valid JSON") and bad.stderr.count("\n") == 1
    assert r.llen("resque:queue:default") == 1


def test_demo_shows_waiting_running_complete(cli: Any, r: redis.Redis) -> None:
    result = cli("demo", "--queue", "demo-test")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-3:] == ["1 waiting", "2 running", "4 complete"]
    job_id = lines[1].rsplit(" ", 1)[1]
    assert r.ttl(f"resque:job:{job_id}:status") > 0  # final status expires in 24 h, as php-resque's
    assert int(r.get("resque:stat:processed") or 0) == 1
    assert not r.smembers("resque:workers")


# -- delayed enqueue -----------------------------------------------------------------------


def test_enqueue_in_and_at_write_resque_scheduler_layout(cli: Any, r: redis.Redis) -> None:
    result = cli("enqueue", "email", "SendFollowUpEmail", '[{"id":7}]', "--at", "4102444800")
    assert result.exit_code == 0, result.output
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(b"4102444800", 4102444800.0)]
    item = b'{"class":"SendFollowUpEmail","args":[{"id":7}],"queue":"email"}'
    assert r.lrange("resque:delayed:4102444800", 0, -1) == [item]
    assert r.smembers(b"resque:timestamps:" + item) == {b"delayed:4102444800"}
    assert cli("enqueue", "email", "X", "--in", "3600").exit_code == 0
    assert r.zcard("resque:delayed_queue_schedule") == 2
    assert not r.exists("resque:queue:email")


def test_enqueue_delay_rejects_conflicting_options(cli: Any, r: redis.Redis) -> None:
    one_line_error(cli("enqueue", "q", "X", "--at", "4102444800", "--in", "5"))
    one_line_error(cli("enqueue", "q", "X", "--in", "5", "--track"))
    assert r.keys("*") == []
