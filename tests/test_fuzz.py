"""Bad input, fuzzed: decoders, readers, the CLI and the worker never crash on what is in Redis.

* every record decoder raises nothing but ``ProtocolError`` on arbitrary bytes;
* the client's and the CLI's readers (peek, failed list, status, workers, queues, stats)
  show broken records as broken;
* a worker turns each malformed queue item into a failure that keeps the item's exact bytes
  (so it can be repaired and retried) and keeps working.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resque_compat import Resque
from resque_compat.cli import main
from resque_compat.protocol import (
    DelayedItem,
    Failure,
    JobPayload,
    ProtocolError,
    ScheduleEntry,
    StatusRecord,
    WorkingOn,
    decode_json,
    normalize_class,
)

DECODERS = (JobPayload, Failure, StatusRecord, DelayedItem, WorkingOn, ScheduleEntry)
FIELDS = ["class", "args", "id", "queue", "payload", "failed_at", "status", "run_at", "exception", "error",
          "backtrace", "worker", "updated", "started", "result", "retried_at", "prefix", "queue_time"]  # fmt: skip
FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: near misses: objects with the records' own field names holding values of any type
near_records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8).map(lambda d: json.dumps(d).encode())
deep = st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n + b"]" * n)
stored_bytes = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_records,
    deep,
    st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass")),  # lone surrogates: not UTF-8
)


@settings(max_examples=1500, deadline=None, suppress_health_check=FIXTURE_OK)
@given(stored_bytes)
def test_decoders_raise_only_protocol_error(data: bytes) -> None:
    for cls in DECODERS:
        try:
            record = cls.decode(data)
        except ProtocolError:
            continue
        record.encode()  # whatever decodes, encodes back
    with contextlib.suppress(ProtocolError):
        decode_json(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_decoders_take_text_with_lone_surrogates(text: str) -> None:
    for cls in DECODERS:
        with contextlib.suppress(ProtocolError):
            cls.decode(text + "\ud800")


def _seed(r: redis.Redis, junk: list[bytes]) -> str:
    """Put junk wherever a reader looks: queue items, failures, status keys, worker records,
    heartbeats, stats, set members; returns the id of the broken status."""
    r.flushall()
    r.sadd("resque:queues", "q", *junk[:3])
    r.rpush("resque:queue:q", *junk)
    r.rpush("resque:failed", *junk)
    for i, item in enumerate(junk[:5]):
        r.set(f"resque:job:junk{i}:status", item)
        wid = b"host:%d:q" % i if i % 2 else item[:40] or b"x"
        r.sadd("resque:workers", wid)
        r.set(b"resque:worker:" + wid, item)
        r.set(b"resque:worker:" + wid + b":started", item)
        r.hset("resque:workers:heartbeat", wid, item)
        r.set(b"resque:stat:processed:" + wid, item)
    r.set("resque:stat:processed", junk[0])
    r.set("resque:stat:failed", junk[-1])
    return "junk0"


junk_lists = st.lists(stored_bytes.filter(lambda b: len(b) < 50_000), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(junk=junk_lists)
def test_client_readers_show_broken_records(redis_url: str, junk: list[bytes]) -> None:
    r = redis.Redis.from_url(redis_url)
    job_id = _seed(r, junk)
    resque = Resque(redis_url)
    items = resque.peek("q", 0, len(junk))
    assert len(items) == len(junk)
    for item, raw in zip(items, junk, strict=True):
        assert item.raw == raw
        assert (item.payload is None) == (item.problem is not None)
    entries = resque.failures.all(0, len(junk))
    assert [e.raw for e in entries] == junk
    assert all(e.broken == (e.record is None) for e in entries)
    with contextlib.suppress(ProtocolError):  # a broken status key is reported as such, with the reason
        resque.status(job_id)
    resque.workers()
    resque.queues()
    resque.queue_sizes()
    resque.info()


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(junk=junk_lists)
def test_cli_readers_never_crash(redis_url: str, junk: list[bytes]) -> None:
    r = redis.Redis.from_url(redis_url)
    job_id = _seed(r, junk)
    runner = CliRunner()
    commands = [
        ["peek", "q", "--count", "20"],
        ["failed", "list", "--count", "20"],
        ["failed", "count"],
        ["workers"],
        ["queues"],
        ["stats"],
        ["status", job_id],
    ]
    for as_json in ([], ["--json"]):
        for command in commands:
            result = runner.invoke(main, ["--redis", redis_url, *as_json, *command])
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise AssertionError(f"{command} crashed on {junk!r}") from result.exception
            if result.exit_code != 0:  # only a single record lookup may refuse, in one line
                assert command[0] == "status", (command, result.output)
                assert len(result.output.strip().splitlines()) == 1, result.output


# -- the worker and malformed queue items ----------------------------------------------------

MALFORMED = [
    b"not json at all",
    b"",
    b"[1,2,3]",
    b'"just a string"',
    b"42",
    b"null",
    b'{"args":[1]}',  # no class
    b'{"class":"","args":[]}',  # empty class
    b'{"class":"Good","args":{"not":"a list"}}',
    b'{"class":42,"args":[]}',
    b'{"class":"Good","args":[1]',  # truncated
    b"\xff\xfe\x00invalid utf-8 \xc3\x28",
    b'{"class":"Good","args":["\xff\xfe"]}',  # JSON-looking, not UTF-8
    b"[" * 100_000 + b"]" * 100_000,  # nested too deep
    b'{"class":"Good","args":["' + b"x" * 2_000_000 + b'"]}'[:-1],  # huge and truncated
]

JOB_MODULE = """
from resque_compat import job

@job("Good")
def good(*args):
    return None
"""


def _raw_bytes_of(record: Failure) -> bytes:
    """What an operator recovers from a failure: the exact bytes of the item."""
    if "payload_base64" in record.extra:
        return base64.b64decode(record.extra["payload_base64"])
    payload = bytes(record.payload)
    value = decode_json(payload)
    return value.encode() if isinstance(value, str) else payload


def _burst_worker(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "fuzz_jobs.py").write_text(JOB_MODULE)
    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "QUEUE", "QUEUES")}
    env["PYTHONPATH"] = str(repo)
    command = [sys.executable, "-c", "from resque_compat.cli import main; main()", "--redis", redis_url,
               "work", "-q", "q", "--burst", "-i", str(tmp_path / "fuzz_jobs.py"), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)


def _check_worker_kept_everything(r: redis.Redis, items: list[bytes], good: int) -> None:
    failures = [Failure.decode(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert sorted(_raw_bytes_of(f) for f in failures) == sorted(items)
    assert all(f.queue == "q" and f.exception and f.error for f in failures)
    assert r.llen("resque:queue:q") == 0
    assert int(r.get("resque:stat:processed") or 0) == len(items) + good


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_worker_keeps_malformed_items_as_failures(redis_url: str, tmp_path: Path, mode: str) -> None:
    r = redis.Redis.from_url(redis_url)
    resque = Resque(redis_url)
    for item in MALFORMED:
        resque.push_raw("q", item)
        resque.enqueue("q", "Good", 1)  # the worker goes on after each bad one
    proc = _burst_worker(redis_url, tmp_path, mode)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_worker_kept_everything(r, MALFORMED, good=len(MALFORMED))


@settings(max_examples=10, deadline=None, suppress_health_check=FIXTURE_OK)
@given(items=st.lists(stored_bytes.filter(lambda b: len(b) < 100_000), min_size=1, max_size=25))
def test_worker_survives_fuzzed_queue_items(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, items: list[bytes]
) -> None:
    r = redis.Redis.from_url(redis_url)
    r.flushall()
    resque = Resque(redis_url)
    bad = [item for item in items if not _is_good_job(item)]
    for item in items:
        resque.push_raw("q", item)
    resque.enqueue("q", "Good", "last")
    proc = _burst_worker(redis_url, tmp_path_factory.mktemp("fuzz"), "--no-fork")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_worker_kept_everything(r, bad, good=len(items) - len(bad) + 1)


def _is_good_job(item: bytes) -> bool:
    """A payload the worker would run: an object with a known class and a list of args."""
    try:
        payload = JobPayload.decode(item)
    except ProtocolError:
        return False
    return normalize_class(payload.class_) == "Good"
