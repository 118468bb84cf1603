"""The dashboard's Retrying and Statuses tabs, and progress on the Job status page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jobs.plugin_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import run_burst
from web_client import TestClient, api, post

from resque_compat import Resque
from resque_compat.protocol import Keys
from resque_compat.web import create_app

XSS = '<script>alert("x")</script>'


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Resque(redis_url, namespace="resque")), base_url="http://localhost") as c:
        yield c


@pytest.fixture(autouse=True)
def job_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_JOBS_REDIS", redis_url)


@pytest.fixture
def pending(redis_url: str, r: redis.Redis) -> dict[str, str]:
    resque = Resque(redis_url)
    resque.enqueue("default", "Mailer::Delayed", "n", 5)
    resque.enqueue("default", "Mailer::Delayed", XSS, 5)
    run_burst(redis_url)
    r.hset("resque:compat:retries", "broken-entry", b"{not json")
    return {"now": Keys.retry_name("Mailer::Delayed", ["n", 5]), "xss": Keys.retry_name("Mailer::Delayed", [XSS, 5])}


@pytest.fixture
def statuses(redis_url: str) -> dict[str, str]:
    store = Resque(redis_url).statuses
    running = store.create("Reports::Build", {"steps": 4, "who": XSS})
    store.update(running, f"Reports::Build({XSS})", {"status": "working", "num": 1, "total": 4}, XSS)
    done = store.create("Reports::Build", {})
    store.update(done, None, {"status": "completed"})
    broken = store.create("Reports::Build", {})
    store.redis.set(f"resque:status:{broken}", b"[1,2")
    return {"running": running, "done": done, "broken": broken}


def test_retrying_tab(client: Any, pending: dict[str, str]) -> None:
    page = client.get("/retrying")
    assert page.status_code == 200 and "Retry now" in page.text and "Give up" in page.text
    assert XSS not in page.text and "3 of 3" in page.text and "broken" in page.text
    data = client.get("/api/retrying").json()
    assert data["total"] == 3 and {e.get("class") for e in data["retries"]} == {"Mailer::Delayed", None}


def test_retry_now_and_give_up_from_the_page_and_api(client: Any, r: redis.Redis, pending: dict[str, str]) -> None:
    assert client.post("/retrying/now", data={"name": pending["now"]}).status_code == 403  # no CSRF token
    assert r.llen("resque:queue:default") == 0
    done = post(client, "/retrying/now", name=pending["now"])
    assert done.status_code == 303 and done.headers["location"] == "/retrying"
    assert r.llen("resque:queue:default") == 1
    again = api(client, "/api/retrying/now", {"name": pending["now"]})
    assert again.status_code == 404 and "no pending retry" in again.json()["error"]
    gave = api(client, "/api/retrying/give_up", {"name": pending["xss"]})
    assert gave.status_code == 200 and r.llen("resque:failed") == 1
    unreadable = api(client, "/api/retrying/now", {"name": "broken-entry"})
    assert unreadable.status_code == 409 and "unreadable" in unreadable.json()["error"]  # it can only be given up
    assert api(client, "/api/retrying/give_up", {"name": "broken-entry"}).status_code == 200
    assert api(client, "/api/retrying/now", {"name": 5}).status_code == 400
    assert client.get("/api/retrying").json()["total"] == 0


def test_statuses_tab_like_resque_status(client: Any, statuses: dict[str, str]) -> None:
    page = client.get("/statuses")
    assert page.status_code == 200 and XSS not in page.text
    assert page.text.count(">Kill<") == 1  # only the running one is killable
    assert "Clear completed statuses" in page.text and "25%" in page.text
    listed = client.get("/api/statuses").json()
    assert listed["paging"]["total"] == 3
    assert {s["state"] for s in listed["statuses"]} == {"working", "completed", "unreadable"}
    one = client.get(f"/statuses/{statuses['running']}")
    assert one.status_code == 200 and "<progress" in one.text and ">Kill<" in one.text and XSS not in one.text
    assert client.get(f"/api/statuses/{statuses['running']}").json()["pct_complete"] == 25
    assert client.get("/statuses/nope").status_code == 404


def test_kill_and_clear(client: Any, r: redis.Redis, statuses: dict[str, str]) -> None:
    killed = post(client, f"/statuses/{statuses['running']}/kill")
    assert killed.status_code == 303 and r.smembers("resque:_kill") == {statuses["running"].encode()}
    assert "kill requested" in client.get(f"/statuses/{statuses['running']}").text
    assert api(client, "/api/statuses/nope/kill").status_code == 404
    assert api(client, "/api/statuses/clear", {"which": "bogus"}).status_code == 400
    assert api(client, "/api/statuses/clear", {"which": "completed"}).json()["removed"] == 1
    assert post(client, "/statuses/clear", which="all").status_code == 303
    assert not r.exists("resque:_statuses")


def test_job_status_page_shows_progress_and_kill(
    client: Any,
    redis_url: str,
    r: redis.Redis,
    statuses: dict[str, str],
) -> None:
    page = client.get(f"/status?id={statuses['running']}")
    assert page.status_code == 200 and "<progress" in page.text and ">Kill<" in page.text and "25%" in page.text
    data = client.get(f"/api/status?id={statuses['running']}").json()
    assert data["progress"]["kind"] == "resque-status" and data["progress"]["pct"] == 25
    job_id = Resque(redis_url).enqueue("default", "Mailer::Tracked", {"name": "p"}, track=True)
    r.set("test:runs:p", 1)
    run_burst(redis_url)
    tracked = client.get(f"/status?id={job_id}")
    assert "100%" in tracked.text and "sent" in tracked.text and ">Kill<" not in tracked.text
    assert json.loads(r.get(f"resque:job:{job_id}:status") or b"")["status"] == 4
