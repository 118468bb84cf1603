"""resque-status and resque-retry bytes against spec/vectors/plugins.json (the real plugins' traces)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from resque_compat.protocol import JobPayload, Keys
from resque_compat.protocol.progress import ResqueStatus, merged, status_name
from resque_compat.protocol.retries import delayed_retry_item, suppressed_failure
from resque_compat.protocol.rubyfmt import ruby_float, ruby_inspect, ruby_join, sha1_hex

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "spec" / "vectors" / "plugins.json").read_text())


def section(name: str) -> list[dict[str, Any]]:
    return list(VECTORS[name])


@pytest.mark.parametrize("vector", section("status"), ids=[v["name"] for v in section("status")])
def test_status_writes_are_rubys_bytes(vector: dict[str, Any]) -> None:
    previous = json.loads(vector["previous"]) if vector["previous"] else None
    options = json.loads(vector["bytes"]).get("options", {})
    name = None if previous is None else status_name(vector["class"], options)
    record = merged(previous, vector["uuid"], name, *vector["pieces"], now=vector["now"])
    assert record.encode() == vector["bytes"].encode()
    assert Keys().resque_status(vector["uuid"]) == vector["key"]
    assert ResqueStatus.decode(vector["bytes"]).encode() == vector["bytes"].encode()  # read + rewrite keeps it


@pytest.mark.parametrize("vector", section("status_payload"), ids=[v["name"] for v in section("status_payload")])
def test_status_job_payload(vector: dict[str, Any]) -> None:
    data = json.loads(vector["bytes"])
    assert JobPayload.new(data["class"], data["args"]).encode() == vector["bytes"].encode()


@pytest.mark.parametrize("vector", section("retry_keys"), ids=[v["class"] for v in section("retry_keys")])
def test_retry_attempt_keys(vector: dict[str, Any]) -> None:
    keys = Keys()
    name = Keys.retry_name(vector["class"], vector["args"])
    assert keys.retry_attempts(name) == vector["key"]
    assert keys.retry_failure(name) == "resque:failure-" + vector["key"][len("resque:") :]


@pytest.mark.parametrize("vector", section("retry_delayed"), ids=[v["name"] for v in section("retry_delayed")])
def test_delayed_retry_items(vector: dict[str, Any]) -> None:
    item = json.loads(vector["bytes"])
    queued = JobPayload.new(item["class"], item["args"]).encode()
    assert delayed_retry_item(queued, item["queue"]) == vector["bytes"].encode()
    assert Keys().delayed(int(vector["key"].rsplit(":", 1)[1])) == vector["key"]


def test_suppressed_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same failure as the worker records it, ``failed_at`` then written without the zone."""
    (vector,) = section("suppressed")
    data = json.loads(vector["bytes"])
    zoned = json.dumps({**data, "failed_at": data["failed_at"] + " UTC"}, separators=(",", ":"), ensure_ascii=False)
    monkeypatch.setenv("TZ", "UTC")  # the traces' machine zone
    time.tzset()
    try:
        assert suppressed_failure(zoned.encode(), 1795950869.0) == vector["bytes"].encode()
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("vector", section("pct_complete"), ids=[str(i) for i in range(len(section("pct_complete")))])
def test_pct_complete(vector: dict[str, Any]) -> None:
    assert ResqueStatus.from_dict(vector["record"]).pct_complete == vector["pct_complete"]


def test_status_json_adds_pct_last() -> None:
    record = ResqueStatus.decode(b'{"time":1795950818,"status":"queued","uuid":"17bf","options":{"web":1}}')
    assert json.dumps(record.json_with_pct(), separators=(",", ":")) == (
        '{"time":1795950818,"status":"queued","uuid":"17bf","options":{"web":1},"pct_complete":0}'
    )


@pytest.mark.parametrize("vector", section("ruby_forms"), ids=[v["args_json"][:30] for v in section("ruby_forms")])
def test_ruby_join_and_inspect(vector: dict[str, Any]) -> None:
    args = json.loads(vector["args_json"])
    assert ruby_join(args, "-") == vector["join"]
    assert ruby_inspect(args) == vector["inspect"]
    if vector["join"]:
        assert sha1_hex(vector["join"]) == vector["sha1"]


def test_ruby_float_edges() -> None:
    assert [ruby_float(x) for x in (1e15, 999999999999999.0, 1e-4, 9.999e-5, -0.0, 5e-324)] == [
        "1.0e+15", "999999999999999.0", "0.0001", "9.999e-05", "-0.0", "5.0e-324",
    ]  # fmt: skip


def test_names_are_total_for_absurdly_nested_args() -> None:
    """A payload nested past Python's stack still gets one stable attempt key and a status name."""
    deep: list[Any] = []
    inner = deep
    for _ in range(3000):
        nxt: list[Any] = []
        inner.extend([nxt, 1])
        inner = nxt
    hashes: dict[str, Any] = {}
    node = hashes
    for _ in range(3000):
        node["k"] = {}
        node = node["k"]
    name = Keys.retry_name("A", [deep, hashes])
    assert name == Keys.retry_name("A", [deep, hashes]) and name.startswith("resque-retry:A:")
    assert status_name("B", {"a": hashes}) == "B(…)"
