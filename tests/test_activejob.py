"""ActiveJob payloads: Rails 6.1's bytes (spec/vectors/activejob.json) read to Python values and
written back byte for byte; wrapped jobs run by a real worker as the Python job of their
``job_class``; enqueued by the clients and the CLI; shown as themselves; counted by doctor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs.harness import run_burst
from rails_kinds import EVERY_KIND_ARGS, EVERY_KIND_KWARGS

from resque_compat import Resque, Retry
from resque_compat.activejob import (
    WRAPPER_CLASS,
    ArgumentFormatError,
    Duration,
    GlobalID,
    HashWithIndifferentAccess,
    RubyKeywords,
    RubyModule,
    SerializationError,
    Symbol,
    build,
    current,
    decode_arguments,
    encode_arguments,
    unwrap,
    wrapper_args,
)
from resque_compat.activejob.display import shown
from resque_compat.aio import AsyncResque
from resque_compat.cli import main
from resque_compat.doctor import Doctor
from resque_compat.protocol import JobPayload, encode_json
from resque_compat.registry import EnvelopeError, JobRegistry, UnknownJobError

VECTORS = {
    v["name"]: v
    for v in json.loads((Path(__file__).resolve().parent.parent / "spec/vectors/activejob.json").read_text())["vectors"]
}


def exact_types(value: Any) -> Any:
    """The value with every type spelled out: == alone would not tell a Symbol from a str."""
    if isinstance(value, dict):
        return (type(value), [(type(k), k, exact_types(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [exact_types(v) for v in value]
    if isinstance(value, datetime):
        return (type(value), value, value.utcoffset())
    if isinstance(value, Duration):
        return (Duration, value.value, dict(value.parts))
    return (type(value), value)


def vector_job(name: str) -> tuple[JobPayload, Any]:
    payload = JobPayload.decode(VECTORS[name]["bytes"])
    return payload, payload.args[0]


# -- the golden vectors ------------------------------------------------------------------------
def test_every_kind_reads_as_python_values() -> None:
    payload, _ = vector_job("every_kind")
    unwrapped = unwrap(payload.args)
    assert exact_types(unwrapped.args) == exact_types(EVERY_KIND_ARGS)
    assert exact_types(unwrapped.kwargs) == exact_types(EVERY_KIND_KWARGS)
    assert all(type(k) is str for k in unwrapped.kwargs)
    assert unwrapped.job.job_class == "AjEchoJob" and unwrapped.job.executions == 1


def test_welcome_mail_reads_as_python_values() -> None:
    payload, _ = vector_job("welcome_mail")
    unwrapped = unwrap(payload.args)
    assert exact_types(unwrapped.args) == exact_types(
        [1, "two", {"k": "v"}, Symbol("sym"), datetime(2026, 11, 29, 10, tzinfo=UTC)]
    )
    assert unwrapped.kwargs == {"lang": "en"}


@pytest.mark.parametrize("name", ["welcome_mail", "every_kind", "failed_on_ruby"])
def test_rails_bytes_written_back_exactly(name: str) -> None:
    _, stored = vector_job(name)
    args, kwargs = decode_arguments(stored["arguments"])
    again = build(
        stored["job_class"],
        args,
        kwargs,
        queue=stored["queue_name"],
        job_id=stored["job_id"],
        locale=stored["locale"],
        timezone=stored["timezone"],
        enqueued_at=stored["enqueued_at"],
    )
    assert JobPayload.new(WRAPPER_CLASS, wrapper_args(again)).encode() == VECTORS[name]["bytes"].encode()


def test_client_writes_the_delayed_item_rails_writes(redis_url: str, r: redis.Redis) -> None:
    vector = VECTORS["every_kind_wait"]
    stored = json.loads(vector["bytes"])["args"][0]
    args, kwargs = decode_arguments(stored["arguments"])
    at = int(time.time()) + 3600  # the item's bytes hold no time: any future second gives the same ones
    job_id = Resque(redis_url).enqueue_active_job(
        "AjEchoJob",
        *args,
        queue="mail",
        kwargs=kwargs,
        at=at,
        job_id=stored["job_id"],
        timezone="Asia/Tokyo",
        enqueued_at=stored["enqueued_at"],
    )
    assert job_id == stored["job_id"]
    assert r.lrange(f"resque:delayed:{at}", 0, -1) == [vector["bytes"].encode()]
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [str(at).encode()]
    assert r.smembers("resque:timestamps:" + vector["bytes"]) == {f"delayed:{at}".encode()}


# -- decoding: strict, with the reason ------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"a": 1}, "must be a JSON array"),
        ([{"_aj_serialized": "ActiveJob::Serializers::MoneySerializer", "value": 1}], "MoneySerializer is not known"),
        ([{"_aj_serialized": "Money", "value": 1}], "Serializer Money is not known"),
        ([{"x": 1, "_aj_frozen": True}], "unknown ActiveJob marker _aj_frozen"),
        ([{"_aj_globalid": "gid://a/B/1", "x": 1}], "GlobalID reference"),
        ([{"_aj_globalid": 7}], "GlobalID reference"),
        ([{"_aj_serialized": "ActiveJob::Serializers::TimeSerializer", "value": "yesterday"}], "cannot read"),
        ([{"_aj_serialized": "ActiveJob::Serializers::SymbolSerializer", "value": 3}], "unexpected value"),
        ([{"a": 1, "_aj_symbol_keys": "a"}], "_aj_symbol_keys must list"),
        (
            [{"_aj_serialized": "ActiveJob::Serializers::DurationSerializer", "value": 1, "parts": [["x"]]}],
            "duration part",
        ),
    ],
)
def test_unknown_or_malformed_forms_raise(arguments: Any, reason: str) -> None:
    with pytest.raises(ArgumentFormatError, match=reason):
        decode_arguments(arguments)


def test_later_rails_forms_are_read() -> None:
    args, kwargs = decode_arguments([
        {"_aj_serialized": "ActiveJob::Serializers::BigDecimalSerializer", "value": "12.345"},
        {"a": {"b": 1, "_aj_ruby2_keywords": ["b"]}, "_aj_symbol_keys": []},
        {"x": 1},  # Rails before 6: no marker at all
    ])  # fmt: skip
    assert args == [Decimal("12.345"), {"a": {"b": 1}}, {"x": 1}] and kwargs == {}
    assert type(args[1]["a"]) is RubyKeywords


def test_global_id_parts_and_resolve() -> None:
    gid = GlobalID("gid://shop/User/42?tenant=eu")
    assert (gid.app, gid.model_name, gid.model_id, gid.params) == ("shop", "User", "42", {"tenant": "eu"})
    try:
        with pytest.raises(LookupError, match="no GlobalID locator for 'User'"):
            gid.resolve()
        GlobalID.locator()(lambda g: ("any", g.model_id))
        assert gid.resolve() == ("any", "42")
        GlobalID.locator("User")(lambda g: ("user", int(g.model_id)))
        assert gid.resolve() == ("user", 42)
    finally:
        GlobalID.forget_locators()


# -- encoding ------------------------------------------------------------------------------------
def test_python_values_written_as_rails_writes_them() -> None:
    encoded = encode_arguments(
        [
            datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            timedelta(days=1, hours=2, seconds=3.5),
            timedelta(0),
            Decimal("12"),
            Decimal("1E+3"),
            ("tuple", 1),
            HashWithIndifferentAccess({"a": {"b": 1}}),
        ],
        {"opts": {Symbol("s"): 1}},
    )
    assert encoded == [
        {"_aj_serialized": "ActiveJob::Serializers::TimeSerializer", "value": "2026-01-02T03:04:05.000006000Z"},
        {
            "_aj_serialized": "ActiveJob::Serializers::DurationSerializer",
            "value": 93603.5,
            "parts": [
                [{"_aj_serialized": "ActiveJob::Serializers::SymbolSerializer", "value": "days"}, 1],
                [{"_aj_serialized": "ActiveJob::Serializers::SymbolSerializer", "value": "hours"}, 2],
                [{"_aj_serialized": "ActiveJob::Serializers::SymbolSerializer", "value": "seconds"}, 3.5],
            ],
        },
        {
            "_aj_serialized": "ActiveJob::Serializers::DurationSerializer",
            "value": 0,
            "parts": [[{"_aj_serialized": "ActiveJob::Serializers::SymbolSerializer", "value": "seconds"}, 0]],
        },
        "12.0",
        "1000.0",
        ["tuple", 1],
        {"a": {"b": 1, "_aj_symbol_keys": []}, "_aj_hash_with_indifferent_access": True},
        {"opts": {"s": 1, "_aj_symbol_keys": ["s"]}, "_aj_ruby2_keywords": ["opts"]},
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime(2026, 1, 1), "naive datetime"),
        ({1: "a"}, "Only string and symbol hash keys"),
        ({"_aj_symbol_keys": 1}, "reserved key"),
        ({"_aj_anything": 1}, "reserved key"),
        (object(), "Unsupported argument type: object"),
        (float("nan"), "cannot be written as JSON"),
        ({1, 2}, "Unsupported argument type: set"),
    ],
)
def test_values_without_a_format_raise(value: Any, reason: str) -> None:
    with pytest.raises(SerializationError, match=reason):
        encode_arguments([value])


def _not_reserved(key: str) -> bool:
    return not key.startswith("_aj_")


_keys = st.one_of(st.text(max_size=5), st.text(max_size=5).map(Symbol)).filter(_not_reserved)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.text(max_size=8).map(Symbol),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.integers(min_value=-(10**6), max_value=10**6).map(Duration),
    st.text(min_size=1, max_size=8).map(RubyModule),
    st.integers(min_value=1).map(lambda n: GlobalID(f"gid://app/User/{n}")),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_keys, inner, max_size=3),
        st.dictionaries(st.text(max_size=5).filter(_not_reserved), inner, max_size=3).map(HashWithIndifferentAccess),
    ),
    max_leaves=10,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=150)
@given(
    st.lists(_values, max_size=4),
    st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True).filter(_not_reserved), _values, max_size=3),
)
def test_round_trip_through_json(args: list[Any], kwargs: dict[str, Any]) -> None:
    wire = json.loads(encode_json(encode_arguments(args, kwargs)))
    back_args, back_kwargs = decode_arguments(wire)
    assert exact_types(back_args) == exact_types(args)
    assert exact_types(back_kwargs) == exact_types(kwargs)


# -- the registry and the worker ---------------------------------------------------------------------
@pytest.fixture
def registry() -> Iterator[JobRegistry]:
    yield JobRegistry()


def push(r: redis.Redis, item: str | bytes, queue: str = "default") -> bytes:
    raw = item.encode() if isinstance(item, str) else item
    r.sadd("resque:queues", queue)
    r.rpush(f"resque:queue:{queue}", raw)
    return raw


def test_registry_resolves_the_wrapper_to_the_inner_job(registry: JobRegistry) -> None:
    def welcome(*args: Any, **kwargs: Any) -> None:
        return None

    registry.register("WelcomeMailJob", welcome)
    payload, stored = vector_job("welcome_mail")
    call = registry.resolve(payload.class_, payload.args)
    assert call.definition.target is welcome and call.class_name == "WelcomeMailJob"
    assert call.kwargs == {"lang": "en"} and call.args[3] == Symbol("sym")
    assert call.context.executions == 1 and call.context.job_id == stored["job_id"]
    # a retry policy pushes the next attempt with this one's count, and counts attempts by job id
    assert call.next_attempt() == (WRAPPER_CLASS, [{**stored, "executions": 1}])
    assert call.identity == ("WelcomeMailJob", [stored["job_id"]])
    plain = registry.resolve("WelcomeMailJob", [1])
    assert plain.args == [1] and plain.kwargs == {} and plain.context is None
    assert plain.next_attempt() == ("WelcomeMailJob", [1]) and plain.identity == ("WelcomeMailJob", [1])
    with pytest.raises(UnknownJobError, match="Could not find job class AjEchoJob"):
        registry.resolve(*vector_job("every_kind")[0].to_dict().values())
    with pytest.raises(EnvelopeError, match="one argument") as caught:
        registry.resolve(WRAPPER_CLASS, [1, 2])
    assert caught.value.resque_name == "ActiveJob::DeserializationError"


def test_a_wrapper_registered_by_hand_still_wins(registry: JobRegistry) -> None:
    def by_hand(job_data: Any) -> None:
        return None

    registry.register(WRAPPER_CLASS, by_hand)
    call = registry.resolve(WRAPPER_CLASS, [{"job_class": "X"}])
    assert call.definition.target is by_hand and call.args == [{"job_class": "X"}]


@pytest.mark.parametrize("fork", [False, True])
def test_worker_runs_rails_jobs_with_python_values(
    redis_url: str, r: redis.Redis, registry: JobRegistry, fork: bool
) -> None:
    client = Resque(redis_url)
    seen: list[Any] = []

    @registry.job("AjEchoJob")
    def echo(*args: Any, **kwargs: Any) -> None:
        job = current()
        assert job is not None
        record = {"args": repr(exact_types(list(args))), "kwargs": repr(exact_types(kwargs))}
        record.update(job_id=job.job_id, executions=job.executions, queue_name=job.queue_name)
        client.redis.rpush("resque:seen", json.dumps(record))
        seen.append(record)

    push(r, VECTORS["every_kind"]["bytes"], "mail")
    run_burst(redis_url, ("mail",), registry=registry, fork=fork)
    records = [json.loads(x) for x in r.lrange("resque:seen", 0, -1)]
    assert len(records) == 1
    assert records[0] == {
        "args": repr(exact_types(EVERY_KIND_ARGS)),
        "kwargs": repr(exact_types(EVERY_KIND_KWARGS)),
        "job_id": json.loads(VECTORS["every_kind"]["bytes"])["args"][0]["job_id"],
        "executions": 1,
        "queue_name": "mail",
    }
    assert r.llen("resque:failed") == 0 and r.get("resque:stat:processed") == b"1"
    assert current() is None


def test_inner_hooks_get_keyword_arguments(redis_url: str, r: redis.Redis, registry: JobRegistry) -> None:
    calls: list[str] = []

    @registry.job("WelcomeMailJob")
    class Welcome:
        @staticmethod
        def before_perform_note(*args: Any, **kwargs: Any) -> None:
            calls.append(f"before {len(args)} {kwargs}")

        @staticmethod
        def perform(user: int, *rest: Any, lang: str = "?") -> None:
            calls.append(f"perform {user} {lang}")
            raise RuntimeError("mail server down")

        @staticmethod
        def on_failure_note(exc: Exception, *args: Any, **kwargs: Any) -> None:
            calls.append(f"on_failure {exc} {kwargs}")

    raw = push(r, VECTORS["welcome_mail"]["bytes"], "mail")
    run_burst(redis_url, ("mail",), registry=registry)
    assert calls == [
        "before 5 {'lang': 'en'}",
        "perform 1 en",
        "on_failure mail server down {'lang': 'en'}",
    ]
    failure = r.lrange("resque:failed", 0, -1)
    assert len(failure) == 1
    assert b'"payload":' + raw + b',"exception":"RuntimeError","error":"mail server down"' in failure[0]


def test_bad_arguments_and_unknown_job_classes_fail_with_the_payload_whole(
    redis_url: str, r: redis.Redis, registry: JobRegistry
) -> None:
    registry.register("WelcomeMailJob", lambda *a, **k: None)
    stored = json.loads(VECTORS["welcome_mail"]["bytes"])
    stored["args"][0]["arguments"].append({"_aj_serialized": "MoneySerializer", "value": 5})
    money = push(r, encode_json(stored), "mail")
    unknown = push(r, VECTORS["every_kind"]["bytes"], "mail")
    run_burst(redis_url, ("mail",), registry=registry)
    records = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert [(f["exception"], f["error"]) for f in records] == [
        ("ActiveJob::DeserializationError", "Serializer MoneySerializer is not known"),
        ("resque_compat.registry.UnknownJobError", "Could not find job class AjEchoJob."),
    ]
    raw_failures = r.lrange("resque:failed", 0, -1)
    assert b'"payload":' + money + b"," in raw_failures[0] and b'"payload":' + unknown + b"," in raw_failures[1]


def test_failure_retry_reruns_with_the_same_attempt_number(
    redis_url: str, r: redis.Redis, registry: JobRegistry
) -> None:
    attempts: list[int] = []

    @registry.job("AjFailJob")
    def fail(*args: Any) -> None:
        job = current()
        assert job is not None
        attempts.append(job.executions)
        raise RuntimeError("interop failure")

    raw = push(r, VECTORS["failed_on_ruby"]["bytes"], "q3")
    run_burst(redis_url, ("q3",), registry=registry)
    client = Resque(redis_url)
    client.failures.retry(0)
    assert r.lrange("resque:queue:q3", 0, -1) == [raw]  # requeued as stored: executions 0, as Ruby's worker reads it
    run_burst(redis_url, ("q3",), registry=registry)
    assert attempts == [1, 1]


# -- enqueueing ------------------------------------------------------------------------------------
def test_sync_and_async_clients_write_the_same_bytes(redis_url: str, r: redis.Redis) -> None:
    client = Resque(redis_url)
    options: dict[str, Any] = {"job_id": "j-1", "enqueued_at": 1795955172.9, "queue": "mail"}
    args = (GlobalID("gid://app/User/1"), Symbol("welcome"))
    sync_id = client.enqueue_active_job("WelcomeMailJob", *args, kwargs={"lang": "en"}, **options)

    async def enqueue() -> str:
        async with AsyncResque(redis_url) as aio:
            return await aio.enqueue_active_job("WelcomeMailJob", *args, kwargs={"lang": "en"}, **options)

    async_id = asyncio.run(enqueue())
    first, second = r.lrange("resque:queue:mail", 0, -1)
    assert first == second and sync_id == async_id == "j-1"
    assert first == (
        b'{"class":"ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper","args":[{"job_class":"WelcomeMailJob",'
        b'"job_id":"j-1","provider_job_id":null,"queue_name":"mail","priority":null,"arguments":'
        b'[{"_aj_globalid":"gid://app/User/1"},{"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer",'
        b'"value":"welcome"},{"lang":"en","_aj_ruby2_keywords":["lang"]}],"executions":0,'
        b'"exception_executions":{},"locale":"en","timezone":null,"enqueued_at":"2026-11-29T12:26:12Z"}]}'
    )
    assert r.smembers("resque:queues") == {b"mail"}


def test_wait_schedules_through_the_delayed_layout(redis_url: str, r: redis.Redis) -> None:
    client = Resque(redis_url)

    async def enqueue() -> str:
        async with AsyncResque(redis_url) as aio:
            return await aio.enqueue_active_job("Later", 1, wait=3600)

    job_id = client.enqueue_active_job("Later", 1, at=datetime.now(UTC) + timedelta(hours=1))
    other = asyncio.run(enqueue())
    assert r.llen("resque:queue:default") == 0
    stamps = r.zrange("resque:delayed_queue_schedule", 0, -1)
    items = [json.loads(x) for ts in stamps for x in r.lrange(b"resque:delayed:" + ts, 0, -1)]
    assert sorted(i["args"][0]["job_id"] for i in items) == sorted([job_id, other])
    assert all(i["class"] == WRAPPER_CLASS and i["queue"] == "default" for i in items)
    with pytest.raises(ValueError, match="at or wait"):
        client.enqueue_active_job("Later", at=1, wait=1)
    with pytest.raises(SerializationError):
        client.enqueue_active_job("Later", object())


def test_cli_enqueues_for_rails(redis_url: str, r: redis.Redis) -> None:
    runner = CliRunner()
    args = '[1, {"_aj_serialized":"ActiveJob::Serializers::SymbolSerializer","value":"sym"}, {"k": "v"}]'
    result = runner.invoke(
        main, ["--redis", redis_url, "enqueue", "mail", "WelcomeMailJob", args, "--active-job", "--kwargs", '{"a":1}']
    )
    assert result.exit_code == 0, result.output
    item = json.loads(r.lindex("resque:queue:mail", 0) or b"")
    assert item["class"] == WRAPPER_CLASS
    assert item["args"][0]["job_id"] == result.output.strip()
    assert item["args"][0]["arguments"] == [
        1,
        {"_aj_serialized": "ActiveJob::Serializers::SymbolSerializer", "value": "sym"},
        {"k": "v", "_aj_symbol_keys": []},
        {"a": 1, "_aj_ruby2_keywords": ["a"]},
    ]
    later = runner.invoke(main, ["--redis", redis_url, "enqueue", "mail", "Later", "--active-job", "--in", "60"])
    assert later.exit_code == 0 and r.zcard("resque:delayed_queue_schedule") == 1
    for bad, reason in [
        (["--kwargs", "{}"], "--kwargs needs --active-job"),
        (["--active-job", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
        (["--active-job", "--track"], "--track cannot be combined with --active-job"),
    ]:
        failed = runner.invoke(main, ["--redis", redis_url, "enqueue", "mail", "X", *bad])
        assert failed.exit_code != 0 and reason in failed.output and len(failed.output.splitlines()) == 1
    broken = runner.invoke(
        main, ["--redis", redis_url, "enqueue", "mail", "X", '[{"_aj_serialized":"Nope"}]', "--active-job"]
    )
    assert broken.exit_code != 0 and "Serializer Nope is not known" in broken.output


# -- shown as what they are ----------------------------------------------------------------------------
def test_cli_and_display_show_the_inner_job(redis_url: str, r: redis.Redis) -> None:
    push(r, VECTORS["welcome_mail"]["bytes"], "mail")
    runner = CliRunner()
    table = runner.invoke(main, ["--redis", redis_url, "peek", "mail"]).output
    assert "WelcomeMailJob" in table and "fa90fe06-ed9f-4cfe-a67c-8c594941f69a" in table
    assert "JobWrapper" not in table and ":sym" in table
    listed = json.loads(runner.invoke(main, ["--redis", redis_url, "--json", "peek", "mail"]).output)
    assert listed[0]["payload"]["class"] == WRAPPER_CLASS  # the raw view keeps the wrapper
    assert listed[0]["active_job"]["job_class"] == "WelcomeMailJob"
    assert listed[0]["active_job"]["arguments"] == "1, 'two', {'k': 'v'}, :sym, 2026-11-29T10:00:00+00:00, lang='en'"
    odd = shown(JobPayload.new(WRAPPER_CLASS, [{"job_class": "Odd", "arguments": [{"_aj_x": 1}]}]))
    assert odd is not None and odd.problem and "_aj_x" in odd.arguments
    assert shown(JobPayload.new(WRAPPER_CLASS, ["not a job"])) is None


def test_failed_list_shows_the_inner_job(redis_url: str, r: redis.Redis, registry: JobRegistry) -> None:
    push(r, VECTORS["every_kind"]["bytes"], "mail")
    run_burst(redis_url, ("mail",), registry=registry)
    output = CliRunner().invoke(main, ["--redis", redis_url, "failed", "list"]).output
    job_id = json.loads(VECTORS["every_kind"]["bytes"])["args"][0]["job_id"]
    assert f"AjEchoJob ({job_id})" in output


def test_web_shows_the_inner_job_and_keeps_the_wrapper(redis_url: str, r: redis.Redis) -> None:
    import warnings  # noqa: PLC0415

    from resque_compat.web import create_app  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient  # noqa: PLC0415
    push(r, VECTORS["welcome_mail"]["bytes"], "mail")
    Resque(redis_url).enqueue_active_job("LaterJob", Symbol("x"), queue="mail", wait=600, job_id="later-1")
    with TestClient(create_app(Resque(redis_url)), base_url="http://localhost") as client:
        job = client.get("/api/queues/mail").json()["jobs"][0]
        assert job["shown_class"] == "WelcomeMailJob" and job["class"] == WRAPPER_CLASS
        assert job["active_job"]["job_id"] == "fa90fe06-ed9f-4cfe-a67c-8c594941f69a"
        assert job["args_text"].endswith(":sym, 2026-11-29T10:00:00+00:00, lang='en'")
        assert job["args"][0]["job_class"] == "WelcomeMailJob"
        page = client.get("/queues/mail").text
        assert "WelcomeMailJob" in page and "job fa90fe06-ed9f-4cfe-a67c-8c594941f69a" in page
        assert "as stored (ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper)" in page
        delayed = client.get("/delayed").text
        assert "LaterJob" in delayed
        stamp = r.zrange("resque:delayed_queue_schedule", 0, -1)[0].decode()
        assert "job later-1" in client.get(f"/delayed/{stamp}").text


def test_doctor_counts_wrapped_jobs_without_a_handler(redis_url: str, r: redis.Redis, registry: JobRegistry) -> None:
    registry.register("WelcomeMailJob", lambda *a, **k: None)
    push(r, VECTORS["welcome_mail"]["bytes"], "mail")
    push(r, VECTORS["every_kind"]["bytes"], "mail")
    push(r, VECTORS["every_kind"]["bytes"], "mail")
    push(r, encode_json({"class": WRAPPER_CLASS, "args": []}), "mail")
    report = Doctor(Resque(redis_url), registry, ["mail"], stale_after=60).run()
    check = next(c for c in report.checks if c.name == "job_classes")
    assert check.level == "fail" and "AjEchoJob (ActiveJob) in mail" in check.message
    assert check.details["unhandled"] == {"AjEchoJob": {"mail": 2}}
    assert check.details["unhandled_active_job"] == {"AjEchoJob": {"mail": 2}}
    assert check.details["undecodable"] == {"mail": 1}


def test_unknown_fields_of_later_rails_are_kept_in_order() -> None:
    stored = {
        "job_class": "J",
        "job_id": "1",
        "arguments": [],
        "executions": 2,
        "scheduled_at": "2026-11-29T10:00:00.000000000Z",  # Rails 7.1
        "enqueued_at": "2026-11-29T09:00:00.000000000Z",
    }
    unwrapped = unwrap([stored])
    assert unwrapped.job.executions == 3
    assert list(unwrapped.retry_args()[0].items()) == list({**stored, "executions": 3}.items())


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["_aj_serialized", "_aj_globalid", "_aj_symbol_keys", "_aj_ruby2_keywords", "value",
                             "parts", "_aj_hash_with_indifferent_access", "_aj_x", "k"]),
            inner, max_size=3,
        ),
        st.fixed_dictionaries({
            "_aj_serialized": st.sampled_from(["ActiveJob::Serializers::" + n for n in (
                "SymbolSerializer", "TimeSerializer", "DateTimeSerializer", "DateSerializer",
                "TimeWithZoneSerializer", "DurationSerializer", "ModuleSerializer", "BigDecimalSerializer")]),
            "value": inner, "parts": inner,
        }),
    ),
    max_leaves=8,
)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=300)
@given(st.lists(_json, max_size=3))
def test_any_json_reads_or_fails_with_the_reason(arguments: list[Any]) -> None:
    """Total: whatever a peer stored, reading it gives values or an ArgumentFormatError, and the
    display never raises."""
    with contextlib.suppress(ArgumentFormatError):
        decode_arguments(arguments)
    assert shown(JobPayload.new(WRAPPER_CLASS, [{"job_class": "J", "arguments": arguments}])) is not None


@pytest.mark.parametrize("fork", [False, True])
def test_a_retry_policy_on_the_python_job_applies_with_executions_counted(
    redis_url: str, r: redis.Redis, registry: JobRegistry, fork: bool
) -> None:
    client = Resque(redis_url)

    @registry.job("AjFailJob", retry=Retry(limit=2))
    def fail(*args: Any) -> None:
        job = current()
        assert job is not None
        client.redis.rpush("resque:attempts", job.executions)
        raise RuntimeError("interop failure")

    push(r, VECTORS["failed_on_ruby"]["bytes"], "q3")
    run_burst(redis_url, ("q3",), registry=registry, fork=fork)
    assert r.lrange("resque:attempts", 0, -1) == [b"1", b"2", b"3"]  # as retry_job carries executions
    failures = r.lrange("resque:failed", 0, -1)
    assert len(failures) == 1
    last = json.loads(failures[0])["payload"]["args"][0]
    stored = json.loads(VECTORS["failed_on_ruby"]["bytes"])["args"][0]
    assert last == {**stored, "executions": 2}  # the payload of the last attempt, as Rails' would be
