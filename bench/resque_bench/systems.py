"""The systems under test: how each one enqueues, what bytes its own enqueue writes, how its
workers are started in each mode, and how its progress is read from Redis.

The harness pre-fills queues itself with the exact payload each system's enqueue writes
(one pipelined RPUSH per chunk), so a million queued jobs cost seconds, not minutes, and
every worker starts from the same state. RQ's jobs are hashes plus ids, so RQ fills its
queues with its own ``enqueue_many``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import redis

from resque_bench import cache
from resque_bench.cache import BENCH_DIR, PeerUnavailable

REPO = BENCH_DIR.parent
PEERS = BENCH_DIR / "peers"
PY_JOBS = PEERS / "py"
QUEUE = "bench"
STAMPS = "resque:bench:stamps"
SLEEP_SECONDS = 0.05
POLL_INTERVAL = 0.1  # the polling interval every polling worker is given for the latency runs
Wait = Literal["any", "poll", "block"]


class Unsupported(Exception):  # noqa: N818 - a skip, not a failure
    """The system has no such mode; the message says why."""


@dataclass(frozen=True)
class Launch:
    """The worker processes for one measurement (each started in its own process group)."""

    argvs: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)
    mode: str = ""
    exits_when_empty: bool = False


class System:
    """One implementation. Subclasses say which modes they have by returning None elsewhere."""

    name = ""
    #: rough jobs/s from the reference runs, only used to size each measurement
    expected: dict[str, float] = {}  # noqa: RUF012 - read-only class data

    def __init__(self, port: int) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"

    def prepare(self) -> None:
        """Install or locate the system; raises PeerUnavailable."""

    def base_env(self) -> dict[str, str]:
        return {"BENCH_REDIS": self.address}

    # -- queue contents -----------------------------------------------------------------
    def queue_key(self) -> str:
        return f"resque:queue:{QUEUE}"

    def payload(self, kind: str, i: int, seconds: float = SLEEP_SECONDS) -> bytes:
        """The bytes this system's enqueue writes for job ``kind`` (noop, sleep ``seconds``, stamp;
        resque-compat also asleep: an ``async def`` sleep)."""
        raise NotImplementedError

    def prefill(self, r: redis.Redis, kind: str, n: int, chunk: int = 10_000, seconds: float = SLEEP_SECONDS) -> None:
        r.sadd("resque:queues", QUEUE)
        for start in range(0, n, chunk):
            r.rpush(self.queue_key(), *(self.payload(kind, i, seconds) for i in range(start, min(n, start + chunk))))

    def progress(self, r: redis.Redis) -> int:
        """Jobs finished so far (Resque's ``stat:processed``)."""
        return int(r.get("resque:stat:processed") or 0)

    progress_command = "get"

    def registered(self, r: redis.Redis) -> bool:
        return bool(r.scard("resque:workers"))

    def registrations(self, r: redis.Redis) -> int:
        """How many workers (or slots) are registered: the mail scenario waits for all of them."""
        return int(r.scard("resque:workers"))

    # -- processes ----------------------------------------------------------------------
    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        """Workers for ``queue:bench``; None when the system has no such mode.

        ``wait`` is how an idle worker waits for work ("poll" with :data:`POLL_INTERVAL`, "block"
        in BLPOP, "any" = the system's usual way); ``burst`` asks for a worker that exits
        once the queue is empty, where the system has one."""
        return None

    def concurrent(self, concurrency: int, kind: str) -> Launch:
        """One process running up to ``concurrency`` jobs at once (``kind``: "asleep" for
        ``async def`` jobs, "sleep" for plain ones); raises :class:`Unsupported`."""
        raise Unsupported(f"{self.name} runs one job at a time per process")

    def batch_fork(self, jobs_per_fork: int) -> Launch:
        """A worker whose forked child runs up to ``jobs_per_fork`` jobs; raises :class:`Unsupported`."""
        raise Unsupported(f"{self.name} has no jobs-per-fork mode")

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        """A command that enqueues ``n`` no-op jobs and prints ``{"seconds": s}``."""
        return None


def _py_env(*paths: Path) -> dict[str, str]:
    joined = os.pathsep.join(str(p) for p in paths)
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{joined}{os.pathsep}{old}" if old else joined}


def _ruby_payload(kind: str, i: int, seconds: float) -> bytes:
    """Ruby Resque's bytes, which resque-compat's enqueue also writes."""
    if kind == "noop":
        return b'{"class":"Noop","args":[%d]}' % i
    if kind in ("sleep", "asleep"):
        return b'{"class":"%s","args":[%r]}' % (b"Sleep" if kind == "sleep" else b"ASleep", seconds)
    return b'{"class":"Stamp","args":[]}'


class ResqueCompat(System):
    name = "resque-compat"
    expected = {"nofork": 10_000, "fork": 700, "fork_batch": 3_000, "enqueue": 15_000,  # noqa: RUF012
                "enqueue_batch": 100_000}  # fmt: skip
    flags: frozenset[str] = frozenset()  # the issue-16 options `work --help` shows

    def prepare(self) -> None:
        probe = subprocess.run(
            [sys.executable, "-m", "resque_compat", "work", "--help"],
            capture_output=True, text=True, env={**os.environ, **_py_env(REPO)}, check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            raise PeerUnavailable(f"`python -m resque_compat work` is not usable yet: {last}")
        # the modes of issue 16 are measured the moment the checkout's `work` has their flags
        self.flags = frozenset(f for f in ("--concurrency", "--jobs-per-fork", "--prefetch") if f in probe.stdout)

    def base_env(self) -> dict[str, str]:
        return {**super().base_env(), **_py_env(PY_JOBS, REPO)}

    def payload(self, kind: str, i: int, seconds: float = SLEEP_SECONDS) -> bytes:
        return _ruby_payload(kind, i, seconds)

    def _work(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "resque_compat", "--redis", f"redis://{self.address}/0", "work",
                "--queues", QUEUE, "--import", "compat_jobs", *args]  # fmt: skip

    def _needs(self, flag: str) -> None:
        if flag not in self.flags:
            raise Unsupported(f"needs {flag} (`work --help` of this checkout has no such option yet)")

    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        argv = self._work("--count", str(count))
        argv += [] if fork else ["--no-fork"]
        argv += {"block": ["--blocking"], "poll": ["--interval", str(POLL_INTERVAL)], "any": []}[wait]
        argv += ["--burst"] if burst else []
        mode = ("fork per job" if fork else "no fork") + (", blocking" if wait == "block" else "")
        return Launch([argv], self.base_env(), mode, exits_when_empty=burst)

    def concurrent(self, concurrency: int, kind: str) -> Launch:
        self._needs("--concurrency")
        argv = self._work("--concurrency", str(concurrency), "--interval", str(POLL_INTERVAL))
        how = "async def jobs" if kind == "asleep" else "plain jobs on threads"
        return Launch([argv], self.base_env(), f"--concurrency {concurrency}, {how}")

    def batch_fork(self, jobs_per_fork: int) -> Launch:
        self._needs("--jobs-per-fork")
        argv = self._work("--jobs-per-fork", str(jobs_per_fork), "--burst")
        return Launch([argv], self.base_env(), f"--jobs-per-fork {jobs_per_fork}", exits_when_empty=True)

    def prefetched(self, prefetch: int) -> Launch:
        """No fork, ``--prefetch K``: K jobs per reservation, one pipelined call per job."""
        self._needs("--prefetch")
        argv = self._work("--no-fork", "--prefetch", str(prefetch), "--burst")
        return Launch([argv], self.base_env(), f"no fork, --prefetch {prefetch}", exits_when_empty=True)

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        return [sys.executable, "-m", "resque_bench.compat_enqueue", "batch" if batch else "one", str(n), QUEUE]


class RubyResque(System):
    name = "ruby-resque"
    expected = {"nofork": 1_758, "fork": 331, "enqueue": 5_000}  # noqa: RUF012

    def prepare(self) -> None:
        self.root = cache.ruby_resque()

    def payload(self, kind: str, i: int, seconds: float = SLEEP_SECONDS) -> bytes:
        return _ruby_payload(kind, i, seconds)

    def batch_fork(self, jobs_per_fork: int) -> Launch:
        raise Unsupported("JOBS_PER_FORK needs the resque-multi-job-forks plugin, which is not among the peers here")

    def _argv(self, *args: str) -> list[str]:
        return ["ruby", "-I", str(self.root / "lib"), str(PEERS / "ruby" / "bench.rb"), *args]

    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        if wait == "block":
            return None  # Resque 3.0 only polls
        interval = "0" if burst else str(POLL_INTERVAL)
        env = {**self.base_env(), "FORK_PER_JOB": "true" if fork else "false"}
        mode = "fork per job" if fork else "FORK_PER_JOB=false"
        return Launch([self._argv("work", QUEUE, interval)] * count, env, mode, exits_when_empty=burst)

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        return None if batch else self._argv("enqueue", str(n), QUEUE)


class PhpResque(System):
    name = "php-resque"
    expected = {"fork": 188, "enqueue": 5_000}  # noqa: RUF012

    def prepare(self) -> None:
        self.autoload = cache.php_resque()

    def base_env(self) -> dict[str, str]:
        return {**super().base_env(), "BENCH_PHP_AUTOLOAD": str(self.autoload)}

    def payload(self, kind: str, i: int, seconds: float = SLEEP_SECONDS) -> bytes:
        args = {"noop": b'{"i":%d}' % i, "sleep": b'{"s":%r}' % seconds}.get(kind, b"[]")
        klass = {"noop": b"Noop", "sleep": b"Sleep"}.get(kind, b"Stamp")
        return b'{"class":"%s","args":[%s],"id":"%s","queue_time":%r}' % (
            klass, args, uuid.uuid4().hex.encode(), time.time(),
        )  # fmt: skip

    def _argv(self, *args: str) -> list[str]:
        return ["php", str(PEERS / "php" / "bench.php"), *args]

    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        if not fork:
            return None  # forks whenever pcntl is there
        if wait == "block":  # BLPOP with an integer timeout; 0 would block forever
            return Launch([self._argv("work", QUEUE, "1", "blocking")] * count, self.base_env(), "fork, BLOCKING")
        interval = "0" if burst else str(POLL_INTERVAL)
        argvs = [self._argv("work", QUEUE, interval)] * count
        return Launch(argvs, self.base_env(), "fork per job", exits_when_empty=burst)

    def batch_fork(self, jobs_per_fork: int) -> Launch:
        raise Unsupported("forks once per job (child batching is php-resque#11, never merged)")

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        return None if batch else self._argv("enqueue", str(n), QUEUE)


class NodeResque(System):
    name = "node-resque"
    expected = {"nofork": 3_200, "enqueue": 8_000, "enqueue_batch": 20_000}  # noqa: RUF012

    def prepare(self) -> None:
        self.modules = cache.ensure_node_resque()

    def base_env(self) -> dict[str, str]:
        return {**super().base_env(), "NODE_PATH": str(self.modules)}

    def payload(self, kind: str, i: int, seconds: float = SLEEP_SECONDS) -> bytes:
        args = {"noop": b"[%d]" % i, "sleep": b"[%r]" % seconds}.get(kind, b"[]")
        return b'{"class":"%s","queue":"%s","args":%s}' % (kind.encode(), QUEUE.encode(), args)

    def _argv(self, *args: str) -> list[str]:
        return ["node", str(PEERS / "node" / "bench.js"), *args]

    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        if fork or wait == "block":
            return None  # in-process only, and it polls
        timeout_ms = str(int(POLL_INTERVAL * 1000))
        mode = "in-process" + (f", {count} Worker objects in one process" if count > 1 else "")
        return Launch([self._argv("work", QUEUE, str(count), timeout_ms)], self.base_env(), mode)

    def concurrent(self, concurrency: int, kind: str) -> Launch:
        """A MultiWorker with min = max task processors, so it does not shrink while the jobs
        sleep (its event-loop check adds one Worker per ``checkTimeout``, here 10 ms)."""
        timeout_ms = str(int(POLL_INTERVAL * 1000))
        argv = self._argv("multiwork", QUEUE, str(concurrency), timeout_ms)
        return Launch([argv], self.base_env(), f"MultiWorker, {concurrency} task processors")

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        return self._argv("enqueue_batch" if batch else "enqueue", str(n), QUEUE)


class Pyres(System):
    name = "pyres"
    expected = {"nofork": 1_985, "fork": 2, "enqueue": 8_000}  # noqa: RUF012

    def prepare(self) -> None:
        self.venv = cache.ensure_python_peers()

    def base_env(self) -> dict[str, str]:
        return {**super().base_env(), "PYTHONPATH": str(PY_JOBS)}

    def registered(self, r: redis.Redis) -> bool:
        return bool(r.scard("resque:workers") or r.scard("resque:minions"))  # Minions register apart

    def registrations(self, r: redis.Redis) -> int:
        return int(r.scard("resque:workers")) + int(r.scard("resque:minions"))

    def payload(self, kind: str, i: int, seconds: float = SLEEP_SECONDS) -> bytes:
        klass = {"noop": "Noop", "sleep": "Sleep"}.get(kind, "Stamp")
        args = {"noop": b"[%d]" % i, "sleep": b"[%r]" % seconds}.get(kind, b"[]")
        return b'{"class": "peer_jobs.%s", "args": %s, "enqueue_timestamp": %r}' % (klass.encode(), args, time.time())

    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        if wait == "poll":
            return None  # both pyres workers BLPOP (timeout = interval)
        host = ["--host", "127.0.0.1", "--port", str(self.port), "-l", "warning"]
        if fork:
            argvs = [[str(self.venv / "bin" / "pyres_worker"), *host, "-i", "1", QUEUE]] * count
            return Launch(argvs, self.base_env(), "pyres_worker, fork per job")
        argv = [str(self.venv / "bin" / "pyres_manager"), *host, "--pool", str(count),
                "-i", "1", "--minions_interval", "1", QUEUE]  # fmt: skip
        return Launch([argv], self.base_env(), f"pyres_manager --pool {count} (Minion, BLPOP)")

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        if batch:
            return None
        return [str(self.venv / "bin" / "python"), str(PY_JOBS / "pyres_bench.py"), "enqueue", str(n), QUEUE]


class RQ(System):
    name = "rq"
    expected = {"nofork": 306, "fork": 96, "enqueue": 2_500, "enqueue_batch": 15_000}  # noqa: RUF012
    progress_command = "zcard"

    def prepare(self) -> None:
        self.venv = cache.ensure_python_peers()

    def base_env(self) -> dict[str, str]:
        return {**super().base_env(), "PYTHONPATH": str(PY_JOBS)}

    def queue_key(self) -> str:
        return f"rq:queue:{QUEUE}"

    def _argv(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "python"), str(PY_JOBS / "rq_bench.py"), *args]

    def prefill(self, r: redis.Redis, kind: str, n: int, chunk: int = 10_000, seconds: float = SLEEP_SECONDS) -> None:
        argv = self._argv("enqueue_batch", str(n), QUEUE, *(["sleep", repr(seconds)] if kind == "sleep" else []))
        subprocess.run(argv, env={**os.environ, **self.base_env()}, check=True, capture_output=True)

    def progress(self, r: redis.Redis) -> int:
        return int(r.zcard(f"rq:finished:{QUEUE}"))

    def registered(self, r: redis.Redis) -> bool:
        return bool(r.scard("rq:workers"))

    def registrations(self, r: redis.Redis) -> int:
        return int(r.scard("rq:workers"))

    def worker(self, *, fork: bool, count: int = 1, wait: Wait = "any", burst: bool = False) -> Launch | None:
        if wait == "poll":
            return None  # RQ always waits in BLMOVE/BLPOP
        kind = "fork" if fork else "simple"
        argv = self._argv("work", kind, QUEUE, *(["burst"] if burst else []))
        mode = "Worker (fork)" if fork else "SimpleWorker"
        return Launch([argv] * count, self.base_env(), mode, exits_when_empty=burst)

    def enqueue(self, n: int, *, batch: bool) -> list[str] | None:
        return self._argv("enqueue_batch" if batch else "enqueue", str(n), QUEUE)

    def latency_samples(self, samples: int) -> list[float]:
        """RQ's jobs are not plain bytes, so its own driver enqueues the stamp jobs and times them."""
        done = subprocess.run(self._argv("latency", str(samples), QUEUE), env={**os.environ, **self.base_env()},
                              capture_output=True, text=True, check=True, timeout=60 + samples)  # fmt: skip
        return [float(x) for x in json.loads(done.stdout.strip().splitlines()[-1])["latencies"]]


ALL: tuple[type[System], ...] = (ResqueCompat, RubyResque, PhpResque, NodeResque, Pyres, RQ)


def select(names: list[str] | None) -> Iterator[type[System]]:
    known = {s.name: s for s in ALL}
    for name in names or list(known):
        if name not in known:
            raise SystemExit(f"bench: unknown system {name!r} (known: {', '.join(known)})")
        yield known[name]
