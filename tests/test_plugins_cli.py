"""``resque-compat retries``, ``statuses`` and ``status`` for resque-status records and progress."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jobs.plugin_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from cli_runner import one_line_error
from jobs.harness import run_burst

from resque_compat import Resque
from resque_compat.protocol import Keys

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def job_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_JOBS_REDIS", redis_url)


def test_retries_list_now_and_give_up(cli: Any, redis_url: str, r: redis.Redis) -> None:
    assert cli("retries").stdout == "(no pending retries)\n"
    resque = Resque(redis_url)
    resque.enqueue("default", "Mailer::Delayed", "n", 5)
    resque.enqueue("default", "Mailer::Delayed", "g", 5)
    run_burst(redis_url)
    listed = json.loads(cli("--json", "retries").stdout)
    assert {e["class"] for e in listed} == {"Mailer::Delayed"} and len(listed) == 2
    first = listed[0]
    assert first["attempt"] == 3 and first["runs"] == 3 and first["where"] == "delayed"
    assert first["error"] == "later" and first["next_run_at"].endswith("Z")
    text = cli("retries").stdout
    assert "3 of 3" in text and "NEXT RUN AT" in text
    now, give = Keys.retry_name("Mailer::Delayed", ["n", 5]), Keys.retry_name("Mailer::Delayed", ["g", 5])
    assert cli("retries", "now", now).stdout == f"queued {now} now\n"
    assert r.llen("resque:queue:default") == 1
    assert one_line_error(cli("retries", "now", now)) == f"resque-compat: no pending retry {now!r}"
    assert json.loads(cli("--json", "retries", "give-up", give).stdout) == {"ok": True, "gave_up": give}
    assert r.llen("resque:failed") == 1
    assert one_line_error(cli("retries", "give-up", "nope")) == "resque-compat: no pending retry 'nope'"


def test_status_reads_resque_status_records_and_kills(cli: Any, redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    uuid = resque.statuses.create("Reports::Build", {"steps": 4})
    assert cli("status", uuid).stdout == "queued 0%\n"
    resque.statuses.update(uuid, "Reports::Build()", {"status": "working", "num": 1, "total": 4}, "step 1")
    assert cli("status", uuid).stdout == "working 25% step 1\n"
    data = json.loads(cli("--json", "status", uuid).stdout)
    assert data["kind"] == "resque-status" and data["pct_complete"] == 25 and data["options"] == {"steps": 4}
    assert cli("status", uuid, "--kill").stdout.startswith(f"kill requested for {uuid}\n")
    assert r.smembers("resque:_kill") == {uuid.encode()}
    assert one_line_error(cli("status", "nope", "--kill")) == "resque-compat: no resque-status record for nope"
    assert one_line_error(cli("status", "nope")) == "resque-compat: no status for job nope (not tracked, or expired)"


def test_status_of_tracked_job_shows_its_progress(cli: Any, redis_url: str, r: redis.Redis) -> None:
    job_id = Resque(redis_url).enqueue("default", "Mailer::Tracked", {"name": "x"}, track=True)
    r.set("test:runs:x", 1)  # the next run succeeds
    run_burst(redis_url)
    assert cli("status", str(job_id)).stdout.splitlines()[0] == "4 complete 100% sent"


def test_statuses_list_and_clear(cli: Any, redis_url: str) -> None:
    resque = Resque(redis_url)
    done = resque.statuses.create("Reports::Build", {"steps": 1})
    waiting = resque.statuses.create("Reports::Build", {"steps": 9})
    resque.statuses.update(done, None, {"status": "completed"})
    listed = json.loads(cli("--json", "statuses").stdout)
    assert listed["total"] == 2 and {s["uuid"] for s in listed["statuses"]} == {done, waiting}
    assert "100%" in cli("statuses").stdout
    assert cli("statuses", "--clear", "completed").stdout == "removed 1 status record(s)\n"
    assert resque.statuses.ids() == [waiting]


def test_follow_draws_a_progress_bar_on_a_terminal(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    uuid = resque.statuses.create("Reports::Build", {"steps": 2})
    resque.statuses.update(uuid, None, {"status": "working", "num": 1, "total": 2}, "half way")
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    env.pop("RESQUE_NAMESPACE", None)
    main, tty = pty.openpty()
    cmd = [sys.executable, "-m", "resque_compat", "status", uuid, "--follow", "--interval", "0.05"]
    proc = subprocess.Popen(cmd, stdout=tty, stderr=tty, env=env)
    os.close(tty)
    seen = b""
    deadline = time.monotonic() + 30
    while b"half way" not in seen or b"50%" not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([main], [], [], 1)[0]:
            seen += os.read(main, 4096)
    resque.statuses.update(uuid, None, {"status": "completed", "message": "done"})
    assert proc.wait(30) == 0
    try:
        while chunk := os.read(main, 4096):
            seen += chunk
    except OSError:
        pass
    os.close(main)
    assert b"completed 100% done" in seen
