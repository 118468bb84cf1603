"""Hostile hosts and odd records (issue 12), the cases as reported, against a real Redis:
DNS rebinding, records that took pages down, a heartbeat that stopped workers, failure actions
that reached other keys, bad input that was bent instead of refused, secrets and log forging."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from skip_policy import not_applicable_reason
from waiting import wait_for

from resque_compat import Resque
from resque_compat.cli import main
from resque_compat.connection import ConfigError, parse_address, redact
from resque_compat.protocol import timefmt
from resque_compat.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
NS = "resque:"


@pytest.fixture
def app(redis_url: str) -> Any:
    return create_app(Resque(redis_url, namespace="resque"))


def client_for(app: Any, host: str) -> TestClient:
    return TestClient(app, base_url=f"http://{host}", raise_server_exceptions=False)


# -- 1. hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:5678", "localhost", "localhost:5678", "[::1]", "[::1]:80"])
def test_loopback_host_names_are_served(app: Any, host: str) -> None:
    with client_for(app, host) as c:
        assert c.get("/api/queues").status_code == 200


@pytest.mark.parametrize(
    "host", ["attacker.example:5678", "attacker.example", "127.0.0.1.evil.example", "localhost.evil", "10.0.0.1", ""]
)
def test_rebound_host_names_are_refused_before_any_route(r: redis.Redis, app: Any, host: str) -> None:
    r.sadd(NS + "queues", "victim")
    r.rpush(NS + "queue:victim", b'{"class":"Secret","args":["data"]}')
    with TestClient(app, raise_server_exceptions=False) as c:
        headers = {"host": host, "origin": f"http://{host}"}
        read = c.get("/api/queues", headers=headers)
        assert read.status_code == 421 and b"victim" not in read.content and b"Secret" not in read.content
        for path, body in [
            ("/api/queues/victim/remove", {}),
            ("/api/enqueue", {"queue": "victim", "class": "Evil", "args": []}),
            ("/api/workers/pause_all", {}),
        ]:
            assert c.post(path, json=body, headers=headers).status_code == 421
    assert r.llen(NS + "queue:victim") == 1 and not r.exists(NS + "pause-all-workers")


def test_origin_must_name_an_allowed_host_not_the_request_host(r: redis.Redis, redis_url: str) -> None:
    app = create_app(Resque(redis_url), allowed_hosts=["dash.example.org"])
    with client_for(app, "dash.example.org") as c:
        assert c.get("/api/queues").status_code == 200
        ok = c.post("/api/workers/pause_all", json={}, headers={"origin": "http://dash.example.org"})
        assert ok.status_code == 200
        r.delete(NS + "pause-all-workers")
        evil = c.post("/api/workers/pause_all", json={}, headers={"origin": "http://attacker.example"})
        assert evil.status_code == 403 and not r.exists(NS + "pause-all-workers")
    with client_for(app, "other.example.org") as c:
        assert c.get("/api/queues").status_code == 421


def test_allowed_host_with_a_port_admits_that_port_only(redis_url: str) -> None:
    app = create_app(Resque(redis_url), allowed_hosts=["proxy.example:8443"])
    with client_for(app, "proxy.example:8443") as c:
        assert c.get("/api/queues").status_code == 200
    with client_for(app, "proxy.example:9999") as c:
        assert c.get("/api/queues").status_code == 421


def test_any_host_only_with_auth(redis_url: str) -> None:
    from resque_compat.web.security import AuthError  # noqa: PLC0415

    with pytest.raises(AuthError):
        create_app(Resque(redis_url), allowed_hosts=["*"])
    app = create_app(Resque(redis_url), credentials=("admin", "pw"), allowed_hosts=["*"])
    with client_for(app, "anything.example") as c:
        assert c.get("/api/queues", auth=("admin", "pw")).status_code == 200


def test_web_command_reads_allowed_hosts_from_env_and_refuses_star_without_auth(redis_url: str) -> None:
    result = CliRunner().invoke(main, ["--redis", redis_url, "web", "--allowed-host", "*"])
    assert result.exit_code == 2 and "needs --auth" in result.output
    result = CliRunner().invoke(
        main, ["--redis", redis_url, "web"], env={"RESQUE_WEB_ALLOWED_HOSTS": "ok.example, bad/host"}
    )
    assert result.exit_code == 2 and "allowed-host" in result.output


# -- 2. every reader is total ---------------------------------------------------------------

ODD_TIMES: list[object] = [
    "999999999999", "99999999999999", 999999999999, 288230376151711744, 1e308, -1, float("nan"), float("inf"),
    "1e999", "x", "", True, None, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
]  # fmt: skip


@pytest.mark.parametrize("value", ODD_TIMES)
def test_time_parse_is_unknown_never_an_error(value: object) -> None:
    assert timefmt.parse(value) is None


def seed_odd_records(r: redis.Redis) -> None:
    """The records of the report, one of each stored kind."""
    r.sadd(NS + "queues", "q")
    r.rpush(NS + "queue:q", b'{"class":"A","args":[],"id":5}', b'{"class":"A","args":[],"queue_time":"x"}')
    running = {
        "queue": "q",
        "run_at": "2026-11-26T20:20:39Z",
        "payload": {"class": "A", "args": [], "queue_time": 1e308},
    }
    r.sadd(NS + "workers", "h:1:q", "h:2:q")
    r.set(NS + "worker:h:1:q", json.dumps(running))
    r.set(NS + "worker:h:1:q:started", "99999999999999")
    r.set(NS + "worker:h:2:q", b'{"queue":"q","run_at":"99999999999999","payload":"x"}')
    r.hset(NS + "workers:heartbeat", mapping={"h:1:q": "99999999999999", "otherhost:1:q": "99999999999999"})
    failure = {"failed_at": "999999999999", "payload": {"class": "A", "args": [], "id": 5}, "exception": "E",
               "error": "e", "backtrace": [], "worker": "w", "queue": "q", "retried_at": "99999999999999"}  # fmt: skip
    r.rpush(NS + "failed", json.dumps(failure), b'{"class":"A","args":[],"queue_time":"x"}', b"\xff")
    for ts in (999999999999, 288230376151711744):
        r.zadd(NS + "delayed_queue_schedule", {str(ts): ts})
        r.rpush(NS + f"delayed:{ts}", b'{"class":"A","args":[],"queue":"q"}')
    r.set(NS + "job:abc:status", b'{"status":"x","updated":1e308}')
    r.set(NS + "stat:processed", b"1e999")


@pytest.mark.parametrize(
    "path",
    ["/overview", "/working", "/workers", "/workers/all", "/workers/h:1:q", "/working/h:1:q", "/queues/q", "/failed",
     "/delayed", "/delayed/999999999999", "/delayed/288230376151711744", "/status?id=abc", "/stats/resque"],
)  # fmt: skip
def test_odd_records_never_take_a_page_down(r: redis.Redis, app: Any, path: str) -> None:
    seed_odd_records(r)
    with client_for(app, "localhost") as c:
        for prefix in ("", "/api"):
            response = c.get(prefix + path)
            assert response.status_code == 200, (prefix + path, response.text[:300])


def test_odd_records_are_shown_as_broken_with_their_bytes(r: redis.Redis, app: Any) -> None:
    seed_odd_records(r)
    with client_for(app, "localhost") as c:
        jobs = c.get("/api/queues/q").json()["jobs"]
        assert [j["broken"] for j in jobs] == [True, True]
        assert '"id":5' in jobs[0]["raw"]
        failures = c.get("/api/failed").json()["failures"]
        assert len(failures) == 3
        status = c.get("/api/status?id=abc").json()
        assert status["broken"] and '"status":"x"' in status["raw"]


@pytest.mark.parametrize(
    "args", [["delayed", "list"], ["failed", "list"], ["workers"], ["peek", "q"], ["queues"], ["schedule", "list"]]
)
def test_cli_readers_print_no_traceback(r: redis.Redis, redis_url: str, args: list[str]) -> None:
    seed_odd_records(r)
    result = CliRunner().invoke(main, ["--redis", redis_url, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output


def test_a_bad_heartbeat_never_stops_a_worker_from_starting(r: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    r.hset(NS + "workers:heartbeat", "otherhost:1:q", "99999999999999")
    r.sadd(NS + "workers", "otherhost:1:q")
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "resque_compat", "--redis", redis_url, "work", "-q", "q", "--burst", "-v"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "out of range" not in proc.stderr
    assert "heartbeat" in proc.stderr and "not a time" in proc.stderr


# -- 4. actions touch only their own kind of key ----------------------------------------------


@pytest.mark.parametrize("name", ["queue:victim", "workers", "stat:processed", "q_failed_not_listed", "x_failed"])
def test_failure_actions_refuse_any_other_key(r: redis.Redis, app: Any, name: str) -> None:
    r.rpush(NS + "queue:victim", b'{"class":"A","args":[]}')
    r.sadd(NS + "workers", "h:1:q")
    r.set(NS + "stat:processed", 5)
    r.set(NS + "x_failed", b"a string")
    before = {k: r.dump(k) for k in r.keys("*")}
    with client_for(app, "localhost") as c:
        for action in ("clear", "requeue/all", "clear_retried", "remove/0", "requeue/0"):
            response = c.post(f"/api/failed/{name}/{action}", json={})
            assert response.status_code == 404, (action, response.text)
        assert c.post("/api/failed/clear", json={"list": name}).status_code == 404
        assert c.get(f"/api/failed/{name}").status_code == 404
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_clearing_a_listed_failure_list_that_is_not_a_list_leaves_it_whole(r: redis.Redis, app: Any) -> None:
    r.sadd(NS + "failed_queues", "odd_failed")
    r.set(NS + "odd_failed", b"not a list")
    with client_for(app, "localhost") as c:
        response = c.post("/api/failed/odd_failed/clear", json={})
    assert response.status_code == 409
    assert r.get(NS + "odd_failed") == b"not a list" and r.sismember(NS + "failed_queues", "odd_failed")


def test_remove_queue_refuses_a_key_that_is_not_a_queue(r: redis.Redis, app: Any) -> None:
    r.set(NS + "queue:odd", b"x")
    with client_for(app, "localhost") as c:
        assert c.post("/api/queues/odd/remove", json={}).status_code == 409
        assert c.post("/api/queues/nosuch/remove", json={}).status_code == 404
    assert r.get(NS + "queue:odd") == b"x"


# -- 5. bad input is refused, never bent --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"queue": "q", "class": "A", "args": "[1e999]"},
        {"queue": "q", "class": "A", "args": "[NaN]"},
        {"queue": "q", "class": "A", "args": "[Infinity]"},
        {"queue": 5, "class": "A", "args": []},
        {"queue": "q", "class": ["A"], "args": []},
        {"queue": "q", "class": "A", "args": json.loads("[" * 70 + "]" * 70)},
    ],
)
def test_api_enqueue_refuses_values_it_would_bend(r: redis.Redis, app: Any, body: dict[str, Any]) -> None:
    with client_for(app, "localhost") as c:
        response = c.post("/api/enqueue", json=body)
    assert response.status_code == 400, response.text
    assert "error" in response.json()
    assert r.keys("*") == []


def test_api_enqueue_keeps_big_integers_exactly(r: redis.Redis, app: Any) -> None:
    """Ruby reads integers of any size as written, so they are JSON we keep, not bend."""
    with client_for(app, "localhost") as c:
        response = c.post("/api/enqueue", json={"queue": "q", "class": "A", "args": [2**64, -(2**70)]})
    assert response.status_code == 200, response.text
    assert r.lrange(NS + "queue:q", 0, -1) == [b'{"class":"A","args":[18446744073709551616,-1180591620717411303424]}']


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"queue":"q","class":"A","args":[NaN]}', b"{"])
def test_api_refuses_raw_bodies_with_a_reason(r: redis.Redis, app: Any, raw: bytes) -> None:
    with client_for(app, "localhost") as c:
        response = c.post("/api/enqueue", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert r.keys("*") == []


def test_api_refuses_an_oversized_body(app: Any) -> None:
    with client_for(app, "localhost") as c:
        body = json.dumps({"queue": "q", "class": "A", "args": ["x" * (2 << 20)]})
        assert c.post("/api/enqueue", content=body, headers={"content-type": "application/json"}).status_code == 413


@pytest.mark.parametrize(
    "args",
    [
        ["enqueue", "q", "A", "[1e999]"],
        ["enqueue", "q", "A", "[NaN]"],
        ["enqueue", "q", "A", "[" * 100_000 + "]" * 100_000],
        ["enqueue", "--in", "inf", "q", "A"],
        ["enqueue", "--in", "nan", "q", "A"],
        ["enqueue", "--in", "0", "q", "A"],
        ["enqueue", "--at", "1e400", "q", "A"],
        ["enqueue", "--at", "-5", "q", "A"],
        ["schedule", "add", "x", "--every", "99999999999999999d", "--class", "A", "--queue", "q"],
        ["schedule", "add", "x", "--every", "inf", "--class", "A", "--queue", "q"],
        ["schedule", "remove", "nosuch"],
        ["work", "-q", "q", "--timeout", "nan", "--burst"],
        ["work", "-q", "q", "--timeout", "inf", "--burst"],
        ["work", "-q", "q", "--interval", "nan", "--burst"],
    ],
)
def test_cli_refuses_bad_input_in_one_line_writing_nothing(r: redis.Redis, redis_url: str, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["--redis", redis_url, *args])
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert r.keys("*") == []


@pytest.mark.parametrize(
    "url",
    ["rediss://127.0.0.1:6390/0?ssl_keyfile=", "redis://127.0.0.1:6390/0?foo=bar",
     "redis://127.0.0.1:6390/0?socket_timeout=abc", "redis://127.0.0.1:6390/0?timeout=nan"],
)  # fmt: skip
def test_malformed_url_options_are_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(url)
    result = CliRunner().invoke(main, ["--redis", url, "queues"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


# -- 6. secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:Sec@ret99@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:p@ss:w/rd@host/0", "redis://user:***@host/0"),
        ("redis://token@host/0", "redis://***@host/0"),
        ("error at 'rediss://a:b@c@h:1' and redis://x:y@z/0", "error at 'rediss://a:***@h:1' and redis://x:***@z/0"),
    ],
)
def test_redact_hides_the_whole_userinfo(url: str, shown: str) -> None:
    assert redact(url) == shown


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return fh.read().replace(b"\0", b" ").decode(errors="replace")


@pytest.fixture
def password_redis() -> Iterator[str]:
    """A private redis-server that needs a password holding ``@``; yields its URL."""
    from resque_compat.testing.redis_server import RedisServer  # noqa: PLC0415

    with RedisServer() as server:
        server.client().config_set("requirepass", SECRET)
        yield f"redis://:{SECRET.replace('@', '%40')}@127.0.0.1:{server.port}/0"


SECRET = "Sec@ret-pw-42"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason=not_applicable_reason("needs /proc"))
@pytest.mark.parametrize("command", ["scheduler", "web"])
def test_scheduler_and_web_hide_passwords_from_their_process_title(password_redis: str, command: str) -> None:

    from resque_compat.testing.redis_server import free_port  # noqa: PLC0415

    extra = ["--auth", "admin:" + SECRET, "--port", str(free_port())] if command == "web" else ["--interval", "0.2"]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "resque_compat", "--redis", password_redis, command, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:

        def titled() -> str | None:
            assert proc.poll() is None, "the command exited"
            title = _cmdline(proc.pid)
            return title if "resque-compat " + command in title else None

        title = wait_for(titled, what="the process title")
        assert SECRET not in title and "Sec%40ret" not in title and "***" in title, title
    finally:
        proc.terminate()
        proc.wait(30)


# -- 7. logs ------------------------------------------------------------------------------------


def test_a_class_name_with_a_newline_cannot_forge_a_text_log_line(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    evil = "Evil\n2026-01-01 00:00:00,000 INFO resque-compat[1]: forged\x1b[2J"
    Resque(redis_url).enqueue("q", evil)
    for fmt in ("text", "json"):
        r.rpush(NS + "queue:q", json.dumps({"class": evil, "args": []}))
        env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [sys.executable, "-m", "resque_compat", "--redis", redis_url, "work", "-q", "q", "--burst", "-v",
             "--log-format", fmt],
            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        lines = proc.stderr.splitlines()
        assert not any(line.startswith("2026-01-01") for line in lines), proc.stderr
        assert "\x1b" not in proc.stderr
        if fmt == "json":
            for line in lines:
                json.loads(line)


# -- 3. display limits --------------------------------------------------------------------------


def test_huge_values_are_cut_on_pages_with_the_whole_record_one_click_away(r: redis.Redis, app: Any) -> None:
    big = "x" * 2_000_000
    failure = {"failed_at": "2026/11/26 20:20:42 UTC", "payload": {"class": "A", "args": [big]}, "exception": "E",
               "error": big, "backtrace": [big], "worker": "w", "queue": "q", "note": big}  # fmt: skip
    for _ in range(5):
        r.rpush(NS + "failed", json.dumps(failure))
    r.rpush(NS + "failed", big)
    r.sadd(NS + "queues", "q")
    r.rpush(NS + "queue:q", json.dumps({"class": "A", "args": [big], "id": "abc"}), big)
    with client_for(app, "localhost") as c:
        for path in ("/failed", "/api/failed", "/queues/q", "/api/queues/q", "/stats/keys/failed", "/api/stats/keys/q"):
            response = c.get(path)
            assert response.status_code in (200, 404) and len(response.content) < 200_000, (path, len(response.content))
        shown = c.get("/api/failed").json()["failures"]
        assert shown[0]["broken"] and shown[1]["truncated"] and shown[1]["full"] == "/raw/failed?index=4"
        whole = c.get(shown[1]["full"])
        assert whole.status_code == 200 and json.loads(whole.content) == failure
        job = c.get("/api/queues/q").json()["jobs"][0]
        assert job["truncated"] and job["args"] is None and json.loads(c.get(job["full"]).content)["id"] == "abc"
        assert c.get("/raw/queue:q?index=9").status_code == 404
        assert c.get("/raw/queue:q").status_code == 400
        assert c.get("/raw/nosuch").status_code == 404


# -- 8. scale: bounded reads, batched bulk actions ----------------------------------------------


def test_worker_pages_read_only_the_shown_rows(r: redis.Redis, redis_url: str, monkeypatch: Any) -> None:
    from resque_compat.web import data  # noqa: PLC0415

    monkeypatch.setattr(data, "EXACT_WORKERS", 10)
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        wid = f"host{i % 3}:{i}:q"
        pipe.sadd(NS + "workers", wid)
        pipe.hset(NS + "workers:heartbeat", wid, "2026-11-26T20:20:39+00:00")
        if i % 2 == 0:
            pipe.set(NS + "worker:" + wid, json.dumps({"queue": "q", "run_at": f"2026-11-26T20:{i % 60:02d}:00Z",
                                                       "payload": {"class": "A", "args": [i]}}))  # fmt: skip
    pipe.execute()
    app = create_app(Resque(redis_url))
    with client_for(app, "localhost") as c:
        overview = c.get("/api/overview").json()
        assert overview["workers_total"] == 300 and overview["working_total"] == 150
        assert len(overview["working"]) == 50
        runs = [w["job"]["run_at"]["iso"] for w in overview["working"]]
        assert runs == sorted(runs)  # oldest first
        assert c.get("/api/working?start=100").json()["paging"]["last_shown"] == 150
        everyone = c.get("/api/workers/all?start=250").json()
        assert everyone["paging"]["total"] == 300 and len(everyone["workers"]) == 50
        assert c.get("/api/workers").json()["hosts"] == [{"host": f"host{i}", "count": 100} for i in range(3)]
        assert c.get("/api/stats/resque").json()["info"]["workers"] == 300
        # a new worker is counted at once (SCARD), the busy set follows within the refresh
        r.sadd(NS + "workers", "late:1:q")
        assert c.get("/api/overview").json()["workers_total"] == 301


def _failures(r: redis.Redis, count: int, retried_every: int = 0) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        record: dict[str, Any] = {
            "failed_at": "2026/11/26 20:20:42 UTC", "payload": {"class": "A", "args": [i]},
            "exception": "E", "error": "e", "backtrace": [], "worker": "w", "queue": "q",
        }  # fmt: skip
        if retried_every and i % retried_every == 0:
            record["retried_at"] = "2026/11/26 20:21:00 UTC"
        pipe.rpush(NS + "failed", json.dumps(record))
    pipe.rpush(NS + "failed", b"broken")
    pipe.execute()


def test_retry_all_of_a_long_list_runs_in_batches_in_the_background(r: redis.Redis, app: Any, monkeypatch: Any) -> None:

    from resque_compat import failures  # noqa: PLC0415
    from resque_compat.web import bulk  # noqa: PLC0415

    monkeypatch.setattr(failures, "BULK_BATCH", 100)
    monkeypatch.setattr(bulk, "INLINE_LIMIT", 50)
    monkeypatch.setattr(bulk, "_tasks", {})
    _failures(r, 1000)
    with client_for(app, "localhost") as c:
        started = c.post("/api/failed/requeue/all", json={}).json()
        task = started["task"]
        assert started["retried"] is None or started["task"]["done"]
        url = f"/api/tasks/{task['id']}"
        task = wait_for(lambda: (polled := c.get(url).json())["done"] and polled, what="the bulk task to finish")
        assert task["done_count"] == 1000 and task["skipped"] == 1 and task["processed"] == 1001, task
        assert r.llen(NS + "queue:q") == 1000
        assert all(b"retried_at" in e for e in r.lrange(NS + "failed", 0, 999))
        assert "Retry all" in c.get("/failed").text
        assert c.get("/api/tasks/nosuch").status_code == 404
        cleared_url = f"/api/tasks/{c.post('/api/failed/clear_retried', json={}).json()['task']['id']}"
        cleared = wait_for(lambda: (polled := c.get(cleared_url).json())["done"] and polled, what="clear retried")
        assert cleared["done_count"] == 1000 and r.lrange(NS + "failed", 0, -1) == [b"broken"]


def test_retry_all_pushes_each_entry_to_its_own_queue(r: redis.Redis, app: Any) -> None:
    """One batch spans several queues: each queue list is a declared key of the batch's script."""
    pipe = r.pipeline(transaction=False)
    for i in range(30):
        queue = f"q{i % 3}"
        record = {"failed_at": "2026/11/26 20:20:42 UTC", "payload": {"class": "A", "args": [i]},
                  "exception": "E", "error": "e", "backtrace": [], "worker": "w", "queue": queue}  # fmt: skip
        pipe.rpush(NS + "failed", json.dumps(record))
    pipe.execute()
    with client_for(app, "localhost") as c:
        task = c.post("/api/failed/requeue/all", json={}).json()["task"]
    assert task["done"] and task["done_count"] == 30, task
    for n in range(3):
        args = [json.loads(item)["args"][0] for item in r.lrange(f"{NS}queue:q{n}", 0, -1)]
        assert args == list(range(n, 30, 3))
    assert r.smembers(NS + "queues") == {b"q0", b"q1", b"q2"}


def test_a_second_bulk_run_on_the_same_list_is_refused_while_one_runs(
    r: redis.Redis, app: Any, monkeypatch: Any
) -> None:
    import threading  # noqa: PLC0415

    from resque_compat.web import bulk  # noqa: PLC0415

    gate = threading.Event()
    real = bulk._retry_all

    def slow(resque: Any, task: Any) -> None:
        gate.wait(30)
        real(resque, task)

    monkeypatch.setattr(bulk, "INLINE_LIMIT", 0)
    monkeypatch.setattr(bulk, "_retry_all", slow)
    monkeypatch.setattr(bulk, "_tasks", {})
    _failures(r, 10)
    with client_for(app, "localhost") as c:
        first = c.post("/api/failed/requeue/all", json={})
        assert first.status_code == 200
        assert c.post("/api/failed/requeue/all", json={}).status_code == 409
        gate.set()


def test_clear_of_a_long_list_is_one_short_command(r: redis.Redis, app: Any) -> None:
    _failures(r, 5000)
    with client_for(app, "localhost") as c:
        assert c.post("/api/failed/clear", json={}).json()["removed"] == 5001
    assert not r.exists(NS + "failed")
