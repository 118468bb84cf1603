"""Every reader is total, fuzzed (issue 12): generated records of every stored kind (odd but
valid JSON, invalid JSON, huge values) are written into a real Redis, then every HTML page and
every ``/api`` GET route of the route table, and every CLI reader, are asked for them.

No 5xx, no 4xx but 404 (for what does not exist), no traceback, no answer over the size limit.
``FUZZ_EXAMPLES`` raises the number of examples (CI keeps it small).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from typing import Any

import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from resque_compat import Resque
from resque_compat.cli import main
from resque_compat.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NS = "resque:"
#: no page or API answer may be larger than this, whatever Redis holds
PAGE_LIMIT = 2 * 1024 * 1024
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
FIELDS = ["class", "args", "id", "queue", "payload", "failed_at", "status", "run_at", "exception", "error",
          "backtrace", "worker", "updated", "started", "result", "retried_at", "prefix", "queue_time", "cron",
          "every", "description", "job_class", "arguments", "enqueue_timestamp"]  # fmt: skip

huge = st.sampled_from([60_000, 300_000]).map(lambda n: "x" * n)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 999999999999, 288230376151711744, -1, 0, "99999999999999", "1e999", "x", ""])
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip
#: objects with the records' own field names: the near misses a peer's bug writes
near = st.dictionaries(st.sampled_from(FIELDS), json_values | huge, max_size=8)
record_bytes = st.one_of(
    near.map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({"class": st.text(max_size=10), "args": st.lists(json_values | huge, max_size=3)}).map(
        lambda d: json.dumps(d).encode()
    ),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"\xff\xfe", b"[" * 5000, b"[" * 100_000 + b"]" * 100_000]),
    huge.map(str.encode),
)
#: names as other programs may store them: odd characters, colons, empty, long
names = st.one_of(
    st.sampled_from(["q", "default", "a:b", "with space", "ünï", "%2F", "../x", "x" * 300, ""]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
)
worker_ids = st.one_of(
    st.tuples(names, st.integers(0, 99999), names).map(lambda t: f"{t[0]}:{t[1]}:{t[2]}"),
    names,
)
stat_values = st.one_of(st.integers(-(2**63), 2**63 - 1).map(str), st.sampled_from(["1e999", "x", "", "-0", "nan"]))
timestamps = st.one_of(st.integers(-(2**62), 2**62), st.sampled_from([999999999999, 288230376151711744, 0]))

hostile = st.fixed_dictionaries(
    {
        "queues": st.dictionaries(names, st.lists(record_bytes, max_size=3), min_size=1, max_size=3),
        "workers": st.dictionaries(
            worker_ids,
            st.tuples(st.none() | record_bytes, st.none() | record_bytes, st.none() | record_bytes, stat_values),
            max_size=4,
        ),
        "failures": st.lists(record_bytes, max_size=6),
        "failed_queues": st.dictionaries(
            names.map(lambda n: n + "_failed"), st.lists(record_bytes, max_size=2), max_size=2
        ),
        "delayed": st.dictionaries(timestamps, st.lists(record_bytes, min_size=1, max_size=2), max_size=3),
        "delayed_junk": st.lists(st.tuples(st.binary(max_size=20), st.floats(allow_nan=False)), max_size=2),
        "schedules": st.dictionaries(names, record_bytes, max_size=3),
        "statuses": st.dictionaries(
            st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), record_bytes, max_size=2
        ),
        "stats": st.dictionaries(st.sampled_from(["processed", "failed"]), stat_values, max_size=2),
    }
)


def store(r: redis.Redis, data: dict[str, Any]) -> None:
    """Write the generated records where every peer keeps them."""
    pipe = r.pipeline(transaction=False)
    for queue, items in data["queues"].items():
        pipe.sadd(NS + "queues", queue)
        if items:
            pipe.rpush(NS + "queue:" + queue, *items)
    for wid, (job, started, beat, processed) in data["workers"].items():
        pipe.sadd(NS + "workers", wid)
        if job is not None:
            pipe.set(NS + "worker:" + wid, job)
        if started is not None:
            pipe.set(NS + "worker:" + wid + ":started", started)
        if beat is not None:
            pipe.hset(NS + "workers:heartbeat", wid, beat)
        pipe.set(NS + "stat:processed:" + wid, processed)
    if data["failures"]:
        pipe.rpush(NS + "failed", *data["failures"])
    for name, items in data["failed_queues"].items():
        pipe.sadd(NS + "failed_queues", name)
        if items:
            pipe.rpush(NS + name, *items)
    for ts, items in data["delayed"].items():
        pipe.zadd(NS + "delayed_queue_schedule", {str(ts): ts})
        pipe.rpush(NS + f"delayed:{ts}", *items)
    for member, score in data["delayed_junk"]:
        pipe.zadd(NS + "delayed_queue_schedule", {member: score})
    for name, raw in data["schedules"].items():
        pipe.hset(NS + "persistent_schedules", name, raw)
    for job_id, raw in data["statuses"].items():
        pipe.set(NS + f"job:{job_id}:status", raw)
    for name, value in data["stats"].items():
        pipe.set(NS + "stat:" + name, value)
    pipe.execute()


def _fill(path: str, data: dict[str, Any]) -> list[str]:
    """Concrete paths for a route: each path parameter filled with what the example stored."""
    first = {
        "queue": next(iter(data["queues"])),
        "name": next(iter(data["workers"]), "nobody:1:q"),
        "list": next(iter(data["failed_queues"]), "failed"),
        "key": "failed",
        "klass": "A",
        "timestamp": str(next(iter(data["delayed"]), 0)),
        "id": "0123456789abcdef",
    }
    out = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: _quote(first.get(m.group(1), "0123456789abcdef")), path)
    if "/raw/" in path:  # a record's whole bytes: a list entry needs its index
        return [out + "?index=0", out + "?index=99"]
    variants = [out, out + "?start=5", out + "?start=-3&cursor=x&id=" + _quote(next(iter(data["statuses"]), "x"))]
    if "{name" in path:
        host = str(first["name"]).split(":", 1)[0]
        variants.append(re.sub(r"\{name:path\}", _quote(host or "all"), path))
    return variants


def _quote(value: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(value, safe="") or "%20"


def _get_routes(app: Any) -> list[str]:
    return [r.path for r in app.app.routes if isinstance(r, Route) and "GET" in (r.methods or ())]


CLI_READERS = [
    ["queues"], ["peek", "q"], ["failed", "list"], ["failed", "list", "--list", "x_failed"], ["workers"],
    ["delayed", "list"], ["delayed", "count"], ["schedule", "list"], ["status", "abc"],
]  # fmt: skip


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking these examples takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=hostile)
def test_every_page_api_route_and_cli_reader_survives_any_records(redis_url: str, data: dict[str, Any]) -> None:
    r = redis.Redis.from_url(redis_url)
    r.flushall()
    store(r, data)
    app = create_app(Resque(redis_url, namespace="resque"))
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        for route in _get_routes(app):
            if route.startswith("/static"):
                continue
            for path in _fill(route, data):
                response = client.get(path)
                where = f"GET {path} -> {response.status_code}: {response.text[:300]!r}"
                assert response.status_code in (200, 302, 404), where
                assert "Traceback" not in response.text, where
                assert len(response.content) <= PAGE_LIMIT or path.startswith(("/raw/", "/api/raw/")), where
                if path.startswith("/api/") and "json" in response.headers.get("content-type", ""):
                    response.json()
    runner = CliRunner()
    for args in CLI_READERS:
        result = runner.invoke(main, ["--redis", redis_url, *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Traceback" not in result.output, (args, result.output[-500:])
