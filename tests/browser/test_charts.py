"""The graphs in Chromium on a seeded history: the points each chart draws are read back from
the page (uPlot's data, not pixels) and compared with what the API computes from Redis."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from history_seed import FAILING_SINCE, GAP, seed_history

from conftest import shot
from resque_compat import Resque
from resque_compat.web.history import history

LOADED = "() => [...document.querySelectorAll('figure.chart:not([data-chart=live])')].every(f => f.dataset.loaded)"


def drawn(page: Any, chart_id: str) -> dict[str, Any]:
    """What the chart holds: uPlot's aligned data, its series labels, the JSON it drew."""
    return page.evaluate(
        """id => { const fig = document.getElementById(id);
                   return { data: fig.uplot.data.map(a => Array.from(a)),
                            labels: fig.uplot.series.slice(1).map(s => s.label),
                            width: fig.getBoundingClientRect().right } }""",
        chart_id,
    )


@pytest.fixture
def seeded_history(r: redis.Redis) -> list[float]:
    return seed_history(r)


def test_overview_draws_the_seeded_hour(page: Any, r: redis.Redis, seeded_history: list[float]) -> None:
    page.goto("/overview")
    page.wait_for_function(LOADED)
    chart = drawn(page, "history-chart")
    x, processed, failed, queued = chart["data"]
    assert chart["labels"] == ["processed/min", "failed/min", "queued"]
    expected = history(Resque(r), "hour", now=x[-1] + 1)
    assert x == expected["t"] and len(x) == 60
    assert processed == expected["processed"] and failed == expected["failed"] and queued == expected["queued"]
    end = int(max(seeded_history) // 60 * 60)  # the seed's last minute (the page may be a minute later)
    by_time = dict(zip(x, processed, strict=True))
    for ago in GAP:  # no sample: a gap, and the minute after it has no rate either
        assert by_time[end - ago * 60] is None
    assert by_time[end - (min(GAP) - 1) * 60] is None
    # the seed processes at least 15 a minute whatever the hour (its rate follows a slow sine)
    assert all(by_time[end - ago * 60] >= 15 for ago in range(min(GAP) - 1))
    seeded_in_range = sum(1 for t in seeded_history if t // 60 * 60 in by_time)
    assert sum(1 for v in queued if v is not None) == seeded_in_range >= 60 - len(GAP) - 2
    shot(page, "chart-overview")


def test_a_queue_page_draws_its_depth(page: Any, r: redis.Redis, seeded_history: list[float]) -> None:
    page.goto("/queues/default")
    page.wait_for_function(LOADED)
    x, depth = drawn(page, "queue-chart")["data"]
    assert depth == history(Resque(r), "hour", "default", now=x[-1] + 1)["queues"]["default"]
    assert max(v for v in depth if v is not None) == 60  # the backlog the seed built half an hour ago
    page.locator("#queue-chart button[data-range=week]").click()
    page.wait_for_function("() => document.getElementById('queue-chart').dataset.loaded === 'week'")
    x, depth = drawn(page, "queue-chart")["data"]
    assert len(x) == 168 and depth == history(Resque(r), "week", "default", now=x[-1] + 1)["queues"]["default"]


def test_failed_page_draws_failures_per_class(page: Any, r: redis.Redis, seeded_history: list[float]) -> None:
    page.goto("/failed")
    page.wait_for_function(LOADED)
    chart = drawn(page, "classes-chart")
    expected = history(Resque(r), "day", now=chart["data"][0][-1] + 1)
    assert [label.split(" (")[0] for label in chart["labels"]] == list(expected["classes"])
    assert "Mailer::Bounce" in expected["classes"]
    assert chart["data"][1:] == list(expected["classes"].values())
    bounce = chart["data"][1 + list(expected["classes"]).index("Mailer::Bounce")]
    started = next(i for i, v in enumerate(bounce) if v)  # which class started failing, and when
    assert chart["data"][0][-1] - chart["data"][0][started] <= (FAILING_SINCE + 10) * 60
    shot(page, "chart-failed")


def test_charts_fit_a_narrow_screen(browser: Any, dashboard_url: str, seeded_history: list[float]) -> None:
    context = browser.new_context(base_url=dashboard_url, viewport={"width": 420, "height": 900})
    page = context.new_page()
    try:
        for path, chart_id in (("/overview", "history-chart"), ("/queues/default", "queue-chart")):
            page.goto(path)
            page.wait_for_function(LOADED)
            assert drawn(page, chart_id)["width"] <= 420
        shot(page, "chart-narrow")
    finally:
        context.close()


def test_live_graph_follows_the_poll_and_stays_bounded(page: Any, r: redis.Redis) -> None:
    page.add_init_script("""(() => { const set = window.setInterval;  // a sped-up poll: 1 s -> 20 ms
        window.setInterval = (fn, ms, ...rest) => set(fn, Math.max(10, ms / 50), ...rest); })()""")
    page.goto("/overview")
    assert "paused" in page.locator("#live-chart .chart-state").inner_text()
    page.check("#live-poll")
    page.wait_for_function("() => document.getElementById('live-chart').uplot.data[0].length >= 3")
    r.incrby("resque:stat:processed", 500)
    page.wait_for_function("() => document.getElementById('live-chart').uplot.data[1].some(v => v > 0)")
    page.wait_for_function("() => document.getElementById('live-chart').uplot.data[0].length >= 300", timeout=120_000)
    points = page.evaluate("() => document.getElementById('live-chart').uplot.data[0].length")
    assert points == 300
    page.uncheck("#live-poll")
    assert "paused" in page.locator("#live-chart .chart-state").inner_text()
    page.wait_for_timeout(300)
    first = page.evaluate("() => document.getElementById('live-chart').uplot.data[0][0]")
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.getElementById('live-chart').uplot.data[0][0]") == first  # paused
