"""ActiveJob interop: Rails 6.1 (Debian's ruby-activejob) on Ruby Resque 3.0, both ways.

* Rails enqueues (``perform_later``, and ``set(wait:)`` through resque-scheduler) a job with
  every argument kind; resque-compat's worker runs the Python job registered under its
  ``job_class`` with the right Python values (``ajjobs.py``).
* resque-compat enqueues the same values (now, and delayed then moved by Ruby's scheduler); a
  Ruby Resque worker runs them through ActiveJob, and the Ruby job sees exactly what it sees
  for the job Rails enqueued itself (``arguments.inspect`` and every value's class).
* A job failing on our worker is a Resque failure Ruby requeues and runs again (``executions``
  1 on both sides: the failed payload keeps the count it was enqueued with); an attempt Rails'
  ``retry_on`` schedules after a failure on Ruby runs here as attempt 2.

Needs INTEROP_RUBY_RESQUE, Debian's ruby-activejob and ruby-globalid; the ``wait`` scenarios
also INTEROP_RUBY_RESQUE_SCHEDULER.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from decimal import Decimal
from typing import Any

import pytest
import redis
from ajjobs import exact_types
from harness import HERE, PEERS_DIR, RUBY, Peer, Peers, our_cli
from rails_kinds import EVERY_KIND_ARGS, EVERY_KIND_KWARGS
from skip_policy import peer_reason, skip_missing_peer
from waiting import wait_for

from resque_compat import Resque
from resque_compat.testing.redis_server import RedisServer

Q = "mail"


@pytest.fixture(scope="module")
def rails_peer(peer_table: dict[str, Peer]) -> Peer:
    """The ActiveJob driver (``peers/ruby/activejob.rb``) on the Ruby peer's load path."""
    ruby = peer_table["ruby"]
    if ruby.missing:
        return Peer("ruby-activejob", [], missing=ruby.missing)
    argv = [*ruby.argv[:-1], str(PEERS_DIR / "ruby" / "activejob.rb")]
    probe = subprocess.run(
        [*argv[:-1], "-e", "require 'active_job'; require 'global_id'"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return Peer(
            "ruby-activejob",
            argv,
            missing=peer_reason(RUBY, f"ActiveJob does not load (Debian: ruby-activejob): {probe.stderr[:200]}"),
        )
    return Peer("ruby-activejob", argv)


@pytest.fixture
def rails(rails_peer: Peer, peers: Peers) -> Peer:
    return rails_peer.require()


def need_scheduler() -> None:
    base = os.environ.get("INTEROP_RUBY_RESQUE_SCHEDULER")
    if not base or not os.path.isdir(os.path.join(base, "lib")):
        skip_missing_peer(
            "INTEROP_RUBY_RESQUE_SCHEDULER", "set it to a resque-scheduler checkout (set(wait:) needs it)"
        )


def results(r: redis.Redis, by: str) -> list[dict[str, Any]]:
    return [e for e in (json.loads(x) for x in r.lrange("resque:interop:results", 0, -1)) if e["by"] == by]


def our_work(peers: Peers, fork: bool = False) -> None:
    """Our worker drains the queue with ``ajjobs`` (REDIS_URL in its environment, where they record)."""
    peer = peers["python"].require()
    cmd = [*peer.argv, "work", "--queues", Q, "--burst", "--import", "ajjobs", *([] if fork else ["--no-fork"])]
    env = peer.environ(peers.server)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=HERE, check=False)
    assert proc.returncode == 0, proc.stderr[-600:]


def move_due(redis_server: RedisServer, r: redis.Redis) -> None:
    """Once every delayed timestamp is due, our scheduler moves them (one pass)."""
    stamps = [int(x) for x in r.zrange("resque:delayed_queue_schedule", 0, -1)]
    assert stamps, "nothing was delayed"
    wait_for(lambda: time.time() >= max(stamps) + 0.05, timeout=30, what="the delayed jobs to fall due")
    proc = our_cli(redis_server, "scheduler", "--once")
    assert proc.returncode == 0, proc.stderr[-600:]


@pytest.mark.parametrize("fork", [False, True])
def test_rails_jobs_run_on_our_worker(  # noqa: PLR0917 - pytest passes fixtures positionally
    rails: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis, fork: bool, request: pytest.FixtureRequest
) -> None:
    now = rails.run(redis_server, "kinds", Q)
    ids = [now["job_id"]]
    if os.environ.get("INTEROP_RUBY_RESQUE_SCHEDULER"):
        later = rails.run(redis_server, "kinds", Q, "1")
        assert r.zcard("resque:delayed_queue_schedule") == 1 and r.llen(f"resque:queue:{Q}") == 1
        move_due(redis_server, r)
        ids.append(later["job_id"])
    else:
        request.node.user_properties.append(("aspects", {"wait": "skipped: no INTEROP_RUBY_RESQUE_SCHEDULER"}))
    our_work(peers, fork=fork)
    ran = results(r, "python-activejob")
    assert [e["job_id"] for e in ran] == ids
    for entry in ran:
        assert entry["job_class"] == "AjEchoJob" and entry["executions"] == 1
        assert entry["args"] == exact_types(EVERY_KIND_ARGS)
        assert entry["kwargs"] == exact_types(EVERY_KIND_KWARGS)
        assert entry["resolved"] == ["Person#42"]
    assert r.llen("resque:failed") == 0


def test_our_jobs_run_on_rails(rails: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis) -> None:
    """Ruby's record of the job Rails enqueued is the reference for the ones we enqueue."""
    ruby_enqueued = rails.run(redis_server, "kinds", Q)
    args = [Decimal("12.345") if a == "12.345" else a for a in EVERY_KIND_ARGS]  # a Decimal goes as Rails 6.1 writes it
    ours = [Resque(redis_server.url).enqueue_active_job("AjEchoJob", *args, queue=Q, kwargs=EVERY_KIND_KWARGS)]
    cli = our_cli(
        redis_server, "enqueue", Q, "AjEchoJob", json.dumps([1, "two", {"k": "v"}]), "--active-job",
        "--kwargs", '{"lang": "en"}',
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    ours.append(cli.stdout.strip())
    delayed = False
    if os.environ.get("INTEROP_RUBY_RESQUE_SCHEDULER"):
        ours.append(
            Resque(redis_server.url).enqueue_active_job("AjEchoJob", *args, queue=Q, kwargs=EVERY_KIND_KWARGS, wait=1)
        )
        stamps = [int(x) for x in r.zrange("resque:delayed_queue_schedule", 0, -1)]
        wait_for(lambda: time.time() >= max(stamps) + 0.05, timeout=30, what="the delayed job to fall due")
        moved = peers.run("ruby", "scheduler_once")  # Ruby's resque-scheduler moves our delayed item
        assert moved["delayed_left"] == 0
        delayed = True
    out = rails.run(redis_server, "work", Q)
    assert out["failed"] == 0
    ran = {e["job_id"]: e for e in results(r, "ruby-activejob")}
    # Rails 6.1's own round trip already turns a BigDecimal into a String and a TimeWithZone into a
    # Time (no Time.zone in the worker): the reference is what Ruby's worker saw, not what was sent
    reference = ran[ruby_enqueued["job_id"]]
    for job_id in [ours[0], *ours[2:]]:
        assert ran[job_id]["inspect"] == reference["inspect"], job_id
        assert ran[job_id]["classes"] == reference["classes"]
        assert ran[job_id]["executions"] == 1
    assert ran[ours[1]]["inspect"] == '[1, "two", {"k"=>"v"}, {:lang=>"en"}]'
    assert ran[ours[1]]["classes"] == [
        "Integer",
        "String",
        {"Hash": {"String:k": "String"}},
        {"Hash": {"Symbol:lang": "String"}},
    ]
    assert len(ran) == 3 + delayed


def test_a_failure_here_is_retried_by_ruby(
    rails: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis
) -> None:
    job = rails.run(redis_server, "fail", Q)
    stored = r.lindex(f"resque:queue:{Q}", 0)
    our_work(peers)
    failures = peers.run("ruby", "failures")
    assert len(failures) == 1
    assert failures[0]["exception"] == "RuntimeError" and failures[0]["error"] == "interop failure"
    assert json.dumps(failures[0]["payload"], separators=(",", ":")).encode() == stored
    peers.run("ruby", "requeue", "0")
    assert r.lrange(f"resque:queue:{Q}", 0, -1) == [stored]
    rails.run(redis_server, "work", Q)
    ran = [(e["by"], e["job_id"], e["executions"]) for e in json.loads("[" + ",".join(
        x.decode() for x in r.lrange("resque:interop:results", 0, -1)) + "]")]  # fmt: skip
    assert ran == [("python-activejob", job["job_id"], 1), ("ruby-activejob", job["job_id"], 1)]
    assert r.llen("resque:failed") == 2


def test_unknown_serializer_fails_here_with_the_payload_whole(
    rails: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis
) -> None:
    rails.run(redis_server, "kinds", Q)
    item = json.loads(r.lpop(f"resque:queue:{Q}") or b"")
    item["args"][0]["arguments"].append({"_aj_serialized": "MoneySerializer", "value": 5})
    raw = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()
    r.rpush(f"resque:queue:{Q}", raw)
    our_work(peers)
    failed = r.lrange("resque:failed", 0, -1)
    assert len(failed) == 1 and b'"payload":' + raw + b"," in failed[0]
    record = json.loads(failed[0])
    assert record["exception"] == "ActiveJob::DeserializationError"
    assert record["error"] == "Serializer MoneySerializer is not known"


def test_an_attempt_rails_retries_runs_here_with_its_number(
    rails: Peer, peers: Peers, redis_server: RedisServer, r: redis.Redis
) -> None:
    """retry_on on Ruby enqueues the next attempt (executions 1 carried, through resque-scheduler);
    our worker runs it as attempt 2, as ActiveJob would."""
    need_scheduler()
    job = rails.run(redis_server, "flaky", Q)
    rails.run(redis_server, "work", Q)  # attempt 1 fails; retry_on schedules attempt 2 in 2 s
    move_due(redis_server, r)
    waiting = json.loads(r.lindex(f"resque:queue:{Q}", 0) or b"")
    assert waiting["args"][0]["executions"] == 1
    assert waiting["args"][0]["exception_executions"] == {"[RuntimeError]": 1}
    our_work(peers)
    ran = [
        (e["by"], e["job_id"], e["executions"]) for e in results(r, "ruby-activejob") + results(r, "python-activejob")
    ]
    assert ran == [("ruby-activejob", job["job_id"], 1), ("python-activejob", job["job_id"], 2)]
    assert r.llen("resque:failed") == 0
