"""Browser fixtures: Debian's Chromium driven by Playwright, the dashboard served by uvicorn.

Chromium comes from apt (installed here when missing and we are root, as in CI); Playwright
never downloads a browser of its own. Without either, the browser tests skip and say why.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from skip_policy import skip_missing_package
from waiting import wait_for

from resque_compat import Resque
from resque_compat.testing.redis_server import RedisServer, free_port
from resque_compat.web import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/web_seed.py

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"


def _missing_chromium() -> str | None:
    """Why the browser cannot run, or None (``./dev test`` installs Debian's chromium)."""
    if Path(CHROMIUM).exists():
        return None
    return f"{CHROMIUM} is missing (Debian: chromium; or set CHROMIUM_PATH)"


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop: end it with the module
def browser() -> Iterator[Any]:
    try:
        from playwright import sync_api  # noqa: PLC0415 - the dev extra; a skip names it when absent
    except ImportError:
        skip_missing_package("playwright", "the playwright Python package is not installed (the dev extra)")
    problem = _missing_chromium()
    if problem:
        skip_missing_package("chromium", problem)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def dashboard_url(redis_server: RedisServer) -> Iterator[str]:
    """The dashboard on a free loopback port, serving the session Redis (emptied per test)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(Resque(redis_server.url, namespace="resque"), poll_seconds=1),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        return server.started

    wait_for(started, what="the dashboard to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser: Any, dashboard_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page; fails the test on any JavaScript error or CSP violation."""
    context = browser.new_context(base_url=dashboard_url, viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield tab
    context.close()
    assert not errors, f"browser errors: {errors}"


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
