"""The dashboard in a real browser (Debian's Chromium via Playwright), on peer-shaped data."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import web_seed
from web_seed import RUBY_WORKER

from conftest import shot

TABS = [
    ("overview", "/overview", "Overview", "GoodJob"),
    ("working", "/working", "5 of 7 workers working", "PHP_Job"),
    ("failed", "/failed", "Failed jobs", "Bad_PHP_Job"),
    ("queues", "/queues", "Queues", "math"),
    ("queue", "/queues/default", "Pending jobs on default", "WelcomeMailJob"),
    ("workers", "/workers", "Workers by host", "nodebox"),
    ("workers-all", "/workers/all", "7 workers", "jobs.Slow"),
    ("worker", f"/workers/{RUBY_WORKER}", "Worker", "2026-11-26T20:20:39Z"),
    ("stats", "/stats/resque", "Stats", "pending"),
    ("stats-redis", "/stats/redis", "Stats", "redis_version"),
    ("stats-keys", "/stats/keys", "Stats", "persistent_schedules"),
    ("schedule", "/schedule", "Schedule", "every minute"),
    ("delayed", "/delayed", "Delayed jobs", "GoodJob"),
    ("status", "/status?id=df12a501d9e8117acd35c83c251356bd", "Job status", "complete"),
    ("enqueue", "/enqueue", "Enqueue a job", "Arguments"),
]


@pytest.fixture
def seeded(r: redis.Redis) -> dict[str, int]:
    return web_seed.seed(r)


@pytest.mark.parametrize("tab", TABS, ids=[t[0] for t in TABS])
def test_every_tab_loads_with_seeded_data(page: Any, seeded: dict[str, int], tab: tuple[str, str, str, str]) -> None:
    name, path, title, text = tab
    response = page.goto(path)
    assert response.status == 200
    assert title in page.locator("h1").first.inner_text()
    assert text.lower() in page.locator("main").inner_text().lower()
    assert page.evaluate("() => window.__xss === undefined")
    shot(page, f"tab-{name}")


def test_a_failure_is_retried(page: Any, r: redis.Redis, seeded: dict[str, int]) -> None:
    page.goto("/failed")
    oldest = page.locator('li.failure[data-index="0"]')
    assert "BadJob" in oldest.inner_text()
    oldest.locator("button.retry").click()
    page.wait_for_url("**/failed")
    assert "Retried failure 0: queued again on default" in page.locator(".flash").inner_text()
    oldest = page.locator('li.failure[data-index="0"]')
    assert "Retried at" in oldest.inner_text()
    assert oldest.locator("button.retry").count() == 0
    assert r.lrange("resque:queue:default", -1, -1) == [b'{"class":"BadJob","args":["x"]}']
    shot(page, "failure-retried")


def test_a_worker_is_paused_and_resumed(page: Any, r: redis.Redis, seeded: dict[str, int]) -> None:
    page.goto(f"/workers/{RUBY_WORKER}")
    controls = page.locator("#worker-controls")
    controls.get_by_role("button", name="Pause").click()
    page.wait_for_load_state()
    assert f"Sent pause to {RUBY_WORKER}" in page.locator(".flash").inner_text()
    controls.get_by_role("button", name="Resume").click()
    page.wait_for_load_state()
    assert f"Sent resume to {RUBY_WORKER}" in page.locator(".flash").inner_text()
    assert r.lrange(f"resque:compat:control:{RUBY_WORKER}", 0, -1) == [b"pause", b"resume"]
    shot(page, "worker-controlled")

    page.goto("/workers")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pause all workers").click()
    page.wait_for_load_state()
    assert r.get("resque:pause-all-workers") == b"true"
    assert "All workers are paused" in page.locator("main").inner_text()
    shot(page, "workers-paused")
    page.get_by_role("button", name="Resume all workers").click()
    page.wait_for_load_state()
    assert not r.exists("resque:pause-all-workers")


def test_a_declined_confirmation_changes_nothing(page: Any, r: redis.Redis, seeded: dict[str, int]) -> None:
    page.goto("/failed")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Clear failed jobs").click()
    assert r.llen("resque:failed") == 8


def test_overview_live_poll_shows_new_queues(page: Any, r: redis.Redis, seeded: dict[str, int]) -> None:
    page.goto("/overview")
    page.check("#live-poll")
    r.sadd("resque:queues", "arrived-later")
    r.rpush("resque:queue:arrived-later", b'{"class":"Late","args":[]}')
    page.locator("#poll-area").get_by_text("arrived-later").wait_for()
    page.uncheck("#live-poll")


def test_enqueue_from_the_form_then_look_up_its_status(page: Any, r: redis.Redis) -> None:
    page.goto("/enqueue")
    page.fill("input[name=queue]", "mail")
    page.fill("input[name=class]", "App\\Jobs\\SendMail")
    page.fill("textarea[name=args]", '[{"to": "a@b"}]')
    page.check("input[name=track]")
    page.get_by_role("button", name="Enqueue").click()
    page.wait_for_url("**/enqueue")
    message = page.locator(".flash").inner_text()
    assert "Enqueued App\\Jobs\\SendMail on mail (job id" in message
    job_id = message.split("(job id ", 1)[1].split(")", 1)[0]
    page.goto(f"/status?id={job_id}")
    assert "waiting" in page.locator("#status-table").inner_text().lower()
    assert r.llen("resque:queue:mail") == 1
