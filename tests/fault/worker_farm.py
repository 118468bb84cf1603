"""Real ``resque-compat work`` processes for the fault suite, and the job accounting.

A :class:`Farm` starts workers as an operator would (a child process running the CLI, jobs
from ``fault_jobs.py``), finds the process that holds a given job, and at the end sorts every
job the test enqueued into exactly one of completed / failed / requeued / lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
from fault_helpers import REPO
from fault_results import ScenarioResult
from waiting import wait_for

from resque_compat import Resque
from resque_compat.protocol import Failure, JobPayload, ProtocolError, WorkingOn

JOBS = Path(__file__).with_name("fault_jobs.py")
QUEUE = "faultq"
CLI = [sys.executable, "-c", "from resque_compat.cli import main; main()"]


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


@dataclass
class Accounting:
    """Where each job ended; ``runs`` counts distinct executions per tag."""

    completed: set[str] = field(default_factory=set)
    failed: dict[str, Failure] = field(default_factory=dict)
    queued: Counter[str] = field(default_factory=Counter)
    runs: Counter[str] = field(default_factory=Counter)
    lost: set[str] = field(default_factory=set)
    bad_payloads: list[str] = field(default_factory=list)


class Farm:
    """Workers on one Redis. ``worker_url`` is what workers connect to (a proxy, maybe);
    ``record_url`` is where jobs record their runs (always the server itself)."""

    def __init__(self, record_url: str, worker_url: str | None = None, jobs_url: str | None = None) -> None:
        self.record_url = record_url
        self.worker_url = worker_url or record_url
        #: where jobs record their runs (``fault:*``): a second server when the first one
        #: refuses writes in the test, so a job's own record is not the thing that fails
        self.jobs_url = jobs_url or record_url
        self.raw = redis.Redis.from_url(record_url)
        self.jobs = redis.Redis.from_url(self.jobs_url)
        self.resque = Resque(record_url)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logdir = Path(tempfile.mkdtemp(prefix="resque-compat-farm-"))
        self.payloads: dict[str, bytes] = {}

    # -- jobs -------------------------------------------------------------------------
    def enqueue(self, tags: list[str], seconds: float = 0.0, class_name: str = "FaultJob") -> None:
        jobs: list[tuple[str, list[object]]] = [
            (class_name, [tag, seconds] if class_name == "FaultJob" else [tag]) for tag in tags
        ]
        self.resque.enqueue_many(QUEUE, jobs)
        for class_, args in jobs:
            self.payloads[str(args[0])] = JobPayload.new(class_, list(args)).encode()

    def hold(self) -> None:
        """Jobs started from now on wait, mid-job, until :meth:`release`."""
        self.jobs.set("fault:hold", "1")

    def release(self) -> None:
        self.jobs.delete("fault:hold")

    def running(self) -> dict[str, tuple[int, int]]:
        """tag -> (pid, parent pid) of every job that has started and not finished."""
        out = {}
        for tag, value in self.jobs.hgetall("fault:running").items():
            pid, ppid = _text(value).split()
            out[_text(tag)] = (int(pid), int(ppid))
        return out

    def job_held_by(self, worker_pid: int) -> str | None:
        """The tag of the job running in ``worker_pid`` (no fork) or in its child (fork)."""
        for tag, (pid, ppid) in self.running().items():
            if worker_pid in (pid, ppid):
                return tag
        return None

    # -- workers ------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "QUEUE", "QUEUES", "COUNT")}
        env.update(
            PYTHONPATH=str(REPO),
            FAULT_REDIS_URL=self.jobs_url,
            HEARTBEAT_INTERVAL="1",  # the prune lock lasts 1 s: a new worker prunes the dead soon
        )
        return env

    def start(self, *args: str, env: dict[str, str] | None = None, interval: str = "0.05") -> subprocess.Popen[bytes]:
        """``resque-compat work -q faultq --interval 0.05 -i fault_jobs.py ARGS`` (``env``: more variables)."""
        log = open(self.logdir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed by the child's exit
        proc = subprocess.Popen(
            [*CLI, "--redis", self.worker_url, "work", "-q", QUEUE, "--interval", interval, "-i", str(JOBS), *args],
            env={**self.env(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT, cwd=self.logdir,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            if proc.pid == pid:
                proc.wait()

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
        """QUIT (finish the job, then exit), as an operator's graceful stop."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"worker {proc.pid} did not stop on QUIT within {timeout} s") from None

    def registered(self) -> set[str]:
        return {_text(m) for m in self.raw.smembers("resque:workers")}

    def drain(self, *args: str, timeout: float = 60) -> None:
        """Run ``--burst`` workers until the queue is empty and no dead worker is left holding
        a job (each one prunes the dead at startup; the prune lock lasts a second)."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.start("--burst", *args)
            proc.wait(timeout)
            settled = (
                not self.registered()
                and self.raw.llen(f"resque:queue:{QUEUE}") == 0
                and not list(self.raw.scan_iter(match="resque:compat:inflight:*"))
            )
            if settled:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still held after {timeout} s: workers {self.registered()}")
            time.sleep(1.1)

    def wait_idle(self, tags: list[str], timeout: float = 60) -> None:
        """Until every tag has finished (done or failed) and nothing is queued."""

        def idle() -> bool:
            acc = self.account(tags)
            return not acc.lost and not acc.queued and not self._held()

        wait_for(idle, timeout=timeout, interval=0.1, what="every job to finish")

    def _held(self) -> bool:
        return any(not _text(k).endswith(":started") for k in self.raw.scan_iter(match="resque:worker:*"))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.raw.close()
        self.jobs.close()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logdir.glob("worker-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    # -- accounting -----------------------------------------------------------------------
    def runs(self) -> Counter[str]:
        """tag -> how many distinct runs finished (a resent RPUSH of one run counts once)."""
        tokens = {tuple(_text(e).split()) for e in self.jobs.lrange("fault:done", 0, -1)}
        return Counter(tag for tag, _ in tokens)

    def account(self, tags: list[str]) -> Accounting:
        acc = Accounting()
        acc.runs = self.runs()
        acc.completed = set(acc.runs)
        for raw in self.raw.lrange("resque:failed", 0, -1):
            try:
                record = Failure.decode(raw)
                tag = str(JobPayload.decode(bytes(record.payload)).args[0])
            except (ProtocolError, IndexError):
                acc.bad_payloads.append(_text(raw)[:200])
                continue
            if bytes(record.payload) != self.payloads.get(tag):
                acc.bad_payloads.append(f"{tag}: {bytes(record.payload)[:200]!r}")
            acc.failed[tag] = record
        for raw in self.raw.lrange(f"resque:queue:{QUEUE}", 0, -1):
            acc.queued[str(JobPayload.decode(raw).args[0])] += 1
        for key in self.raw.scan_iter(match="resque:compat:inflight:*"):
            for raw in self.raw.lrange(key, 0, -1):
                acc.queued[str(JobPayload.decode(raw).args[0])] += 1
        held_tags = set()  # in the worker:<id> record of a worker that is (or was) running it
        for key in self.raw.scan_iter(match="resque:worker:*"):
            held = self.raw.get(key)
            if held is None or _text(key).endswith(":started"):
                continue
            with contextlib.suppress(ProtocolError, IndexError):
                held_tags.add(str(JobPayload.decode(bytes(WorkingOn.decode(held).payload)).args[0]))
        for tag in tags:
            if tag not in acc.completed and tag not in acc.failed and tag not in acc.queued and tag not in held_tags:
                acc.lost.add(tag)
        return acc

    def record(
        self, tags: list[str], result: ScenarioResult, *, victims: set[str], reliable: bool, retries_allowed: bool
    ) -> Accounting:
        """Fill the scenario's row: victims (jobs whose process was killed) count as failed
        when recorded so, as requeued in reliable mode; ``doubled`` counts second runs where
        the mode promises at most one."""
        acc = self.account(tags)
        result.jobs = len(tags)
        for tag in tags:
            if tag in acc.failed:
                result.failed += 1
            elif tag in victims and reliable:
                result.requeued += 1
            elif tag in acc.completed:
                result.completed += 1
        result.lost = len(acc.lost)
        twice = sum(1 for tag in tags if acc.runs[tag] > 1)
        if retries_allowed:
            if twice:
                result.note(f"{twice} job(s) ran twice (at-least-once)")
        else:
            result.doubled = twice
        result.completed_failed = sum(1 for tag in acc.failed if tag in acc.completed)
        if acc.bad_payloads:
            result.note(f"{len(acc.bad_payloads)} failure(s) without the full payload")
        return acc

    def assert_accounted(self, tags: list[str], result: ScenarioResult, victims: set[str], reliable: bool) -> None:
        """:meth:`record` the row, then the suite's promise: nothing lost, every failure with
        its payload, nothing doubled where the mode says at most once, none completed and failed."""
        acc = self.record(tags, result, victims=victims, reliable=reliable, retries_allowed=reliable)
        details = self.log_tail() if acc.lost or result.doubled or acc.bad_payloads or result.completed_failed else ""
        assert not acc.lost, f"lost: {sorted(acc.lost)}\n{details}"
        assert not acc.bad_payloads, acc.bad_payloads
        assert result.doubled == 0, details
        assert result.completed_failed == 0, f"completed but recorded failed\n{details}"
        assert result.accounted == len(tags), details
