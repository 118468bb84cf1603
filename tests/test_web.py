"""The dashboard and JSON API against a real Redis holding every peer's records."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import web_seed
from click.testing import CliRunner
from starlette.routing import Route
from web_client import TestClient, api, post, token
from web_seed import IDLE_WORKER, NODE_WORKER, RUBY_WORKER, XSS

from resque_compat import Resque
from resque_compat.cli import main
from resque_compat.protocol import Failure, Raw
from resque_compat.web import create_app


@pytest.fixture
def seeded(r: redis.Redis) -> dict[str, int]:
    return web_seed.seed(r)


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Resque(redis_url, namespace="resque")), base_url="http://localhost") as c:
        yield c


HTML_PAGES = [
    "/overview",
    "/overview.poll",
    "/working",
    f"/working/{RUBY_WORKER}",
    "/queues",
    "/queues/default",
    "/queues/math",
    "/workers",
    "/workers/all",
    "/workers/vm",
    "/workers.poll",
    f"/workers/{RUBY_WORKER}",
    f"/workers/{NODE_WORKER}",
    "/workers/vm:999:default",
    "/failed",
    "/failed?class=BadJob",
    "/failed?order=asc",
    "/stats/resque",
    "/stats/redis",
    "/stats/keys",
    "/stats/keys/failed",
    "/stats/keys/workers",
    "/stats/keys/workers:heartbeat",
    "/stats/keys/delayed_queue_schedule",
    "/stats/keys/stat:processed",
    "/schedule",
    "/delayed",
    "/delayed/search?q=good",
    "/delayed/jobs/GoodJob?args=%5B%22later2%22%5D",
    "/status",
    "/status?id=8f7086daa1acfe723bebc6851dcceaa2",
    "/enqueue",
]


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_page_renders_peer_data_escaped(client: TestClient, seeded: dict[str, int], path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert XSS not in response.text and "<img src=x" not in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"


def test_hostile_text_is_shown_escaped(client: TestClient, seeded: dict[str, int]) -> None:
    page = client.get("/failed").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    queue = client.get("/queues/default").text
    assert "&lt;script&gt;" in queue and "<script>alert" not in queue


def test_every_api_page_returns_json(client: TestClient, seeded: dict[str, int]) -> None:
    for path in HTML_PAGES:
        if path.endswith(".poll") or path == "/enqueue":
            continue
        response = client.get("/api" + path)
        assert response.status_code == 200, (path, response.text[:300])
        assert isinstance(response.json(), dict)


def test_broken_records_are_shown_as_broken(client: TestClient, seeded: dict[str, int]) -> None:
    failed = client.get("/api/failed").json()["failures"]
    broken = [f for f in failed if f["broken"]]
    assert len(broken) == 1 and broken[0]["raw"] == "{not a failure"
    jobs = client.get("/api/queues/default").json()["jobs"]
    assert [j["raw"] for j in jobs if j["broken"]] == ["not json"]
    worker = client.get("/api/workers/vm:999:default").json()["worker"]
    assert worker["job"]["broken"] and worker["job"]["raw"] == "{broken"
    assert worker["started"] == {
        "raw": "yesterday-ish",
        "iso": None,
        "epoch": None,
        "shown": "yesterday-ish",
        "ago": None,
        "parsed": False,
    }
    schedules = {s["name"]: s for s in client.get("/api/schedule").json()["schedules"]}
    assert schedules["broken"]["broken"] and not schedules["tick"]["broken"]
    assert "broken" in client.get("/queues/default").text.lower()


def test_every_peer_time_format_is_parsed(client: TestClient, seeded: dict[str, int]) -> None:
    working = {w["id"]: w for w in client.get("/api/working").json()["working"]}
    run_at = {wid: w["job"]["run_at"]["iso"] for wid, w in working.items() if not w["job"]["broken"]}
    assert run_at == {
        RUBY_WORKER: "2026-11-26T20:20:39Z",  # Ruby: ISO 8601 Z
        web_seed.PHP_WORKER: "2026-11-26T20:21:31Z",  # php-resque cb: strftime
        NODE_WORKER: "2026-11-26T20:45:03Z",  # node: Date#toString
        web_seed.PYRES_WORKER: "2026-11-26T20:45:16Z",  # pyres: unix seconds
    }
    workers = {w["id"]: w for w in client.get("/api/workers/all").json()["workers"]}
    assert workers[IDLE_WORKER]["started"]["iso"] == "2026-11-26T20:20:57Z"  # Ruby Time#to_s, CET
    assert workers[IDLE_WORKER]["heartbeat"]["iso"] == "2026-11-26T20:20:57Z"
    assert workers[IDLE_WORKER]["started"]["raw"] == "2026-11-26 21:20:57 +0100"  # stored as the peer wrote it
    assert workers[web_seed.PHP_FORK_WORKER]["started"]["iso"] == "2026-11-26T20:22:56Z"  # date('c')
    assert workers[NODE_WORKER]["started"]["parsed"]  # unix seconds
    failed_at = [
        f["failed_at"]["iso"] for f in client.get("/api/failed?order=asc").json()["failures"] if not f["broken"]
    ]
    assert failed_at[:6] == [
        "2026-11-26T20:20:42Z",
        "2026-11-26T20:21:41Z",
        "2026-11-26T20:21:39Z",
        "2026-11-26T20:23:05Z",
        "2026-11-26T20:45:03Z",
        "2026-11-26T20:45:16Z",
    ]


def test_node_worker_uses_its_ping_and_per_name_counters(client: TestClient, seeded: dict[str, int]) -> None:
    worker = client.get(f"/api/workers/{NODE_WORKER}").json()["worker"]
    assert worker["heartbeat"]["parsed"] and worker["processed"] == 4
    assert worker["job"]["payload"]["class"] == "slow" and worker["job"]["payload"]["args"] == []  # cjson's {}


def test_a_payload_with_odd_args_is_a_job_with_a_note(client: TestClient, r: redis.Redis) -> None:
    r.rpush("resque:queue:odd", b'{"class":"Odd","args":{"k":1}}')
    job = client.get("/api/queues/odd").json()["jobs"][0]
    assert (job["broken"], job["class"], job["args"]) == (False, "Odd", {"k": 1}) and job["note"]
    assert "odd args" in client.get("/queues/odd").text


def test_activejob_and_php_payloads(client: TestClient, seeded: dict[str, int]) -> None:
    jobs = client.get("/api/queues/default").json()["jobs"]
    assert jobs[2]["shown_class"] == "WelcomeMailJob"
    assert jobs[1]["id"] == "8f7086daa1acfe723bebc6851dcceaa2" and jobs[1]["extra"]["queue_time"] == 1795724486.560175


def test_stats_txt_is_rubys(client: TestClient, seeded: dict[str, int]) -> None:
    response = client.get("/stats.txt")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == (
        "resque.pending=8\nresque.processed+=12\nresque.failed+=5\nresque.workers=7\nresque.working=5\n"
        "queues.default=5\nqueues.math=2\nqueues.other=1"
    )


# -- CSRF and auth ------------------------------------------------------------------------
def test_form_posts_need_the_csrf_token(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    before = r.llen("resque:failed")
    assert client.post("/failed/clear", data={}).status_code == 403
    assert client.post("/failed/clear", data={"csrf": "forged"}).status_code == 403
    good = token(client)
    cross = client.post("/failed/clear", data={"csrf": good}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    assert r.llen("resque:failed") == before
    done = client.post("/failed/clear", data={"csrf": good}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/failed"
    assert not r.exists("resque:failed")
    assert "Cleared 8 failures" in client.get("/failed").text  # the notice, once
    assert "Cleared 8 failures" not in client.get("/failed").text


def test_api_writes_need_json_or_the_csrf_header(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    form = client.post("/api/workers/pause_all", data={"x": "1"})
    assert form.status_code == 403 and not r.exists("resque:pause-all-workers")
    plain = client.post("/api/workers/pause_all", content=b"", headers={"content-type": "text/plain"})
    assert plain.status_code == 403
    assert api(client, "/api/workers/pause_all").json()["paused_all"] is True
    assert r.get("resque:pause-all-workers") == b"true"
    header = client.post("/api/workers/resume_all", headers={"x-csrf-token": token(client)})
    assert header.status_code == 200 and not r.exists("resque:pause-all-workers")
    cross = client.post("/api/workers/pause_all", json={}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403


def test_get_never_changes_state(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    for path in (
        "/failed/requeue/0",
        "/failed/remove/0",
        "/failed/clear",
        "/queues/default/remove",
        "/workers/pause_all",
    ):
        client.get(path)
    assert r.llen("resque:failed") == 8 and r.llen("resque:queue:default") == 5
    assert not r.exists("resque:pause-all-workers")


def test_basic_auth(redis_url: str) -> None:
    app = create_app(Resque(redis_url), credentials=("admin", "s3cr:et"))
    with TestClient(app) as c:
        assert c.get("/overview").status_code == 401
        assert c.get("/overview").headers["www-authenticate"].startswith("Basic")
        assert c.get("/api/overview", auth=("admin", "wrong")).status_code == 401
        assert c.get("/static/style.css").status_code == 401
        assert c.get("/overview", auth=("admin", "s3cr:et")).status_code == 200
        bad = c.get("/overview", headers={"authorization": "Basic " + base64.b64encode(b"\xff").decode()})
        assert bad.status_code == 401


def test_web_command_refuses_open_address_without_auth(redis_url: str) -> None:
    runner = CliRunner()
    env = {"REDIS_URL": redis_url, "RESQUE_WEB_AUTH": None}
    result = runner.invoke(main, ["web", "--host", "0.0.0.0"], env=env)
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in result.output
    result = runner.invoke(main, ["web", "--host", "0.0.0.0", "--auth", "nopassword"], env=env)
    assert result.exit_code == 2 and "USER:PASSWORD" in result.output


# -- failures -----------------------------------------------------------------------------
def test_retry_one_failure_from_the_page(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    entry = client.get("/api/failed").json()["failures"][-1]  # the oldest: Ruby's BadJob
    assert entry["index"] == 0
    response = post(client, "/failed/requeue/0", digest=entry["digest"])
    assert response.status_code == 303
    assert r.lrange("resque:queue:default", -1, -1) == [b'{"class":"BadJob","args":["x"]}']
    stored = Failure.decode(r.lindex("resque:failed", 0) or b"")
    assert stored.retried_at
    page = client.get("/failed").text
    assert "Retried failure 0: queued again on default" in page
    shown = client.get("/api/failed").json()["failures"][-1]
    assert shown["retried_at"]["parsed"]


def test_actions_refuse_an_entry_that_moved(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    entries = client.get("/api/failed").json()["failures"]
    first = entries[-1]
    r.lpop("resque:failed")  # the list shifts under the page
    response = api(client, "/api/failed/remove/0", {"digest": first["digest"]})
    assert response.status_code == 409 and "changed" in response.json()["error"]
    assert r.llen("resque:failed") == 7
    gone = api(client, "/api/failed/requeue/99")
    assert gone.status_code == 409
    assert api(client, "/api/failed/requeue/6", {"digest": "x"}).status_code == 409


def test_remove_retry_all_clear_retried(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    assert api(client, "/api/failed/remove/6").json()["index"] == 6  # the broken one
    assert r.llen("resque:failed") == 7
    result = api(client, "/api/failed/requeue/all").json()
    assert result["retried"] == 7
    assert api(client, "/api/failed/clear_retried").json()["removed"] == 7
    assert not r.exists("resque:failed")


def test_failed_paging_is_newest_first_and_class_filter(client: TestClient, r: redis.Redis) -> None:
    resque = Resque(r)
    for i in range(45):
        cls = "Even" if i % 2 == 0 else "Odd"
        r.rpush(
            "resque:failed",
            json.dumps(
                {
                    "failed_at": "2026/11/26 20:20:42 UTC",
                    "payload": {"class": cls, "args": [i]},
                    "exception": "E",
                    "error": "e",
                    "backtrace": [],
                    "worker": "w:1:q",
                    "queue": "q",
                }
            ),
        )
    first = client.get("/api/failed").json()
    assert [f["index"] for f in first["failures"]] == list(range(44, 24, -1))
    assert first["paging"]["next"] == 20
    last = client.get("/api/failed?start=40").json()
    assert [f["index"] for f in last["failures"]] == [4, 3, 2, 1, 0] and last["paging"]["next"] is None
    asc = client.get("/api/failed?order=asc&start=20").json()
    assert [f["index"] for f in asc["failures"]] == list(range(20, 40))
    odd = client.get("/api/failed?class=Odd").json()
    assert [f["index"] for f in odd["failures"]] == list(range(43, 3, -2))
    more = client.get(f"/api/failed?class=Odd&start={odd['paging']['next']}").json()
    assert [f["index"] for f in more["failures"]] == [3, 1] and more["scan"]["complete"]
    assert resque.failures.count() == 45


def test_multi_queue_failures(client: TestClient, r: redis.Redis) -> None:
    multi = Resque(r, failure_backend="redis_multi_queue")
    for queue, cls in (("default", "A"), ("default", "B"), ("other", "A")):
        multi.failures.save(
            Failure(
                failed_at="2026/11/26 20:20:42 UTC",
                payload=Raw(json.dumps({"class": cls, "args": []}).encode()),
                exception="E",
                error="e",
                backtrace=[],
                worker="w:1:" + queue,
                queue=queue,
            )
        )
    page = client.get("/api/failed").json()
    assert [(x["name"], x["count"]) for x in page["lists"]] == [
        ("default_failed", 2),
        ("failed", 0),
        ("other_failed", 1),
    ]
    overview = {row["list"]: row["classes"] for row in page["overview"]["lists"]}
    assert overview["default_failed"] == [["A", 1], ["B", 1]]
    one = client.get("/api/failed/default_failed").json()
    assert one["total"] == 2 and one["list"] == "default_failed"
    assert api(client, "/api/failed/other_failed/requeue/0").json()["queue"] == "other"
    assert r.llen("resque:queue:other") == 1
    assert api(client, "/api/failed/default_failed/clear").json()["removed"] == 2
    assert b"default_failed" not in r.smembers("resque:failed_queues")
    assert "other_failed" in client.get("/failed").text


# -- queues, workers, jobs ------------------------------------------------------------------
def test_queue_paging_and_remove(client: TestClient, r: redis.Redis) -> None:
    Resque(r).enqueue_many("big", [("Job", [i]) for i in range(45)])
    page = client.get("/api/queues/big?start=40").json()
    assert [j["args"] for j in page["jobs"]] == [[i] for i in range(40, 45)]
    assert page["paging"]["prev"] == 20 and page["paging"]["next"] is None
    assert post(client, "/queues/big/remove").status_code == 303
    assert not r.exists("resque:queue:big") and b"big" not in r.smembers("resque:queues")


def test_queue_names_with_odd_characters(client: TestClient, r: redis.Redis) -> None:
    name = "a/b c?#%"
    Resque(r).enqueue(name, "Job", 1)
    html = client.get("/queues").text
    href = re.search(r'href="(/queues/a[^"]+)"', html)
    assert href is not None
    assert client.get(href.group(1)).json if client.get(href.group(1)).status_code == 200 else False
    assert client.get("/api" + href.group(1)).json()["size"] == 1


def test_workers_by_host_and_control(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    hosts = client.get("/api/workers").json()
    assert hosts["by_host"] and [h["host"] for h in hosts["hosts"]] == ["nodebox", "pybox", "vm"]
    vm = client.get("/api/workers/vm").json()
    assert {w["host"] for w in vm["workers"]} == {"vm"} and len(vm["workers"]) == 5
    detail = client.get(f"/api/workers/{RUBY_WORKER}").json()["worker"]
    assert (detail["processed"], detail["failed"], detail["started"]["parsed"]) == (1, 1, True)
    buttons = re.findall(r'name="command" value="([^"]+)"', client.get(f"/workers/{RUBY_WORKER}").text)
    assert buttons == ["pause", "resume", "stop", "kill-job"]
    assert post(client, f"/workers/{RUBY_WORKER}/control", command="pause").status_code == 303
    assert api(client, f"/api/workers/{RUBY_WORKER}/control", {"command": "resume"}).status_code == 200
    assert r.lrange(f"resque:compat:control:{RUBY_WORKER}", 0, -1) == [b"pause", b"resume"]
    assert client.get(f"/api/workers/{RUBY_WORKER}").json()["worker"]["control_pending"] == 2
    assert api(client, f"/api/workers/{RUBY_WORKER}/control", {"command": "explode"}).status_code == 400
    assert api(client, "/api/workers/gone:1:q/control", {"command": "stop"}).status_code == 409
    assert client.get("/api/workers/gone:1:q").status_code == 404
    assert client.get("/workers/gone:1:q").status_code == 404


def test_enqueue_form_and_status(client: TestClient, r: redis.Redis) -> None:
    response = post(client, "/enqueue", queue="mail", **{"class": "Mailer::Welcome"}, args='[42, {"to": "a/é"}]')
    assert response.status_code == 303
    assert r.lrange("resque:queue:mail", 0, -1) == ['{"class":"Mailer::Welcome","args":[42,{"to":"a/é"}]}'.encode()]
    tracked = api(client, "/api/enqueue", {"queue": "mail", "class": "App\\Jobs\\X", "args": [], "track": True}).json()
    status = client.get(f"/api/status?id={tracked['id']}").json()
    assert status["tracked"] and status["name"] == "waiting"
    assert "waiting" in client.get(f"/status?id={tracked['id']}").text
    assert api(client, "/api/enqueue", {"queue": "mail", "class": "X", "args": "[1"}).status_code == 400
    assert api(client, "/api/enqueue", {"queue": "", "class": "X"}).status_code == 400
    bad = post(client, "/enqueue", queue="mail", **{"class": "X"}, args="{}")
    assert bad.status_code == 200 and "args must be a JSON array" in bad.text  # the form again, input kept
    assert 'value="mail"' in bad.text and ">{}</textarea>" in bad.text and not r.exists("resque:queue:X")
    assert client.get("/api/status?id=nope").json() == {"id": "nope", "tracked": False}


def test_fork_status_with_result(client: TestClient, seeded: dict[str, int]) -> None:
    status = client.get("/api/status?id=df12a501d9e8117acd35c83c251356bd").json()
    assert status["name"] == "complete" and status["result"] == {"ok": True} and 0 < status["expires_in"] <= 86400


def test_stats_keys_use_scan(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    r.set("other-app:key", "x")
    keys = {k["key"]: k for k in client.get("/api/stats/keys").json()["keys"]}
    assert keys["failed"] == {"key": "failed", "type": "list", "size": 8}
    assert "other-app:key" not in keys and all(not k.startswith("resque:") for k in keys)
    hb = client.get("/api/stats/keys/workers:heartbeat").json()
    assert hb["type"] == "hash" and [RUBY_WORKER, "2026-11-26T20:20:39+00:00"] in hb["items"]
    assert client.get("/api/stats/keys/nope").status_code == 404


# -- scheduler tabs -------------------------------------------------------------------------
def test_delayed_tab(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    soon, later = seeded["soon"], seeded["later"]
    page = client.get("/api/delayed").json()
    assert [(t["timestamp"], t["count"]) for t in page["timestamps"]] == [(soon, 2), (later, 1)]
    at = client.get(f"/api/delayed/{soon}").json()
    assert [j["args"] for j in at["jobs"]] == [["later", {"id": 7}], ["later2"]]
    where = client.get("/api/delayed/jobs/add?args=[3,4]").json()
    assert [j["timestamp"] for j in where["jobs"]] == [later]
    found = client.get("/api/delayed/search?q=good").json()
    assert len(found["delayed"]) == 2 and found["working"][0]["id"] == RUBY_WORKER
    assert found["queued"][0]["class"] == "GoodJob"
    # cancel one, queue one item now, queue a timestamp now, clear
    assert api(
        client, "/api/delayed/cancel_now", {"klass": "GoodJob", "timestamp": soon, "args": ["later2"]}
    ).is_success
    assert r.llen(f"resque:delayed:{soon}") == 1
    digest = client.get(f"/api/delayed/{soon}").json()["jobs"][0]["digest"]
    assert post(client, "/delayed/queue_now", timestamp=soon, digest=digest).status_code == 303
    assert r.lrange("resque:queue:default", -1, -1) == [b'{"class":"GoodJob","args":["later",{"id":7}]}']
    assert not r.exists(f"resque:delayed:{soon}")
    assert api(client, "/api/delayed/queue_now", {"timestamp": later}).json()["moved"] == 1
    assert r.lrange("resque:queue:math", -1, -1) == [b'{"class":"add","args":[3,4]}']
    assert api(client, "/api/delayed/queue_now", {"timestamp": later}).status_code == 409
    web_seed.seed(r)
    assert api(client, "/api/delayed/clear").is_success
    assert not r.exists("resque:delayed_queue_schedule")
    assert api(client, "/api/delayed/cancel_now", {"klass": "X", "timestamp": "soon"}).status_code == 400


def test_schedule_tab(client: TestClient, r: redis.Redis, seeded: dict[str, int]) -> None:
    rows = {s["name"]: s for s in client.get("/api/schedule").json()["schedules"]}
    assert rows["tick"]["interval"] == "every: 1m" and rows["tick"]["last_enqueued"]["parsed"]
    assert rows["nightly"]["args"] == ["one-arg"] and rows["nightly"]["interval"] == "cron: 0 3 * * *"
    assert post(client, "/schedule/requeue", name="nightly").status_code == 303
    assert r.lrange("resque:queue:reports", 0, -1) == [b'{"class":"Report","args":["one-arg"]}']
    assert api(client, "/api/schedule/delete", {"name": "tick"}).is_success
    assert not r.hexists("resque:persistent_schedules", "tick")
    assert r.sismember("resque:schedules_changed", "tick")
    assert api(client, "/api/schedule/requeue", {"name": "tick"}).status_code == 409


# -- bounded reads on a huge list -------------------------------------------------------------
class RecordingRedis(redis.Redis):
    """Records every command name and arguments, pipelined or not."""

    log: list[tuple[Any, ...]]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.log.append(args)
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        outer = self

        class Recording(redis.client.Pipeline):
            def pipeline_execute_command(self, *args: Any, **options: Any) -> Any:
                outer.log.append(args)
                return super().pipeline_execute_command(*args, **options)

        return Recording(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def test_a_200k_failed_list_is_read_a_page_at_a_time(redis_url: str, r: redis.Redis) -> None:
    item = (
        b'{"failed_at":"2026/11/26 20:20:42 UTC","payload":{"class":"BadJob","args":["x"]},"exception":"E",'
        b'"error":"e","backtrace":[],"worker":"vm:1:default","queue":"default"}'
    )
    pipe = r.pipeline(transaction=False)
    for _ in range(20):
        pipe.rpush("resque:failed", *([item] * 10_000))
    pipe.execute()
    recording = RecordingRedis(connection_pool=redis.ConnectionPool.from_url(redis_url))
    recording.log = []
    with TestClient(create_app(Resque(recording)), base_url="http://localhost") as c:
        for path in (
            "/failed",
            "/failed?start=100000",
            "/api/failed?start=199990",
            "/failed?order=asc&start=150000",
            "/failed?class=Nope",
            "/overview",
            "/queues",
            "/stats/keys",
            "/stats/keys/failed",
            "/stats.txt",
        ):
            recording.log.clear()
            assert c.get(path).status_code == 200
            names = [str(cmd[0]).upper() for cmd in recording.log]
            assert "KEYS" not in names, path
            for cmd in recording.log:
                if str(cmd[0]).upper() == "LRANGE":
                    start, end = int(cmd[2]), int(cmd[3])
                    assert end != -1 or start < 0, (path, cmd)
                    assert end - start < 1000, (path, cmd)
            reads = sum(int(cmd[3]) - int(cmd[2]) + 1 for cmd in recording.log if str(cmd[0]).upper() == "LRANGE")
            assert reads <= 5000 + 1000, (path, reads)  # the class filter's bounded scan, plus the overview sample
        page = c.get("/api/failed?start=199990").json()
        assert [f["index"] for f in page["failures"]] == list(range(9, -1, -1))
        assert page["total"] == 200_000


# -- OpenAPI --------------------------------------------------------------------------------
def test_openapi_document_matches_the_routes(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    app = client.app.app  # type: ignore[attr-defined]
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
            served |= {(path, m) for m in route.methods or () if m != "HEAD"}
    assert documented == served
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for op in item.values():
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == names, path
