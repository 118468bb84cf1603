"""A real ``resque-compat work`` process: signals, kill -9, pruning, reliable mode, pool,
blocking mode, control commands, process titles, and a Redis restart under load."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import jobs.worker_jobs  # noqa: F401 - registers the test jobs
import pytest
import redis
from jobs.harness import children_of, cmdline, job_log_lines, registered, spawn_worker, stop
from waiting import wait_for

from resque_compat import Resque
from resque_compat.protocol import Keys
from resque_compat.protocol.control import ControlCommand
from resque_compat.testing.redis_server import RedisServer

TITLE = re.compile(r"resque-[0-9]")


def failures(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]


def started(log: Path, tag: str) -> bool:
    return f"start {tag}" in job_log_lines(log)


def test_quit_finishes_the_job_and_titles_match_ruby(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log)
    wid = registered(r, proc.pid)
    assert wid == f"{os.uname().nodename}:{proc.pid}:default"
    assert TITLE.match(wait_for(lambda: "Waiting" in cmdline(proc.pid) and cmdline(proc.pid)))
    Resque(redis_url).enqueue("default", "Sleep", 1, "q")
    wait_for(lambda: started(log, "q"), what="job start")
    child = wait_for(lambda: children_of(proc.pid), what="child")[0]
    assert re.fullmatch(r"resque-\d+\.\d+\.\d+: Forked \d+ at \d+", cmdline(proc.pid))
    assert re.fullmatch(r"resque-\d+\.\d+\.\d+: Processing default since \d+ \[Sleep\] \(worker \d+\)", cmdline(child))
    proc.send_signal(signal.SIGQUIT)
    stop(proc)
    assert proc.returncode == 0
    assert job_log_lines(log)[-1] == "end q"
    assert r.get("resque:stat:processed") == b"1" and not r.exists("resque:failed")
    assert not r.smembers("resque:workers") and not r.hgetall("resque:workers:heartbeat")


@pytest.mark.parametrize("fork", [True, False])
def test_term_kills_the_job_records_it_and_exits(redis_url: str, r: redis.Redis, tmp_path: Path, fork: bool) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--fork" if fork else "--no-fork", job_log=log)
    wid = registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "Sleep", 30, "t")
    wait_for(lambda: started(log, "t"), what="job start")
    child = children_of(proc.pid)
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    [record] = failures(r)
    assert record["payload"] == {"class": "Sleep", "args": [30, "t"]}
    assert record["worker"] == wid and record["queue"] == "default"
    if fork:
        assert record["exception"] == "Resque::DirtyExit"
        assert record["error"] == f"Child process received unhandled signal pid {child[0]} SIGKILL (signal 9)"
        assert record["backtrace"] == []
    else:
        assert record["exception"] == "Resque::TermException" and record["error"] == "SIGTERM"
        assert any("worker_jobs.py" in line and "in 'sleep_job'" in line for line in record["backtrace"])  # type: ignore[attr-defined]
    assert r.get("resque:stat:processed") == b"1" and r.get("resque:stat:failed") == b"1"
    assert not r.smembers("resque:workers") and not r.keys("resque:worker:*")


@pytest.mark.parametrize("fork", [True, False])
def test_usr1_kills_the_job_and_keeps_working(redis_url: str, r: redis.Redis, tmp_path: Path, fork: bool) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--fork" if fork else "--no-fork", job_log=log)
    registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.enqueue("default", "Sleep", 30, "u")
    resque.enqueue("default", "GoodJob", "after")
    wait_for(lambda: started(log, "u"), what="job start")
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: "GoodJob ['after']" in job_log_lines(log), what="next job")
    stop(proc)
    [record] = failures(r)
    assert record["exception"] == ("Resque::DirtyExit" if fork else "Resque::TermException")
    assert r.get("resque:stat:processed") == b"2"


def _looked_since(resque: Resque, wid: str, word: str) -> None:
    """Send ``word`` and wait until the worker takes it: it has been round its loop since
    (the positive signal that a paused worker looked at its queues and left the job there)."""
    resque.control(wid, word)
    wait_for(lambda: not resque.redis.llen(resque.keys.control(wid)), what=f"the worker to take {word!r}")


def test_usr2_pauses_and_cont_resumes(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log)
    registered(r, proc.pid)
    proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: cmdline(proc.pid).endswith(": Paused"), what="paused title")
    resque = Resque(redis_url)
    resque.enqueue("default", "GoodJob", "p")
    _looked_since(resque, registered(r, proc.pid), "resume")  # a remote resume leaves a USR2 pause alone
    assert r.llen("resque:queue:default") == 1  # paused: nothing reserved
    proc.send_signal(signal.SIGCONT)
    wait_for(lambda: "GoodJob ['p']" in job_log_lines(log), what="job after CONT")
    stop(proc)


def test_kill9_of_the_child_is_a_dirty_exit_with_full_payload(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log)
    registered(r, proc.pid)
    item = b'{"class":"Sleep","args":[30,"k"],"id":"abc","extra":{"keep":["me"]}}'
    r.rpush("resque:queue:default", item)
    r.rpush("resque:queue:default", b'{"class":"GoodJob","args":["next"]}')
    wait_for(lambda: started(log, "k"), what="job start")
    child = children_of(proc.pid)[0]
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: "GoodJob ['next']" in job_log_lines(log), what="next job")
    stop(proc)
    raw = r.lindex("resque:failed", 0) or b""
    assert b'"payload":' + item + b',"exception":"Resque::DirtyExit"' in raw
    assert json.loads(raw)["error"] == f"Child process received unhandled signal pid {child} SIGKILL (signal 9)"


def test_kill9_of_the_worker_then_a_new_worker_prunes_it(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    fast = {"HEARTBEAT_INTERVAL": "1"}  # the prune lock lives one heartbeat interval, as in Ruby
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log, env=fast)
    old = registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "Sleep", 30, "dead")
    wait_for(lambda: started(log, "dead"), what="job start")
    child = children_of(proc.pid)
    proc.kill()
    proc.wait()
    for pid in child:
        os.kill(pid, signal.SIGKILL)
    assert old.encode() in r.smembers("resque:workers")
    wait_for(lambda: not r.exists("resque:pruning_dead_workers_in_progress"), what="prune lock expiry")
    new = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log, env=fast)
    registered(r, new.pid)
    wait_for(lambda: old.encode() not in r.smembers("resque:workers"), what="prune")
    stop(new)
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit" and record["error"] == "Job still being processed"
    assert record["payload"] == {"class": "Sleep", "args": [30, "dead"]} and record["worker"] == old
    assert not r.exists(f"resque:worker:{old}", f"resque:worker:{old}:started")


def test_a_child_outliving_its_killed_worker_finishes_the_job(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    """kill -9 of the forking worker alone: its child ends the job and records it, so the job is
    neither lost nor reported as a DirtyExit that in fact completed."""
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log)
    old = registered(r, proc.pid)
    job_id = Resque(redis_url).enqueue("default", "Sleep", 1, "orphan", track=True)
    wait_for(lambda: started(log, "orphan"), what="job start")
    child = children_of(proc.pid)
    proc.kill()
    proc.wait()
    assert child and r.exists(f"resque:worker:{old}")
    wait_for(lambda: not r.exists(f"resque:worker:{old}"), what="the orphaned child to finish the job")
    assert r.llen("resque:failed") == 0
    assert r.get("resque:stat:processed") == b"1"
    status = json.loads(r.get(f"resque:job:{job_id}:status") or b"{}")
    assert status["status"] == 4 and r.ttl(f"resque:job:{job_id}:status") > 0


def test_reliable_mode_puts_the_job_back(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    fast = {"HEARTBEAT_INTERVAL": "1"}
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--reliable", job_log=log, env=fast)
    old = registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "Sleep", 1, "rel")
    wait_for(lambda: started(log, "rel"), what="job start")
    assert r.lrange(f"resque:compat:inflight:{old}", 0, -1) == [b'{"class":"Sleep","args":[1,"rel"]}']
    child = children_of(proc.pid)
    proc.kill()
    proc.wait()
    for pid in child:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not r.exists("resque:pruning_dead_workers_in_progress"), what="prune lock expiry")
    new = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "--reliable", job_log=log, env=fast)
    registered(r, new.pid)
    wait_for(lambda: job_log_lines(log).count("start rel") == 2, what="job to run again")
    wait_for(lambda: "end rel" in job_log_lines(log), what="job to end")
    stop(new)
    assert not r.exists("resque:failed")
    assert not r.keys("resque:compat:inflight:*")
    assert r.get("resque:stat:processed") == b"1"


def test_blocking_mode(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "high,default", "--blocking", "--interval", "5", "--no-fork", job_log=log)
    registered(r, proc.pid)
    Resque(redis_url).enqueue("default", "GoodJob", "blocked")
    wait_for(lambda: "GoodJob ['blocked']" in job_log_lines(log), what="job")
    stop(proc)  # QUIT is seen within a second even though INTERVAL is 5
    assert proc.returncode == 0 and r.get("resque:stat:processed") == b"1"


def test_control_commands(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", job_log=log)
    wid = registered(r, proc.pid)
    resque = Resque(redis_url)
    resque.control(wid, "pause")
    wait_for(lambda: cmdline(proc.pid).endswith(": Paused"), what="paused")
    resque.enqueue("default", "Sleep", 30, "c")
    _looked_since(resque, wid, "pause")  # paused already: a second pause changes nothing
    assert r.llen("resque:queue:default") == 1
    resque.control(wid, "resume")
    wait_for(lambda: started(log, "c"), what="job start")
    resque.control(wid, "kill-job")
    wait_for(lambda: r.llen("resque:failed") == 1, what="killed job")
    resque.control(wid, "stop")
    proc.wait(20)
    assert proc.returncode == 0 and not r.smembers("resque:workers")


def test_unknown_control_words_are_logged_and_ignored(redis_url: str, r: redis.Redis) -> None:
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1")
    wid = registered(r, proc.pid)
    r.rpush(Keys("resque").control(wid), b"explode", b"\xff\xfe", ControlCommand.STOP.value)
    out = stop(proc, sig=0)  # the stop after them still ends it
    assert proc.returncode == 0 and not r.smembers("resque:workers"), out
    assert "ignoring unknown control command 'explode'" in out
    assert out.count("ignoring unknown control command") == 2


def test_pool_restarts_a_killed_child(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    pidfile = tmp_path / "pool.pid"
    proc = spawn_worker(redis_url, "-q", "default", "--interval", "0.1", "-c", "2", "--pidfile", str(pidfile))
    ids = wait_for(lambda: len(r.smembers("resque:workers")) == 2 and r.smembers("resque:workers"), what="2 workers")
    assert pidfile.read_text().strip() == str(proc.pid)
    victim = int(sorted(ids)[0].decode().split(":")[1])
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(r.smembers("resque:workers") - {sorted(ids)[0]}) == 2, what="a replacement")
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    # the killed child's registration is left for pruning, as with Ruby; the live ones are gone
    assert r.smembers("resque:workers") <= {sorted(ids)[0]}
    assert not pidfile.exists()


def test_redis_restart_mid_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log"
    server = RedisServer(None, "--appendonly", "yes", "--appendfsync", "always")
    with server:
        r = server.client()
        n = 150
        Resque(server.url).enqueue_many("default", [("Sleep", [0.01, str(i)]) for i in range(n)])
        proc = spawn_worker(server.url, "-q", "default", "--interval", "0.1", "--no-fork", job_log=log)
        wait_for(lambda: sum(1 for line in job_log_lines(log) if line.startswith("end")) >= 30, what="progress")
        server.kill()
        time.sleep(0.5)
        server.start()
        r = server.client()
        wait_for(lambda: r.get("resque:stat:processed") == str(n).encode(), 60, "every job processed")
        out = stop(proc)
        assert "Redis connection lost" in out and "Redis is back" in out
        ends = [line for line in job_log_lines(log) if line.startswith("end")]
        assert sorted(ends) == sorted(f"end {i}" for i in range(n))  # each ran exactly once
        assert r.get("resque:stat:processed") == str(n).encode()
        assert not r.exists("resque:failed")


def test_pool_in_burst_mode_drains_and_exits(redis_url: str, r: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "log"
    Resque(redis_url).enqueue_many("default", [("GoodJob", [i]) for i in range(20)])
    proc = spawn_worker(redis_url, "-q", "default", "-c", "2", "--burst", job_log=log)
    out = stop(proc, sig=0)
    assert proc.returncode == 0, out
    assert sorted(job_log_lines(log)) == sorted(["before_first_fork"] * 2 + [f"GoodJob [{i}]" for i in range(20)])
    assert r.get("resque:stat:processed") == b"20" and not r.smembers("resque:workers")


def test_bad_command_line_is_a_one_line_error(redis_url: str) -> None:
    proc = spawn_worker(redis_url, "--interval", "1")
    out = stop(proc, sig=0)
    assert proc.returncode == 2
    assert out.strip().splitlines()[-1] == (
        "resque-compat: no queues given: use --queues q1,q2 or set QUEUE (e.g. QUEUE=critical,default)"
    )
