"""The protocol layer against spec/vectors: bytes the real peers wrote, taken from the traces.

Encoders must reproduce Ruby's (and, where it is the same, php-resque's) bytes exactly;
decoders must accept every peer's variant and, when a record is rewritten, keep its unknown
fields and its key order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resque_compat.protocol import (
    DelayedItem,
    Failure,
    JobPayload,
    JobStatus,
    Keys,
    ProtocolError,
    Raw,
    Record,
    ScheduleEntry,
    StatusRecord,
    WorkingOn,
    encode_json,
    timefmt,
)

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"


def vectors(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))["vectors"]
    return data


def ids(name: str) -> list[str]:
    return [v.get("name") or f"{v.get('peer', v.get('namespace'))}-{i}" for i, v in enumerate(vectors(name))]


def pairs(data: bytes | str) -> Any:
    """Decoded JSON with objects as key/value pair lists: equal only if values and key order are."""
    return json.loads(data, object_pairs_hook=list)


def assert_round_trip(record: Record, original: str) -> None:
    """Re-encoding keeps every field, unknown ones included, in the original order."""
    assert pairs(record.encode()) == pairs(original)


@pytest.fixture
def tz() -> Iterator[Any]:
    """Switch the process time zone (the writers use local time, as Ruby does)."""
    saved = os.environ.get("TZ")

    def use(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield use
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


# -- queue items --------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("payloads.json"), ids=ids("payloads.json"))
def test_payloads(vector: dict[str, Any]) -> None:
    raw = vector["bytes"]
    job = JobPayload.decode(raw.encode())
    assert job.class_ == json.loads(raw)["class"]
    assert_round_trip(job, raw)
    build = vector.get("build")
    if build is not None:
        built = JobPayload.new(build["class"], build["args"], build.get("id"), build.get("queue_time")).encode()
        assert built == vector.get("ours", raw).encode()
        assert json.loads(built) == json.loads(raw)  # same value as the peer's bytes, whatever the escaping
    if "status_key" in vector:
        assert job.job_id is not None
        assert Keys("resque").status(job.job_id, job.status_prefix) == vector["status_key"]


def test_unknown_payload_fields_survive_rewrite() -> None:
    job = JobPayload.decode(b'{"args": ["py"], "class": "BadJob", "jid": "abc123"}')
    assert job.extra == {"jid": "abc123"}
    job.args.append(2)
    assert job.encode() == b'{"args":["py",2],"class":"BadJob","jid":"abc123"}'


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1]", b'{"args":[]}', b'{"class":1,"args":[]}', b'{"class":"A","args":"x"}', b'{"class":"A"'],
)
def test_payload_rejects_non_jobs(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        JobPayload.decode(raw)


# -- worker records and times --------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("workers.json"), ids=ids("workers.json"))
def test_working_on(vector: dict[str, Any]) -> None:
    raw = vector["bytes"]
    record = WorkingOn.decode(raw.encode())
    inner = json.loads(raw)["payload"]
    assert json.loads(bytes(record.payload)) == inner  # the payload is kept as its bytes
    assert_round_trip(record, raw)
    build = vector.get("build")
    if build is not None:
        ours = WorkingOn(queue=build["queue"], run_at=build["run_at"], payload=Raw(build["payload"].encode()))
        assert ours.encode() == raw.encode()


def test_working_on_keeps_payload_bytes_verbatim() -> None:
    php = next(v for v in vectors("workers.json") if v["name"] == "php_cb")["bytes"].encode()
    record = WorkingOn.decode(php)
    assert b'"path":"a\\/b","utf":"\\u00e9"' in bytes(record.payload)  # PHP's escapes untouched
    assert b'"path":"a\\/b","utf":"\\u00e9"' in record.encode()


@pytest.mark.parametrize("vector", vectors("times.json"), ids=ids("times.json"))
def test_times(vector: dict[str, Any], tz: Any) -> None:
    tz(vector["tz"])
    if vector["writer"]:
        assert getattr(timefmt, vector["writer"])(vector["epoch"]) == vector["text"]
    parsed = timefmt.parse(vector["text"])
    assert parsed is not None and parsed.timestamp() == vector["epoch"]


# -- failures ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("failures.json"), ids=ids("failures.json"))
def test_failures(vector: dict[str, Any]) -> None:
    raw = vector["bytes"]
    record = Failure.decode(raw.encode())
    assert_round_trip(record, raw)
    original_payload = json.dumps(json.loads(raw)["payload"])
    assert json.dumps(json.loads(bytes(record.payload))) == original_payload
    build = vector.get("build")
    if build is not None:
        fields = {k: v for k, v in build.items() if k != "retried_at"}
        ours = Failure(**{**fields, "payload": Raw(fields["payload"].encode())})
        if "retried_at" in build:
            assert ours.encode() != raw.encode()
            ours.retried_at = build["retried_at"]
        assert ours.encode() == raw.encode()


def test_retried_at_is_appended_after_unknown_fields() -> None:
    node = next(v for v in vectors("failures.json") if v["name"] == "node")["bytes"]
    record = Failure.decode(node.encode())
    record.retried_at = "2026/11/26 20:21:41 UTC"
    keys = [k for k, _ in pairs(record.encode())]
    assert keys == [k for k, _ in pairs(node)] + ["retried_at"]


def test_php_failure_payload_bytes_survive_rewrite() -> None:
    php = next(v for v in vectors("failures.json") if v["name"] == "php_cb")["bytes"].encode()
    record = Failure.decode(php)
    record.retried_at = "x"
    start = php.index(b'"payload":') + len(b'"payload":')
    assert bytes(record.payload) == php[start : php.index(b',"exception"')]
    assert bytes(record.payload) in record.encode()


# -- status --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("status.json"), ids=ids("status.json"))
def test_status(vector: dict[str, Any]) -> None:
    raw = vector["bytes"]
    record = StatusRecord.decode(raw.encode())
    assert record.state == JobStatus(json.loads(raw)["status"])
    assert_round_trip(record, raw)
    if "result" in vector:
        assert record.result == vector["result"]
    build = vector.get("build") or {}
    if "waiting" in build:
        assert StatusRecord.waiting(build["waiting"]).encode() == raw.encode()
    if "advance" in build:
        step = build["advance"]
        before = StatusRecord.decode(step["from"].encode())
        kwargs = {"result": step["result"]} if "result" in step else {}
        after = before.advanced(JobStatus(step["status"]), now=step["now"], **kwargs)
        assert after.encode() == raw.encode()


def test_status_advance_keeps_started_of_cb_record() -> None:
    """Deliberate difference: cb drops ``started`` on update; we keep it (the fork re-reads it)."""
    waiting = StatusRecord.decode(b'{"status":1,"updated":1795724486,"started":1795724486}')
    running = waiting.advanced(JobStatus.RUNNING, now=1795724491)
    assert running.encode() == b'{"status":2,"updated":1795724491,"started":1795724486}'
    assert running.advanced(JobStatus.COMPLETE, now=1795724494, result=42).encode() == (
        b'{"status":4,"updated":1795724494,"started":1795724486,"result":42}'
    )


# -- delayed items and schedules --------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("delayed.json"), ids=ids("delayed.json"))
def test_delayed(vector: dict[str, Any]) -> None:
    raw = vector["bytes"]
    kind: type[Record] = ScheduleEntry if vector.get("kind") == "schedule" else DelayedItem
    record = kind.decode(raw.encode())
    assert_round_trip(record, raw)
    build = vector.get("build")
    if build is not None:
        fields = {("class_" if k == "class" else k): v for k, v in build.items()}
        assert kind(**fields).encode() == raw.encode()
    if "timestamps_key" in vector:
        keys = Keys("resque")
        assert keys.timestamps(raw) == vector["timestamps_key"]
        assert keys.delayed_member(vector["timestamp"]) == vector["timestamps_member"]


# -- keys and floats ---------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("keys.json"), ids=ids("keys.json"))
def test_keys(vector: dict[str, Any]) -> None:
    name, *args = vector["call"]
    attribute = getattr(Keys(vector["namespace"]), name)
    assert (attribute(*args) if callable(attribute) else attribute) == vector["key"]


@pytest.mark.parametrize("vector", vectors("floats.json"), ids=[str(v["value"]) for v in vectors("floats.json")])
def test_floats(vector: dict[str, Any]) -> None:
    assert encode_json(vector["value"]).decode() == vector["ours"]
    for text in vector["peers"].values():
        decoded = JobPayload.decode(f'{{"class":"F","args":[{text}]}}'.encode()).args[0]
        assert decoded == vector["value"]


def test_encoding_rules() -> None:
    """Ruby's MultiJson rules: compact, raw UTF-8, ``/`` unescaped, control chars escaped."""
    value = ["a/b", "é", "😀", "\u2028", "\x01", "\t\n", 18446744073709551616]
    assert encode_json(value) == '["a/b","é","😀","\u2028","\\u0001","\\t\\n",18446744073709551616]'.encode()
