"""Redraw the README's dashboard screenshots (docs/screenshot-*.png) in Debian's Chromium.

A private redis-server holds a small mixed deployment written with the peers' shapes: a Ruby
worker and a php-resque worker busy, a paused resque-compat worker, queued, failed, delayed and
recurring jobs. Needs the web and dev extras and /usr/bin/chromium (or $CHROMIUM_PATH).

    python tools/screenshots.py
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from resque_compat import Resque
from resque_compat.history import Sampler
from resque_compat.protocol import WorkerState, encode_json, timefmt
from resque_compat.testing.redis_server import RedisServer, free_port
from resque_compat.web import create_app

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HOST = "app1"


def seed(resque: Resque) -> None:
    r, now = resque.redis, time.time()
    for i in range(3):
        resque.enqueue("default", "Mailer::Welcome", 100 + i)
    resque.enqueue("mail", "App\\Jobs\\SendInvoice", {"invoice": 81}, track=True)
    resque.enqueue("reports", "reports.nightly", "2026-11")
    workers = {
        f"{HOST}:4101:default,mail": ("Mailer::Welcome", [42], "default", None),
        f"{HOST}:4102:mail": ("App\\Jobs\\SendInvoice", [{"invoice": 80}], "mail", None),
        f"{HOST}:4103:reports": (None, None, None, WorkerState(paused=True, classes=["reports.nightly"])),
        f"{HOST}:4104:*": (None, None, None, WorkerState(classes=["Mailer::Welcome", "reports.nightly"])),
    }
    for i, (wid, (cls, args, queue, state)) in enumerate(workers.items()):
        r.sadd(resque.keys.workers, wid)
        r.set(resque.keys.worker_started(wid), timefmt.started(now - 3600 * (i + 1)))
        if i != 1:  # php-resque writes no heartbeat
            r.hset(resque.keys.heartbeat, wid, timefmt.heartbeat(now - 20))
        if cls is not None:
            run_at = timefmt.run_at(now - 40 * (i + 1))
            job = {"queue": queue, "run_at": run_at, "payload": {"class": cls, "args": args}}
            r.set(resque.keys.worker(wid), encode_json(job))
        if state is not None:
            r.set(resque.keys.worker_state(wid), state.encode(), ex=600)
        r.set(resque.keys.stat("processed", wid), 120 * (i + 1))
    r.set(resque.keys.stat("processed"), 1480)
    r.set(resque.keys.stat("failed"), 3)
    for n, (cls, exc, msg) in enumerate([
        ("Mailer::Welcome", "Net::ReadTimeout", "Net::ReadTimeout with #<TCPSocket:(closed)>"),
        ("App\\Jobs\\SendInvoice", "RuntimeException", "SMTP server refused the connection"),
    ]):  # fmt: skip
        failure = {
            "failed_at": timefmt.failed_at(now - 900 * (n + 1)), "payload": {"class": cls, "args": [7]},
            "exception": exc, "error": msg, "backtrace": ["app/jobs.rb:12:in `perform'"],
            "worker": f"{HOST}:4101:default,mail", "queue": "default",
        }  # fmt: skip
        r.rpush(resque.keys.failed, encode_json(failure))
    r.hset(
        resque.keys.persistent_schedules,
        "nightly-report",
        '{"class":"reports.nightly","cron":"0 3 * * *","queue":"reports","description":"monthly totals"}',
    )
    r.zadd(resque.keys.delayed_schedule, {str(int(now) + 3600): int(now) + 3600})
    r.rpush(resque.keys.delayed(int(now) + 3600), '{"class":"Mailer::Reminder","args":[42],"queue":"default"}')


def history(resque: Resque) -> None:
    """An hour of per-minute samples, as the workers' sampler would have recorded them."""
    r, now = resque.redis, time.time()
    sampler = Sampler(r, resque.keys, enabled=True)
    processed, failed = 1480 - 60 * 24, 0
    for minute in range(60, 0, -1):
        processed += round(20 + 6 * math.sin(minute / 6))
        failed += 1 if minute % 17 == 0 else 0
        r.set(resque.keys.stat("processed"), processed)
        r.set(resque.keys.stat("failed"), failed)
        backlog = round(5 + 4 * math.sin(minute / 9))
        r.rpush(resque.keys.queue("default"), *[b'{"class":"Mailer::Welcome","args":[1]}'] * backlog)
        sampler.record(now - 60 * minute)
        r.ltrim(resque.keys.queue("default"), 0, 2)
    r.set(resque.keys.stat("processed"), 1480)
    r.set(resque.keys.stat("failed"), 3)


def main() -> None:
    with RedisServer() as server:
        resque = Resque(server.url)
        seed(resque)
        history(resque)
        port = free_port()
        app = create_app(resque, poll_seconds=2)
        uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        while not uv.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            wide = browser.new_page(viewport={"width": 1100, "height": 700})
            for name, path in (("overview", "/overview"), ("workers", "/workers")):
                wide.goto(base + path)
                wide.screenshot(path=str(DOCS / f"screenshot-{name}.png"), full_page=True)
            narrow = browser.new_page(viewport={"width": 420, "height": 860})
            narrow.goto(base + "/workers")
            narrow.screenshot(path=str(DOCS / "screenshot-narrow.png"), full_page=True)
            browser.close()
        uv.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
