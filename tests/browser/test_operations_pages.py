"""Day-to-day operation in a real browser: worker state badges and the pause-all banner, forms
that keep their input, job ids that link their status, what Stop does to a pool member, the
Schedule page's next run, one time format, and every page at 420 px without sideways scrolling."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
import web_seed
from web_seed import IDLE_WORKER, RUBY_WORKER

from conftest import shot
from resque_compat import humantime
from resque_compat.protocol import WorkerState
from resque_compat.scheduler.recurring import RecurringSchedule

NARROW = {"width": 420, "height": 860}
PAGES = [
    "/overview", "/working", "/failed", "/queues", "/queues/default", "/workers", "/workers/all",
    f"/workers/{RUBY_WORKER}", "/stats/resque", "/stats/redis", "/stats/keys", "/schedule", "/delayed",
    "/status?id=df12a501d9e8117acd35c83c251356bd", "/enqueue",
]  # fmt: skip


@pytest.fixture
def seeded(r: redis.Redis) -> dict[str, int]:
    return web_seed.seed(r)


@pytest.fixture
def narrow(browser: Any, dashboard_url: str) -> Any:
    context = browser.new_context(base_url=dashboard_url, viewport=NARROW)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"browser errors: {errors}"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_holds_at_420_px(narrow: Any, seeded: dict[str, int], path: str) -> None:
    assert narrow.goto(path).status == 200
    overflow = narrow.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 420 px"
    name = path.strip("/").split("?")[0].replace("/", "-").replace(":", "_") or "root"
    shot(narrow, f"narrow-{name}")


def test_worker_states_show_as_badges_with_the_pause_all_banner(
    page: Any, r: redis.Redis, seeded: dict[str, int]
) -> None:
    r.set(f"resque:compat:state:{IDLE_WORKER}", WorkerState(paused=True).encode())
    page.goto("/workers/all")
    row = page.locator("#workers-table tr", has_text="vm:11371")
    assert row.locator(".badge.state-paused").inner_text().lower() == "paused"
    assert page.locator("#workers-table .badge.state-busy").count() >= 1
    assert page.locator("#pause-all-banner").count() == 0

    r.set("resque:pause-all-workers", "true")
    page.goto("/workers/all")
    assert "take no jobs" in page.locator("#pause-all-banner").inner_text()
    ruby_idle = page.locator("#workers-table tr", has_text="vm:11371")  # its own pause still shown as its own
    assert ruby_idle.locator(".badge").inner_text().lower() == "paused"
    page.goto(f"/workers/{IDLE_WORKER}")
    assert page.locator("#pause-all-banner").is_visible()
    assert "paused" in page.locator("table.detail").inner_text().lower()
    shot(page, "worker-paused-badge")

    r.set(f"resque:compat:state:{IDLE_WORKER}", WorkerState().encode())
    page.goto(f"/workers/{IDLE_WORKER}")
    assert "paused (all)" in page.locator("table.detail .badge").inner_text().lower()
    r.set(f"resque:compat:state:{IDLE_WORKER}", WorkerState(stopping=True).encode())
    page.goto(f"/workers/{IDLE_WORKER}")
    assert "shutting down" in page.locator("table.detail .badge").inner_text().lower()


def test_times_are_shown_in_one_format(page: Any, seeded: dict[str, int]) -> None:
    page.goto(f"/workers/{RUBY_WORKER}")
    text = page.locator("table.detail").inner_text()
    assert "2026-11-26T20:20:39Z" in text and "2026/11/26" not in text and "+0000" not in text
    page.goto("/failed")
    assert "2026-11-26T20:20:42Z" in page.locator("main").inner_text()


def test_enqueue_form_keeps_its_input_and_links_the_new_job(page: Any, r: redis.Redis) -> None:
    page.goto("/enqueue")
    page.fill("input[name=queue]", "mail")
    page.fill("input[name=class]", "App\\Jobs\\SendMail")
    page.fill("textarea[name=args]", '{"to": "a@b"}')  # not an array: refused
    page.check("input[name=track]")
    page.get_by_role("button", name="Enqueue").click()
    page.wait_for_load_state()
    assert "args must be a JSON array" in page.locator(".flash.error").inner_text()
    assert page.input_value("input[name=queue]") == "mail"
    assert page.input_value("input[name=class]") == "App\\Jobs\\SendMail"
    assert page.input_value("textarea[name=args]") == '{"to": "a@b"}'
    assert page.is_checked("input[name=track]")
    assert not r.exists("resque:queue:mail")
    shot(page, "enqueue-kept-input")

    page.fill("textarea[name=args]", '[{"to": "a@b"}]')
    page.get_by_role("button", name="Enqueue").click()
    page.wait_for_url("**/enqueue")
    link = page.locator("#flash-link")
    job_id = page.locator(".flash").inner_text().split("job id ", 1)[1].split(")")[0]
    assert link.get_attribute("href") == f"/status?id={job_id}"
    link.click()
    page.wait_for_url(f"**/status?id={job_id}")
    assert "waiting" in page.locator("#status-table").inner_text().lower()


def test_stop_on_a_pool_member_says_the_pool_restarts_it(page: Any, r: redis.Redis, seeded: dict[str, int]) -> None:
    r.set(f"resque:compat:state:{IDLE_WORKER}", WorkerState(supervisor=4242).encode())
    page.goto(f"/workers/{IDLE_WORKER}")
    note = page.locator("#pool-note").inner_text()
    assert "supervisor pid 4242" in note and "starts a replacement" in note and "QUIT to pid 4242" in note
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", answer)
    page.get_by_role("button", name="Stop (the pool restarts it)").click()
    assert asked and "will start a replacement" in asked[0]
    assert not r.exists(f"resque:compat:control:{IDLE_WORKER}")  # declined: nothing sent
    page.goto(f"/workers/{RUBY_WORKER}")
    assert page.locator("#pool-note").count() == 0
    assert page.get_by_role("button", name="Stop", exact=True).count() == 1


def test_schedule_page_shows_the_next_run(page: Any, r: redis.Redis, seeded: dict[str, int]) -> None:
    page.goto("/schedule")
    nightly = page.locator("#schedule-table tr", has_text="nightly").locator("td.next-run").inner_text()
    cron = RecurringSchedule.from_config("nightly", {"cron": "0 3 * * *", "queue": "q"})  # the machine's zone
    assert humantime.show(cron.compute_next(time.time())) in nightly
    tick = page.locator("#schedule-table tr", has_text="every minute").locator("td.next-run").inner_text()
    assert "2026-11-26T20:21:39Z" in tick and "last run + every" in tick  # no scheduler publishes: last + 1m
    r.hset("resque:compat:schedule_next", "tick", "4102444800")  # what a running master publishes
    page.goto("/schedule")
    tick = page.locator("#schedule-table tr", has_text="every minute").locator("td.next-run").inner_text()
    assert "2100-01-01T00:00:00Z" in tick and "last run" not in tick
    shot(page, "schedule-next-run")


def test_chart_times_use_the_pages_format(page: Any, r: redis.Redis) -> None:
    from history_seed import seed_history  # noqa: PLC0415 - the graphs' own seed

    seed_history(r)
    page.goto("/overview")
    page.wait_for_function("() => document.getElementById('history-chart').dataset.loaded")
    ticks = page.evaluate("() => document.getElementById('history-chart').uplot.axes[0]._values")
    assert ticks and all(len(t) == 5 and t[2] == ":" for t in ticks), ticks  # 24 h HH:MM, never 12:40pm
    box = page.locator("#history-chart .chart-plot .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    shown = page.locator("#history-chart .u-legend .u-series").first.locator(".u-value").inner_text()
    assert len(shown) == 20 and shown[10] == "T" and shown.endswith("Z"), shown
