"""Hostile hosts and odd records (issue 12) in a real browser: a rebound name is refused, a
failure list of any length is retried with its progress shown, huge records stay small on the
page with the whole record one click away."""

from __future__ import annotations

import json
from typing import Any

import redis
from skip_policy import skip_missing_package

from conftest import CHROMIUM, CHROMIUM_ARGS, _missing_chromium, shot

NS = "resque:"


def test_a_rebound_host_name_gets_nothing(dashboard_url: str, r: redis.Redis) -> None:
    """attacker.example resolves to 127.0.0.1 (as DNS rebinding makes it): the dashboard refuses it.
    A browser of its own (first in this module, before the shared one starts): the name mapping is
    a launch flag."""
    try:
        from playwright import sync_api  # noqa: PLC0415 - the dev extra; a skip names it when absent
    except ImportError:
        skip_missing_package("playwright", "the playwright Python package is not installed (the dev extra)")
    problem = _missing_chromium()
    if problem:
        skip_missing_package("chromium", problem)
    r.sadd(NS + "queues", "victim")
    r.rpush(NS + "queue:victim", b'{"class":"Secret","args":["token"]}')
    port = dashboard_url.rsplit(":", 1)[1]
    with sync_api.sync_playwright() as playwright:
        rebound = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP attacker.example 127.0.0.1"]
        )
        try:
            tab = rebound.new_page()
            for path in ("/overview", "/api/queues", "/queues/victim"):
                response = tab.goto(f"http://attacker.example:{port}{path}")
                assert response is not None and response.status == 421, path
                assert "Secret" not in tab.content() and "victim" not in tab.content()
            ok = tab.goto(f"http://localhost:{port}/api/queues")
            assert ok is not None and ok.status == 200 and "victim" in tab.content()
        finally:
            rebound.close()
    assert r.llen(NS + "queue:victim") == 1


def test_retry_all_shows_its_progress_until_done(page: Any, r: redis.Redis, monkeypatch: Any) -> None:
    from resque_compat import failures  # noqa: PLC0415 - the dashboard runs in this process
    from resque_compat.web import bulk  # noqa: PLC0415

    monkeypatch.setattr(failures, "BULK_BATCH", 50)
    monkeypatch.setattr(bulk, "_tasks", {})  # this run is shown on no other test's page
    monkeypatch.setattr(bulk, "INLINE_LIMIT", 10)
    record = {"failed_at": "2026/11/26 20:20:42 UTC", "exception": "E", "error": "e", "backtrace": [],
              "worker": "w", "queue": "q"}  # fmt: skip
    r.rpush(NS + "failed", *[json.dumps({**record, "payload": {"class": "A", "args": [i]}}) for i in range(3000)])
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/failed")
    page.get_by_role("button", name="Retry all").click()
    page.wait_for_url("**/failed**")
    assert "Retry all" in page.locator("p.task").inner_text()
    page.wait_for_function(
        "() => document.querySelector('p.task') && document.querySelector('p.task').innerText.includes('done')",
        timeout=120_000,
    )
    shown = page.locator("p.task").inner_text()
    assert "3000 of 3000" in shown and "3000 retried" in shown, shown
    assert r.llen(NS + "queue:q") == 3000
    shot(page, "retry-all-progress")


def test_a_huge_record_is_cut_with_the_whole_record_a_click_away(page: Any, r: redis.Redis) -> None:
    big = "y" * 3_000_000
    record = {"failed_at": "2026/11/26 20:20:42 UTC", "payload": {"class": "Big", "args": [big]}, "exception": "E",
              "error": big, "backtrace": [], "worker": "w", "queue": "q"}  # fmt: skip
    r.rpush(NS + "failed", json.dumps(record))
    response = page.goto("/failed")
    assert response.status == 200 and len(response.body()) < 200_000
    link = page.get_by_role("link", name="whole record").first
    assert link.get_attribute("href") == "/raw/failed?index=0"
    whole = page.request.get("/raw/failed?index=0")  # text, not a page: fetched, not opened
    assert whole.status == 200 and json.loads(whole.body())["error"] == big
