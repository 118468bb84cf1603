"""``resque-compat doctor`` against a real Redis holding what Ruby, PHP and Node workers write."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from resque_compat import Resque
from resque_compat.cli import main
from resque_compat.doctor import Doctor
from resque_compat.protocol import JobPayload, encode_json, timefmt
from resque_compat.registry import JobRegistry, default_registry
from resque_compat.testing.redis_server import free_port

JOBS_MODULE = """
    from resque_compat import job

    @job("App\\\\Jobs\\\\SendMail", "SendMail")
    class SendMail:
        def perform(self):
            return None

    @job("Mailer::Welcome")
    def welcome(user_id):
        return None
"""


@pytest.fixture(autouse=True)
def empty_default_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no registered jobs (other tests' modules register theirs)."""
    monkeypatch.delenv("APP_INCLUDE", raising=False)
    saved = dict(default_registry._jobs)
    default_registry._jobs.clear()
    yield
    default_registry._jobs.clear()
    default_registry._jobs.update(saved)


@pytest.fixture
def jobs_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module registering two jobs in the default registry."""
    name = f"doctor_jobs_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(JOBS_MODULE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def doctor(redis_url: str, *args: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(main, ["--redis", redis_url, "--json", "doctor", *args])
    report = json.loads(result.output) if result.output.startswith("{") else {}
    return result, report


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def register_worker(r: redis.Redis, wid: str, *, heartbeat_age: float | None = 0.0) -> None:
    """What a Ruby worker writes at startup (php-resque: no heartbeat, heartbeat_age=None)."""
    r.sadd("resque:workers", wid)
    r.set(f"resque:worker:{wid}:started", timefmt.started())
    if heartbeat_age is not None:
        r.hset("resque:workers:heartbeat", wid, timefmt.heartbeat(time.time() - heartbeat_age))


def test_healthy_deployment_passes(redis_url: str, r: redis.Redis, jobs_module: str) -> None:
    resque = Resque(redis_url)
    resque.enqueue("mail", "App\\Jobs\\SendMail", {"to": "a@b"}, track=True)
    resque.enqueue("mail", "\\App\\Jobs\\SendMail", {"to": "c@d"})  # PHP's leading backslash: same class
    resque.enqueue("default", "Mailer::Welcome", 7)
    register_worker(r, "web1:100:*")
    result, report = doctor(redis_url, "--import", jobs_module)
    assert result.exit_code == 0, result.output
    by_name = checks(report)
    assert report["ok"] is True
    levels = {c["name"]: c["level"] for c in report["checks"]}
    assert levels.pop("worker_classes") == "info"  # a Ruby-shaped worker publishes no classes
    assert set(levels.values()) == {"ok"} and len(levels) == 7
    assert by_name["job_classes"]["details"]["registered"] == ["App\\Jobs\\SendMail", "Mailer::Welcome", "SendMail"]


def test_finds_unhandled_classes_unwatched_queues_and_dead_workers(
    redis_url: str, r: redis.Redis, jobs_module: str
) -> None:
    resque = Resque(redis_url)
    resque.enqueue("default", "Mailer::Welcome", 1)
    resque.enqueue("default", "Billing::Charge", 2)  # a Ruby class nobody ported
    resque.enqueue("php", "App\\Jobs\\Unknown", {})
    r.rpush("resque:queue:default", b"not json")
    resque.enqueue("orphan", "SendMail", {})
    r.sadd("resque:queues", "empty")
    register_worker(r, "ruby1:1:default,php", heartbeat_age=10)
    register_worker(r, "ruby2:2:orphan", heartbeat_age=3600)  # dead, never pruned
    result, report = doctor(redis_url, "--import", jobs_module)
    assert result.exit_code == 1
    by_name = checks(report)
    assert by_name["stale_workers"]["level"] == "fail"
    assert [w["id"] for w in by_name["stale_workers"]["details"]["workers"]] == ["ruby2:2:orphan"]
    assert by_name["unwatched_queues"]["level"] == "fail"
    assert by_name["unwatched_queues"]["details"] == {"queues": {"orphan": 1}, "empty": ["empty"]}
    classes = by_name["job_classes"]
    assert classes["level"] == "fail"
    assert classes["details"]["unhandled"] == {"App\\Jobs\\Unknown": {"php": 1}, "Billing::Charge": {"default": 1}}
    assert classes["details"]["undecodable"] == {"default": 1}


def test_queues_option_limits_the_class_check(redis_url: str, r: redis.Redis, jobs_module: str) -> None:
    resque = Resque(redis_url)
    resque.enqueue("py-mail", "SendMail", {})
    resque.enqueue("php-reports", "App\\Reports\\Build", {})
    register_worker(r, "phpbox:9:php-reports", heartbeat_age=None)  # php-resque writes no heartbeat
    register_worker(r, "pybox:8:py-*", heartbeat_age=5)
    result, report = doctor(redis_url, "--import", jobs_module, "--queues", "py-*")
    assert result.exit_code == 0, result.output
    by_name = checks(report)
    assert by_name["job_classes"]["details"]["queues"] == ["py-mail"]
    assert "1 write no heartbeat" in by_name["stale_workers"]["message"]
    result, report = doctor(redis_url, "--import", jobs_module, "--queues", "*,!php-*")
    assert result.exit_code == 0
    result, report = doctor(redis_url, "--import", jobs_module)
    assert result.exit_code == 1
    assert list(checks(report)["job_classes"]["details"]["unhandled"]) == ["App\\Reports\\Build"]


def test_node_worker_ping_counts_as_heartbeat(redis_url: str, r: redis.Redis) -> None:
    r.sadd("resque:queues", "math")
    register_worker(r, "node1:77:math", heartbeat_age=None)
    r.set(
        "resque:worker:ping:node1:77",
        encode_json({"time": int(time.time()) - 4000, "name": "node1:77", "queues": "math"}),
    )
    result, report = doctor(redis_url)
    assert result.exit_code == 1
    assert checks(report)["stale_workers"]["details"]["workers"][0]["id"] == "node1:77:math"
    r.set("resque:worker:ping:node1:77", encode_json({"time": int(time.time()), "name": "node1:77", "queues": "math"}))
    result, report = doctor(redis_url)
    assert result.exit_code == 0, result.output
    assert checks(report)["job_classes"]["level"] == "info"  # nothing imported: not checked


def test_namespace_hint(redis_url: str, r: redis.Redis) -> None:
    Resque(redis_url, namespace="myapp").enqueue("q", "X")
    result, report = doctor(redis_url)
    ns = checks(report)["namespace"]
    assert ns["level"] == "warn" and ns["details"]["others"] == ["myapp"]
    assert result.exit_code == 0
    result = CliRunner().invoke(main, ["--redis", redis_url, "--namespace", "myapp", "doctor"])
    assert "[ok  ] namespace: namespace myapp: 1 queues known" in result.output
    assert "[FAIL] unwatched_queues: jobs wait in queues no live worker watches: q (1)" in result.output
    assert result.output.rstrip().endswith("problems found") and result.exit_code == 1


def test_sample_reads_only_the_head_in_pages(redis_url: str, r: redis.Redis, jobs_module: str) -> None:
    items = [JobPayload.new("SendMail", [i]).encode() for i in range(250)]
    items[220] = JobPayload.new("Late::Job", []).encode()
    r.sadd("resque:queues", "bulk")
    r.rpush("resque:queue:bulk", *items)
    register_worker(r, "w:1:bulk")
    assert doctor(redis_url, "--import", jobs_module, "--sample", "150")[0].exit_code == 0
    result, report = doctor(redis_url, "--import", jobs_module, "--sample", "221")
    assert result.exit_code == 1
    assert checks(report)["job_classes"]["details"]["unhandled"] == {"Late::Job": {"bulk": 1}}


def test_doctor_class_directly(redis_url: str, r: redis.Redis) -> None:
    registry = JobRegistry()
    registry.register("Known", lambda: None)
    Resque(redis_url).enqueue_many("q", [("Known", []), ("Other", [])])
    report = Doctor(Resque(redis_url), registry, ["q"], stale_after=60).run()
    assert not report.ok
    assert [c.name for c in report.checks if c.level == "fail"] == ["unwatched_queues", "job_classes"]


def test_unreachable_redis_exits_3() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result, report = doctor(url)
    assert result.exit_code == 3
    assert report["ok"] is False and report["checks"][0]["name"] == "connectivity"
    assert len(report["checks"]) == 1


def test_bad_import_is_one_line(redis_url: str, jobs_module: str) -> None:
    result = CliRunner().invoke(main, ["--redis", redis_url, "doctor", "--import", "no_such_module_xyz"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("resque-compat: cannot import job module 'no_such_module_xyz'")
    assert len(result.output.strip().splitlines()) == 1
