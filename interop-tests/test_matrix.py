"""The matrix: every producer x every consumer worker, on one Redis.

Each cell enqueues, with the producer's own client, an echo job carrying every awkward value
(unicode, ``/``, nested maps, empty map and list, big integers, floats), a failing job and,
where the producer tracks statuses (php-resque, resque-compat), tracked jobs. The consumer's
real worker drains the queue. Then the cell checks, each as an "aspect":

* ``once``: every echo job ran exactly once, on the consumer, and the queue is empty;
* ``args``: the arguments the job saw, per the pair's documented transformations (below);
* ``status``: tracked jobs reached 4 / 3 where the consumer tracks, read by our client and by
  php-resque's ``Resque_Job_Status``; stayed 1 where the consumer has no status tracking;
* ``failure``: the failed job is in ``failed`` once, readable by our client, Ruby's
  ``Resque::Failure.all`` and node-resque's ``queue.failed``;
* ``stats``: ``stat:processed`` / ``stat:failed`` moved as that consumer counts, and our
  ``info`` agrees with Ruby's ``Resque.info``;
* ``workers``: the consumer unregistered when it finished.

Argument shapes, from the reference facts: php-resque enqueues ``[$args]`` and its jobs see
``args[0]`` only; its ``json_decode(..., true)`` turns ``{}`` into ``[]`` and integers beyond
int64 into floats. node-resque parses JSON into JS numbers (beyond 2**53 they round to the
nearest double). Ruby and resque-compat keep every value exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from harness import IMPLEMENTATIONS, Peers

from resque_compat import Resque
from resque_compat.protocol import JobPayload, timefmt

QUEUE = "matrix"
BIG = 18446744073709551616  # 2**64: beyond int64 and beyond a double's exact integers
PAST_DOUBLE = 9007199254740993  # 2**53 + 1: fits int64, not a double

ECHO = {"ruby": "Interop::Echo", "php-cb": "Interop_Echo", "php-fork": "Interop_Echo", "node": "Interop::Echo",
        "python": "Interop::Echo"}  # fmt: skip
FAIL = {"ruby": "Interop::Fail", "php-cb": "Interop_Fail", "php-fork": "Interop_Fail", "node": "Interop::Fail",
        "python": "Interop::Fail"}  # fmt: skip
PHP_STYLE_ECHO = "App\\Jobs\\Echo"  # a PHP-style job of ours (self.args = args[0])
TRACKING_PRODUCERS = {"php-cb", "php-fork", "python"}
TRACKING_CONSUMERS = {"php-cb", "php-fork", "python"}
PHP = {"php-cb", "php-fork"}


def sample(tag: str) -> dict[str, Any]:
    """One map with every value kind the issue names; ``cell`` finds the job's results."""
    return {
        "cell": tag,
        "text": 'héllo wörld ✓ 日本語 😀 "quoted" \\ back',
        "path": "app/jobs/echo a/b",
        "nested": {"level": {"deeper": [1, {"x": None, "flag": True}], "n": -7}},
        "empty_map": {},
        "empty_list": [],
        "big": BIG,
        "past_double": PAST_DOUBLE,
        "floats": [0.1, 3.25, -2.5e-07, 1e20, 1.0],
    }


def producer_args(producer: str, tag: str) -> list[Any] | dict[str, Any]:
    """What the producer's API takes: php-resque one ``$args`` map; the others a positional list."""
    if producer in PHP:
        return sample(tag)
    return [sample(tag), "ünï/cödé ✓", BIG, 0.1, {}, []]


def php_json(value: Any) -> Any:
    """The value after PHP's json_decode(..., true) + json_encode: {} -> [], > int64 -> float."""
    if isinstance(value, dict):
        return {k: php_json(v) for k, v in value.items()} if value else []
    if isinstance(value, list):
        return [php_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


def js_json(value: Any) -> Any:
    """The value after JSON.parse + JSON.stringify: integers beyond 2**53 become doubles."""
    if isinstance(value, dict):
        return {k: js_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [js_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return float(value)
    return value


def wire_args(producer: str, given: list[Any] | dict[str, Any]) -> list[Any]:
    """The payload's ``args`` as the producer stored them."""
    if producer in PHP:
        return [php_json(given)]
    if producer == "node":
        return js_json(given)  # type: ignore[no-any-return]
    return given  # type: ignore[return-value]


def seen_args(consumer: str, class_name: str, wire: list[Any]) -> Any:
    """What the consumer's job recorded as its arguments."""
    if consumer in PHP:
        return php_json(wire[0])
    if consumer == "node":
        return js_json(wire)
    if class_name == PHP_STYLE_ECHO:
        return wire[0]
    return wire


def same(expected: Any, got: Any) -> bool:
    """Equal as JSON values: bools are not numbers; an expected integer must arrive as that exact
    integer, an expected float as any number of the same double value."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int) and isinstance(got, (int, float)):
        return isinstance(got, int) and expected == got  # an exact integer must stay exact
    if isinstance(expected, float) and isinstance(got, (int, float)):
        return expected == float(got)  # JSON has one number type: PHP and JS print 1.0 as 1
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(same(expected[k], got[k]) for k in expected)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(same(a, b) for a, b in zip(expected, got, strict=True))
    return bool(expected == got) and type(expected) is type(got)


def tag_of(value: Any) -> str | None:
    """The ``cell`` tag inside a job's arguments, wherever the implementation put them."""
    if isinstance(value, dict):
        tag = value.get("cell")
        return tag if isinstance(tag, str) else None
    if isinstance(value, list):
        for item in value:
            if (found := tag_of(item)) is not None:
                return found
    return None


@dataclass
class Job:
    tag: str
    class_name: str
    given: list[Any] | dict[str, Any]
    track: bool = False
    fails: bool = False
    job_id: str | None = None


@dataclass
class Aspects:
    """Soft checks: every aspect is evaluated, the cell fails listing all that failed."""

    results: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, aspect: str, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(f"{aspect}: {problem}")
            self.results[aspect] = "fail"
        else:
            self.results.setdefault(aspect, "pass")

    def note(self, aspect: str, state: str) -> None:
        self.results.setdefault(aspect, state)


def enqueue(peers: Peers, resque: Resque, producer: str, jobs: list[Job]) -> None:
    """Push the cell's jobs with the producer's own client, in one process."""
    if producer == "python":
        for job in jobs:
            given = job.given if isinstance(job.given, list) else [job.given]
            job.job_id = resque.enqueue(QUEUE, job.class_name, *given, track=job.track)
        return
    if producer in PHP:
        out = peers.run(producer, "enqueue_many", json.dumps([[QUEUE, j.class_name, j.given, j.track] for j in jobs]))
        for job, job_id in zip(jobs, out["ids"], strict=True):
            job.job_id = job_id if job.track else None
        return
    out = peers.run(producer, "enqueue_many", json.dumps([[QUEUE, j.class_name, j.given] for j in jobs]))
    assert out["ok"] == [True] * len(jobs), out


def plan(producer: str, consumer: str) -> list[Job]:
    cell = f"{producer}>{consumer}"
    jobs = [Job(f"{cell}#echo", ECHO[consumer], producer_args(producer, f"{cell}#echo"))]
    if consumer == "python":
        jobs.append(Job(f"{cell}#php-style", PHP_STYLE_ECHO, producer_args(producer, f"{cell}#php-style")))
    tracks = producer in TRACKING_PRODUCERS
    if tracks:
        jobs.append(Job(f"{cell}#tracked", ECHO[consumer], producer_args(producer, f"{cell}#tracked"), track=True))
    jobs.append(Job(f"{cell}#fail", FAIL[consumer], producer_args(producer, f"{cell}#fail"), track=tracks, fails=True))
    return jobs


@pytest.mark.matrix
@pytest.mark.parametrize("consumer", IMPLEMENTATIONS)
@pytest.mark.parametrize("producer", IMPLEMENTATIONS)
def test_matrix(  # noqa: PLR0917 - pytest passes fixtures positionally
    producer: str, consumer: str, peers: Peers, resque: Resque, r: redis.Redis, request: pytest.FixtureRequest
) -> None:
    if producer != "python":
        peers[producer].require()
    peers[consumer].require()

    jobs = plan(producer, consumer)
    enqueue(peers, resque, producer, jobs)
    assert r.llen(f"resque:queue:{QUEUE}") == len(jobs)
    report = peers.work(consumer, QUEUE)

    a = Aspects()
    check_runs(a, r, producer, consumer, jobs)
    check_status(a, peers=peers, resque=resque, r=r, producer=producer, consumer=consumer, jobs=jobs)
    check_failure(a, peers, resque, consumer, jobs)
    check_stats(a, peers=peers, resque=resque, consumer=consumer, jobs=jobs, report=report)
    a.check("workers", r.scard("resque:workers") == 0, f"still registered: {r.smembers('resque:workers')}")
    request.node.user_properties.append(("aspects", a.results))
    assert not a.problems, "; ".join(a.problems)


def check_runs(a: Aspects, r: redis.Redis, producer: str, consumer: str, jobs: list[Job]) -> None:
    records = [json.loads(x) for x in r.lrange("resque:interop:results", 0, -1)]
    a.check("once", r.llen(f"resque:queue:{QUEUE}") == 0, "jobs left in the queue")
    by = consumer
    for job in (j for j in jobs if not j.fails):
        mine = [rec for rec in records if tag_of(rec.get("args")) == job.tag]
        a.check("once", len(mine) == 1, f"{job.tag} ran {len(mine)} times")
        if len(mine) != 1:
            continue
        rec = mine[0]
        a.check("once", rec.get("by") == by, f"{job.tag} ran on {rec.get('by')!r}, not {by!r}")
        a.check("once", rec.get("class") == job.class_name, f"{job.tag} recorded class {rec.get('class')!r}")
        expected = seen_args(consumer, job.class_name, wire_args(producer, job.given))
        a.check("args", same(expected, rec.get("args")), f"{job.tag} saw {rec.get('args')!r}, expected {expected!r}")
    fails = [rec for rec in records if any(tag_of(rec.get("args")) == j.tag for j in jobs if j.fails)]
    a.check("once", not fails, f"the failing job recorded a success: {fails}")


def check_status(
    a: Aspects, *, peers: Peers, resque: Resque, r: redis.Redis, producer: str, consumer: str, jobs: list[Job]
) -> None:
    tracked = [j for j in jobs if j.track]
    if not tracked:
        a.note("status", "n/a (producer does not track)")
        return
    php_reader = producer if producer in PHP else next((p for p in ("php-cb", "php-fork") if peers.available(p)), None)
    for job in tracked:
        assert job.job_id is not None
        if consumer in TRACKING_CONSUMERS:
            want = 3 if job.fails else 4
        else:
            want = 1  # Ruby and node-resque workers have no status tracking: it must stay untouched
            a.note("status", f"n/a ({consumer} does not track; left waiting)")
        record = resque.status(job.job_id)
        got = None if record is None else record.status
        a.check("status", got == want, f"{job.tag}: our client reads status {got}, expected {want}")
        ttl = r.ttl(f"resque:job:{job.job_id}:status")
        if want in (3, 4):
            a.check("status", 0 < ttl <= 86400, f"{job.tag}: final status TTL is {ttl}, expected <= 86400")
        if php_reader is not None:
            seen = peers.run(php_reader, "status", job.job_id)
            a.check("status", seen == {"tracking": True, "status": want},
                    f"{job.tag}: {php_reader} Resque_Job_Status reads {seen}")  # fmt: skip


def check_failure(a: Aspects, peers: Peers, resque: Resque, consumer: str, jobs: list[Job]) -> None:
    failing = next(j for j in jobs if j.fails)
    entries = [e for e in resque.failures.iter() if e.record is not None]
    mine = [e for e in entries if tag_of(_payload_args(bytes(e.record.payload))) == failing.tag]  # type: ignore[union-attr]
    a.check("failure", len(mine) == 1, f"{len(mine)} failed entries for {failing.tag} (of {len(entries)})")
    if len(mine) != 1:
        return
    rec = mine[0].record
    assert rec is not None
    job = JobPayload.decode(bytes(rec.payload))
    a.check("failure", job.class_ == failing.class_name, f"payload class {job.class_!r}")
    a.check("failure", rec.queue == QUEUE, f"queue {rec.queue!r}")
    a.check("failure", "interop failure" in rec.error, f"error {rec.error!r}")
    a.check("failure", bool(rec.exception) and bool(rec.worker), f"exception {rec.exception!r}, worker {rec.worker!r}")
    a.check("failure", timefmt.parse(rec.failed_at) is not None, f"failed_at {rec.failed_at!r} does not parse")
    if failing.job_id is not None:
        a.check("failure", job.job_id == failing.job_id, f"payload id {job.job_id!r}, enqueued {failing.job_id!r}")
    # the other side's tools read the same entry
    for reader in ("ruby", "node"):
        if not peers.available(reader):
            continue
        listed = peers.run(reader, "failures")
        found = [f for f in listed if tag_of(f.get("payload", {}).get("args")) == failing.tag]
        a.check("failure", len(found) == 1 and found[0].get("queue") == QUEUE
                and found[0]["payload"].get("class") == failing.class_name,
                f"{reader}'s failure list shows {found}")  # fmt: skip


def _payload_args(raw: bytes) -> Any:
    try:
        return json.loads(raw).get("args")
    except (ValueError, AttributeError):
        return None


def check_stats(a: Aspects, *, peers: Peers, resque: Resque, consumer: str, jobs: list[Job], report: Any) -> None:
    failed = sum(1 for j in jobs if j.fails)
    # node-resque counts only successes in stat:processed; Ruby, php-resque and we count every job
    processed = len(jobs) - failed if consumer == "node" else len(jobs)
    info = resque.info()
    a.check("stats", (info["processed"], info["failed"]) == (processed, failed),
            f"processed/failed {info['processed']}/{info['failed']}, expected {processed}/{failed}")  # fmt: skip
    if isinstance(report, dict) and "processed" in report and consumer != "node":
        a.check("stats", (report["processed"], report["failed"]) == (processed, failed),
                f"{consumer} reported {report['processed']}/{report['failed']}")  # fmt: skip
    if peers.available("ruby"):
        theirs = peers.run("ruby", "info")
        a.check("stats", (theirs["processed"], theirs["failed"]) == (info["processed"], info["failed"]),
                f"Ruby's Resque.info says {theirs['processed']}/{theirs['failed']}, "
                f"ours {info['processed']}/{info['failed']}")  # fmt: skip
