"""Several schedulers (real processes) racing on the same delayed items: each moves exactly once."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time

import redis
from waiting import wait_for

from resque_compat import Resque
from resque_compat.protocol import decode_json

N_ITEMS = 5000
#: the dead master's lock TTL: longer than a loaded machine takes to start the next scheduler
LOCK_SECONDS = 8
N_TIMESTAMPS = 50

RACER = """
import sys, redis
from resque_compat.protocol import Keys
from resque_compat.scheduler import Mover
client = redis.Redis.from_url(sys.argv[1])
mover = Mover(client, Keys("resque"), batch=int(sys.argv[2]))
sys.stdin.readline()  # start together
total = 0
while True:
    result = mover.move_due()
    total += result.moved
    if client.zcard("resque:delayed_queue_schedule") == 0:
        break
print(total)
"""


def seed(r: redis.Redis) -> None:
    """5,000 due items over 50 timestamps, in Ruby's, php-resque's and node-resque's shapes."""
    pipe = r.pipeline(transaction=False)
    for i in range(N_ITEMS):
        ts = 1000 + i % N_TIMESTAMPS
        kind = i % 3
        if kind == 0:
            item = f'{{"class":"J","args":[{i}],"queue":"q"}}'
            pipe.sadd(f"resque:timestamps:{item}", f"delayed:{ts}")
        elif kind == 1:
            item = f'{{"class":"J","args":[{{"n":{i}}}],"queue":"q"}}'
        else:
            item = f'{{"class":"J","queue":"q","args":[{i}]}}'
            pipe.sadd(f"resque:timestamps:{item}", f"delayed:{ts}")
        pipe.rpush(f"resque:delayed:{ts}", item)
        pipe.zadd("resque:delayed_queue_schedule", {str(ts): ts})
    pipe.execute()


def job_numbers(r: redis.Redis) -> collections.Counter[int]:
    seen: collections.Counter[int] = collections.Counter()
    for raw in r.lrange("resque:queue:q", 0, -1):
        arg = decode_json(raw)["args"][0]
        seen[arg["n"] if isinstance(arg, dict) else arg] += 1
    return seen


def assert_exactly_once(r: redis.Redis) -> None:
    seen = job_numbers(r)
    doubled = [n for n, c in seen.items() if c > 1]
    assert not doubled, f"{len(doubled)} items enqueued twice, e.g. {doubled[:5]}"
    assert sorted(seen) == list(range(N_ITEMS)), f"{N_ITEMS - len(seen)} items lost"
    assert r.zcard("resque:delayed_queue_schedule") == 0
    assert r.keys("resque:delayed:1*") == []
    assert r.keys("resque:timestamps:*") == []


def php_style_racer(url: str, stop: threading.Event, moved: list[int]) -> None:
    """php-resque-scheduler's loop: ZRANGEBYSCORE, LPOP one item at a time, enqueue it."""
    client = redis.Redis.from_url(url)
    while not stop.is_set():
        due = client.zrangebyscore("resque:delayed_queue_schedule", "-inf", int(time.time()), start=0, num=1)
        if not due:
            return
        key = b"resque:delayed:" + due[0]
        while (item := client.lpop(key)) is not None:
            payload = decode_json(item)
            client.rpush("resque:queue:q", f'{{"class":"J","args":{_args(payload["args"])}}}')
            moved[0] += 1
        client.zrem("resque:delayed_queue_schedule", due[0])


def _args(args: object) -> str:
    import json  # noqa: PLC0415

    return json.dumps(args, separators=(",", ":"))


def test_lockless_movers_and_a_php_style_peer_never_lose_or_double(redis_url: str, r: redis.Redis) -> None:
    """The move script's atomicity alone (no master lock) keeps every item exactly once."""
    seed(r)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, redis_url, str(batch)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for batch in (1, 7, 100, 100)
    ]
    stop = threading.Event()
    php_moved = [0]
    php = threading.Thread(target=php_style_racer, args=(redis_url, stop, php_moved))
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    php.start()
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    stop.set()
    php.join(30)
    assert all(proc.returncode == 0 for proc in procs)
    counts = [int(out.strip()) for out in outputs]
    # the php-style racer leaves timestamps: sets of items it popped (as php-resque does); the
    # others are all removed by our movers
    for key in r.keys("resque:timestamps:*"):
        r.delete(key)
    assert sum(counts) + php_moved[0] == N_ITEMS
    assert_exactly_once(r)


def test_scheduler_daemons_racing_lead_one_at_a_time(redis_url: str, r: redis.Redis) -> None:
    """Three real ``resque-compat scheduler`` processes: one leads, items move exactly once."""
    seed(r)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "resque_compat",
                "--redis",
                redis_url,
                "scheduler",
                "--interval",
                "0.1",
                "--batch",
                "50",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    first_lines = []
    try:
        # each has its signal handlers in place once it logs "starting"; later reads go through
        # the same buffered file as this readline(), so no line is lost
        for proc in procs:
            assert proc.stderr is not None
            first_lines.append(proc.stderr.readline())
        wait_for(lambda: not r.zcard("resque:delayed_queue_schedule"), what="every item to move")
        holder = r.get("resque:resque:resque_scheduler_master_lock")
        assert holder is not None
        assert holder.decode().rsplit(":", 1)[1] in {str(p.pid) for p in procs}
        assert 0 < r.ttl("resque:resque:resque_scheduler_master_lock") <= 180
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        logs = [
            first + (proc.stderr.read() if proc.stderr else "") for first, proc in zip(first_lines, procs, strict=False)
        ]
        for proc in procs:
            proc.wait(30)
    assert all(proc.returncode == 0 for proc in procs), logs
    assert sum("became master" in log for log in logs) >= 1, logs
    assert r.exists("resque:resque:resque_scheduler_master_lock") == 0  # released on TERM
    assert_exactly_once(r)


def test_restart_mid_move_loses_nothing(redis_url: str, r: redis.Redis, resque: Resque) -> None:
    """A scheduler killed (SIGKILL) mid-way: a second one finishes; every item exactly once."""
    seed(r)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resque_compat",
            "--redis",
            redis_url,
            "scheduler",
            "--interval",
            "0.1",
            "--batch",
            "1",
            "--lock-timeout",
            str(LOCK_SECONDS),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wait_for(lambda: r.llen("resque:queue:q") >= 200, what="the first scheduler to move 200 items")
    first.kill()
    first.wait()
    moved_before = r.llen("resque:queue:q")
    assert 0 < moved_before < N_ITEMS
    # the dead master's lock is still there (its TTL outlasts a slow start of the next process);
    # once it expires the next scheduler leads
    lock = resque.keys.scheduler_master_lock()
    assert r.exists(lock)
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "resque_compat",
            "--redis",
            redis_url,
            "scheduler",
            "--interval",
            "0.2",
            "--once",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if r.exists(lock):  # still held by the dead master when the second one looked
        assert "not master" in second.stdout
    wait_for(lambda: not r.exists(lock), timeout=LOCK_SECONDS + 10, what="the dead master's lock to expire")
    third = subprocess.run(
        [sys.executable, "-m", "resque_compat", "--redis", redis_url, "scheduler", "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert third.returncode == 0, third.stderr
    assert f"moved {N_ITEMS - moved_before} delayed job(s)" in third.stdout
    assert_exactly_once(r)
