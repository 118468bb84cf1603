"""Day-to-day operation against a real Redis: worker states everywhere, progress on a terminal,
one CLI grammar, one time format, the true next run of schedules."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from jobs.harness import registered, spawn_worker, stop
from skip_policy import skip_missing_package
from terminal import cli_env, in_terminal, piped
from waiting import wait_for

from resque_compat import Resque, humantime
from resque_compat.cli import hoist_global_flags, main
from resque_compat.protocol import WorkerState, timefmt
from resque_compat.scheduler import Scheduler
from resque_compat.scheduler.recurring import ScheduleStore

FAILURE = (
    b'{"failed_at":"2026/11/26 20:20:42 UTC","payload":{"class":"BadJob","args":["x"]},"exception":"KeyError",'
    b'"error":"\'user\'","backtrace":["app/jobs.py:12:in \'perform\'","lib/worker.py:40:in \'run\'"],'
    b'"worker":"vm:10947:default","queue":"default"}'
)


@pytest.fixture
def cli(redis_url: str) -> Any:
    runner = CliRunner()
    env: dict[str, str | None] = {"REDIS_URL": redis_url, "RESQUE_NAMESPACE": None, "PREFIX": None,
                                  "REDIS_BACKEND": None, "FAILURE_BACKEND": None}  # fmt: skip

    def run(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False, input=stdin)

    return run


@pytest.fixture(autouse=True)
def utc_display() -> Any:
    yield
    humantime.use_local(False)  # --local is process-wide; CliRunner shares the process


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("resque-compat: "), result.stderr
    return lines[0]


def worker_json(cli: Any) -> dict[str, dict[str, Any]]:
    return {w["id"]: w for w in json.loads(cli("workers", "--json").stdout)}


# -- point 2: states -----------------------------------------------------------------------


def test_a_real_worker_shows_paused_pause_all_and_shutting_down(
    redis_url: str, r: redis.Redis, cli: Any, tmp_path: Path
) -> None:
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1")
    try:
        wid = registered(r, proc.pid)
        resque = Resque(redis_url)
        wait_for(lambda: worker_json(cli).get(wid, {}).get("state") == "idle", what="idle")
        state = worker_json(cli)[wid]
        assert state["paused_by"] is None and "GoodJob" in state["classes"]  # it publishes its classes
        assert state["started"].endswith("Z") and isinstance(state["started_epoch"], int)

        resque.control(wid, "pause")
        wait_for(lambda: worker_json(cli)[wid]["state"] == "paused", what="paused by control")
        assert worker_json(cli)[wid]["paused_by"] == "worker"
        table = cli("workers").stdout
        assert f"{wid}  paused " in table
        resque.enqueue("default", "GoodJob", 1)
        report = json.loads(cli("doctor", "--json").stdout)
        paused = {c["name"]: c for c in report["checks"]}["paused_workers"]
        assert paused["level"] == "warn" and paused["blocking"] and not report["ok"]
        assert cli("doctor").exit_code == 1
        assert "paused workers while jobs wait in their queues" in cli("doctor").stdout

        resque.control(wid, "resume")
        wait_for(lambda: r.llen("resque:queue:default") == 0, what="the job to run after resume")
        wait_for(lambda: worker_json(cli)[wid]["state"] == "idle", what="idle again")

        proc.send_signal(signal.SIGUSR2)  # Ruby's own pause: now visible too
        wait_for(lambda: worker_json(cli)[wid]["state"] == "paused", what="paused by USR2")
        proc.send_signal(signal.SIGCONT)
        wait_for(lambda: worker_json(cli)[wid]["state"] == "idle", what="resumed by CONT")

        resque.pause_all()
        wait_for(lambda: worker_json(cli)[wid]["paused_by"] == "pause-all", what="pause-all")
        out = cli("workers").stdout
        assert "paused (all)" in out and "pause-all-workers is set" in out
        resque.resume_all()

        resque.enqueue("default", "Sleep", 30, "long")
        wait_for(lambda: worker_json(cli)[wid]["state"] == "busy", what="busy")
        resque.control(wid, "stop")
        wait_for(lambda: worker_json(cli)[wid]["state"] == "shutting-down", what="shutting down")
        assert "shutting down" in cli("workers").stdout
    finally:
        stop(proc, signal.SIGTERM)
    assert not r.keys("resque:compat:state:*")  # unregistering removes it


def test_pool_members_name_their_supervisor(redis_url: str, r: redis.Redis, cli: Any) -> None:
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.2", "--count", "2")
    try:

        def both_registered() -> list[dict[str, Any]] | None:
            """``workers`` lists registered workers only; a member publishes its state record
            (supervisor included) before it registers, so a published state is not yet listed."""
            members = list(worker_json(cli).values())
            return members if len(members) == 2 else None

        members = wait_for(both_registered, what="two pool members registered")
        assert [w["supervisor"] for w in members] == [proc.pid, proc.pid]
    finally:
        stop(proc, signal.SIGQUIT)


def test_doctor_names_workers_that_cannot_run_what_waits(redis_url: str, r: redis.Redis, cli: Any) -> None:
    """A worker started without --import: every job would fail with UnknownJobError."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "resque_compat", "--redis", redis_url, "work", "-q", "mail", "--interval", "0.1"],
        env=cli_env(redis_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wid = registered(r, proc.pid)
        wait_for(lambda: r.exists(f"resque:compat:state:{wid}"), what="state published")
        Resque(redis_url).pause_all()  # keep the job waiting while doctor looks
        Resque(redis_url).enqueue("mail", "App\\Jobs\\SendMail", {"to": "a@b"})
        result = cli("doctor", "--json")
        checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
        assert checks["worker_classes"]["level"] == "warn" and result.exit_code == 1
        [problem] = checks["worker_classes"]["details"]["workers"]
        assert problem["id"] == wid and problem["registered"] == 0
        assert problem["missing"] == {"mail": {"App\\Jobs\\SendMail": 1}}
        assert "--import" in checks["worker_classes"]["message"]
        assert checks["paused_workers"]["details"]["workers"][0]["paused_by"] == "pause-all"
    finally:
        stop(proc, signal.SIGQUIT)


def test_states_of_other_peers_and_unreadable_state_records(r: redis.Redis, cli: Any) -> None:
    ruby, php, ours = "vm:1:default", "vm:2:default", "py:3:default"
    r.sadd("resque:workers", ruby, php, ours)
    r.hset("resque:workers:heartbeat", ruby, timefmt.heartbeat())
    r.set(f"resque:compat:state:{ours}", b'{"paused":"yes"}')  # unreadable: state unknown, never a crash
    assert {w: s["state"] for w, s in worker_json(cli).items()} == {ruby: "idle", php: "idle", ours: "idle"}
    r.set("resque:pause-all-workers", "true")
    states = worker_json(cli)
    assert states[ruby]["state"] == "paused" and states[ruby]["paused_by"] == "pause-all"
    assert states[php]["state"] == "idle"  # php-resque (no heartbeat) ignores pause-all-workers
    r.set(f"resque:compat:state:{ours}", WorkerState(stopping=True).encode())
    assert worker_json(cli)[ours]["state"] == "shutting-down"


def test_metrics_count_workers_by_state(redis_url: str, r: redis.Redis) -> None:
    try:
        from resque_compat.metrics import resque_registry  # noqa: PLC0415 - optional extra
    except ImportError:
        skip_missing_package("prometheus-client", "the metrics extra is not installed")

    r.sadd("resque:workers", "h:1:q", "h:2:q", "h:3:q", "h:4:q")
    for wid in ("h:1:q", "h:2:q", "h:3:q", "h:4:q"):
        r.hset("resque:workers:heartbeat", wid, timefmt.heartbeat())
    r.set("resque:worker:h:1:q", b'{"queue":"q","run_at":"2026-11-26T20:20:39Z","payload":{"class":"A","args":[]}}')
    r.set("resque:compat:state:h:2:q", WorkerState(paused=True).encode())
    r.set("resque:compat:state:h:3:q", WorkerState(stopping=True).encode())
    registry = resque_registry(Resque(redis_url))
    counts = {
        s.labels["state"]: s.value for m in registry.collect() if m.name == "resque_workers" for s in m.samples
    }  # fmt: skip
    assert counts == {"busy": 1, "paused": 1, "shutting-down": 1, "idle": 1}


# -- point 3: progress ----------------------------------------------------------------------


def test_progress_bars_on_a_terminal_and_quiet_when_piped(redis_url: str, r: redis.Redis) -> None:
    env = cli_env(redis_url)
    r.rpush("resque:failed", *[FAILURE] * 40)
    code, shown = in_terminal(["failed", "retry", "--all"], env)
    assert code == 0 and "retrying failed" in shown and "100%" in shown and "retried 40 failed jobs" in shown
    done = piped(["failed", "retry", "--all"], env)
    assert done.stdout == "retried 40 failed jobs\n" and done.stderr == ""  # no bar, no label
    code, shown = in_terminal(["failed", "retry", "--all", "--json"], env)
    assert code == 0 and "%" not in shown and json.loads(shown.strip().splitlines()[-1]) == {"retried": 40}
    code, shown = in_terminal(["failed", "clear", "--yes"], env)
    assert code == 0 and "clearing failures" in shown and "cleared 40 failed jobs" in shown
    code, shown = in_terminal(["remove-queue", "default", "--yes"], env)
    assert code == 0 and "removing default" in shown and "removed queue default (120 jobs)" in shown
    for ts in range(1000, 1030):
        r.zadd("resque:delayed_queue_schedule", {str(ts): ts})
        r.rpush(f"resque:delayed:{ts}", b'{"class":"J","args":[],"queue":"q"}')
    code, shown = in_terminal(["delayed", "clear", "--yes"], env)
    assert code == 0 and "clearing delayed jobs" in shown and "100%" in shown and "cleared 30 timestamp(s)" in shown


def test_burst_drain_shows_a_bar_on_a_terminal(redis_url: str, r: redis.Redis) -> None:
    resque = Resque(redis_url)
    for i in range(25):
        resque.enqueue("default", "Noop", i)
    args = ["work", "-i", "jobs.worker_jobs", "-q", "default", "--burst", "--no-fork"]
    code, shown = in_terminal(args, cli_env(redis_url))
    assert code == 0 and "draining" in shown and "25/25" in shown, shown
    assert r.llen("resque:queue:default") == 0
    for i in range(5):
        resque.enqueue("default", "Noop", i)
    done = piped(args, cli_env(redis_url))
    assert done.returncode == 0 and "draining" not in done.stderr + done.stdout


# -- point 4: one grammar ------------------------------------------------------------------------


def test_json_and_local_go_before_or_after_the_subcommand(r: redis.Redis, cli: Any) -> None:
    r.rpush("resque:failed", FAILURE)
    before = json.loads(cli("--json", "failed", "list").stdout)
    after = json.loads(cli("failed", "list", "--json").stdout)
    assert before == after and after[0]["failed_at"] == "2026-11-26T20:20:42Z"
    assert after[0]["failed_at_epoch"] == 1795724442 and after[0]["record"]["failed_at"] == "2026/11/26 20:20:42 UTC"
    assert hoist_global_flags(["enqueue", "q", "X", "--", "--json"]) == ["enqueue", "q", "X", "--", "--json"]
    assert hoist_global_flags(["workers", "--local", "--json"]) == ["--local", "--json", "workers"]
    local = cli("failed", "list", "--local").stdout
    assert humantime.iso(humantime.parse("2026/11/26 20:20:42 UTC"), local=True) in local  # type: ignore[arg-type]


def test_local_times_use_the_zone_of_the_machine(redis_url: str, r: redis.Redis) -> None:
    r.rpush("resque:failed", FAILURE)
    paris = cli_env(redis_url, TZ="Europe/Paris")
    assert "2026-11-26T21:20:42+01:00" in piped(["failed", "list", "--local"], paris).stdout
    assert "2026-11-26T20:20:42Z" in piped(["failed", "list"], paris).stdout  # UTC unless asked


def test_destructive_commands_ask_on_a_terminal(redis_url: str, r: redis.Redis) -> None:
    env = cli_env(redis_url)
    r.rpush("resque:failed", FAILURE, FAILURE)
    code, shown = in_terminal(["failed", "clear"], env, answer="n")
    assert code == 1 and "Delete 2 failures from failed? [y/N]" in shown and "aborted" in shown
    assert r.llen("resque:failed") == 2
    code, shown = in_terminal(["failed", "clear"], env, answer="y")
    assert code == 0 and "cleared 2 failed jobs" in shown and not r.exists("resque:failed")
    Resque(redis_url).enqueue("default", "GoodJob", 1)
    code, shown = in_terminal(["remove-queue", "default"], env, answer="n")
    assert code == 1 and "Delete queue default and its 1 jobs?" in shown and r.llen("resque:queue:default") == 1
    code, shown = in_terminal(["remove-queue", "default", "-y"], env)
    assert code == 0 and "[y/N]" not in shown and not r.exists("resque:queue:default")
    r.zadd("resque:delayed_queue_schedule", {"1000": 1000})
    r.rpush("resque:delayed:1000", b'{"class":"J","args":[],"queue":"q"}')
    code, shown = in_terminal(["delayed", "clear"], env, answer="n")
    assert code == 1 and r.exists("resque:delayed:1000")


def test_scripts_are_never_asked(r: redis.Redis, cli: Any) -> None:
    r.rpush("resque:failed", FAILURE)
    r.rpush("resque:queue:default", b'{"class":"A","args":[]}')
    r.sadd("resque:queues", "default")
    assert cli("failed", "remove", "0").stdout == "removed failure 0 from failed\n"
    assert cli("remove-queue", "default").stdout == "removed queue default (1 jobs)\n"
    for command in (["remove-queue"], ["dequeue"], ["failed", "clear"], ["failed", "clear-retried"],
                    ["failed", "remove"], ["delayed", "clear"], ["delayed", "remove"], ["delayed", "remove-where"],
                    ["schedule", "remove"]):  # fmt: skip
        assert "--yes" in cli(*command, "--help").stdout, command


def test_reading_what_is_not_there_says_so(r: redis.Redis, cli: Any) -> None:
    r.sadd("resque:queues", "default")
    assert "no queue named 'defualt' (queues: default)" in one_line_error(cli("peek", "defualt"))
    assert cli("peek", "default").exit_code == 0  # known and empty: not an error
    assert "no queue named 'nope'" in one_line_error(cli("dequeue", "nope", "X"))
    assert "no status for job" in one_line_error(cli("status", "0123"))
    assert "no failure 0: failed is empty" in one_line_error(cli("failed", "show", "0"))
    r.rpush("resque:failed", FAILURE)
    assert "no failure 5 in failed (it holds 1: 0..0)" in one_line_error(cli("failed", "show", "5"))
    assert "no failure list 'nope'" in one_line_error(cli("failed", "show", "0", "--list", "nope"))
    assert "no delayed jobs at 1000" in one_line_error(cli("delayed", "show", "1000"))
    assert "no persistent schedule named 'x'" in one_line_error(cli("schedule", "remove", "x", "--yes"))


def test_failed_show_prints_one_failure_with_its_backtrace(r: redis.Redis, cli: Any) -> None:
    r.rpush("resque:failed", FAILURE, b"not json")
    out = cli("failed", "show", "0").stdout
    assert out.splitlines()[:2] == ["failure 0 in failed", "failed at  2026-11-26T20:20:42Z"]
    assert "exception  KeyError" in out and "error      'user'" in out and 'job        {"class":"BadJob"' in out
    assert out.splitlines()[-3:] == ["backtrace", "  app/jobs.py:12:in 'perform'", "  lib/worker.py:40:in 'run'"]
    shown = json.loads(cli("failed", "show", "0", "--json").stdout)
    assert shown["record"]["backtrace"][0] == "app/jobs.py:12:in 'perform'" and shown["failed_at_epoch"] == 1795724442
    broken = cli("failed", "show", "1")
    assert broken.exit_code == 0 and "not a failure record" in broken.stdout and "not json" in broken.stdout


def test_busy_web_port_is_one_line(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = piped(["web", "--port", str(port)], cli_env(redis_url), timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"resque-compat: cannot listen on 127.0.0.1:{port}: the port is in use\n"


def test_schedule_list_shows_the_schedulers_true_next_run(redis_url: str, r: redis.Redis, cli: Any) -> None:
    resque = Resque(redis_url)
    store = ScheduleStore(resque)
    cli("schedule", "add", "tick", "--every", "10m", "--class", "J", "--queue", "q")
    cli("schedule", "add", "nightly", "--cron", "0 3 * * * UTC", "--class", "J", "--queue", "q")
    rows = {s["name"]: s for s in json.loads(cli("schedule", "list", "--json").stdout)}
    assert rows["tick"]["next"] is None and rows["tick"]["next_from"] == "unknown"  # no scheduler ran it yet
    assert rows["nightly"]["next_from"] == "cron" and rows["nightly"]["next"].endswith("T03:00:00Z")
    assert "when a scheduler loads it" in cli("schedule", "list").stdout

    daemon = Scheduler(resque, interval=1)
    started = time.time()
    daemon.run_pass(now=started)  # loads: first run at +600
    daemon.run_pass(now=started + 600)  # fires: next at +1200 (the old list said now + 10 min: +600)
    assert r.llen("resque:queue:q") == 1
    assert store.published_next()["tick"] == started + 1200
    rows = {s["name"]: s for s in json.loads(cli("schedule", "list", "--json").stdout)}
    assert rows["tick"]["next_from"] == "scheduler"
    assert rows["tick"]["next_epoch"] == pytest.approx(started + 1200, abs=0.001)
    assert rows["tick"]["next"] == humantime.show(started + 1200)
    daemon.release()  # a stopped scheduler withdraws its times: readers fall back to last run + every
    assert not r.exists("resque:compat:schedule_next")
    rows = {s["name"]: s for s in json.loads(cli("schedule", "list", "--json").stdout)}
    assert rows["tick"]["next_from"] == "last+every"
    assert rows["tick"]["next_epoch"] == int(started + 600) + 600  # last_enqueued_at has whole seconds
    assert "(last run + every)" in cli("schedule", "list").stdout
