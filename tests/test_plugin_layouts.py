"""resque-status and resque-retry bytes against spec/vectors/plugins.json (the real plugins' traces)."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resque_compat.protocol import JobPayload, Keys, ProtocolError
from resque_compat.protocol.history import decode_sample
from resque_compat.protocol.progress import ResqueStatus, merged, status_name
from resque_compat.protocol.retries import PendingRetry, delayed_retry_item, suppressed_failure
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


@pytest.mark.parametrize(
    ("total", "expected"),
    [("4", 25), ("4.0x", 25), ("0x1A", 100), ("inf", 100), ("nan", 100), ("1_0", 10), ("1__0", 100), (".4e1", 25),
     ("e5", 100), (" +4", 25), ("", 100), ("-", 100)],
)  # fmt: skip
def test_pct_complete_reads_strings_as_rubys_to_f(total: str, expected: int) -> None:
    """``String#to_f`` reads the numeric prefix (``"inf"`` and ``"0x1A"`` are 0, so the total counts as 1)."""
    assert ResqueStatus.from_dict({"status": "working", "num": 1, "total": total}).pct_complete == expected


def test_pct_complete_of_a_huge_string_is_quick() -> None:
    """A megabyte of junk in ``total`` is read once, not once per trailing character (that took hours)."""
    record = ResqueStatus.decode(b'{"status":"working","num":1,"total":"' + b"7" * 10 + b"x" * 1_000_000 + b'"}')
    assert record.pct_complete == 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_stored = (
    st.binary(max_size=200)
    | _json.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(
        st.sampled_from(
            ["time", "status", "uuid", "num", "total", "message", "class", "at", "attempt", "t", "processed"]
        ),
        _json,
    ).map(lambda d: json.dumps(d).encode())
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_stored)
def test_stored_plugin_records_never_crash_their_readers(stored: bytes) -> None:
    """Whatever a peer, a bug or a person stored, a reader gets a record or a ProtocolError."""
    with contextlib.suppress(ProtocolError):
        status = ResqueStatus.decode(stored)
        assert isinstance(status.json_with_pct()["pct_complete"], int)
        assert status.killable is not status.final
    with contextlib.suppress(ProtocolError):
        PendingRetry.decode(stored)
    with contextlib.suppress(ProtocolError):
        decode_sample(stored)
