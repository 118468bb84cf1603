"""The cycle script run directly, one mode at a time, with the KEYS and ARGV that
``protocol.cycle.CycleCall`` builds: each test states every key the call leaves behind.

The same calls with a connection cut between the request and its reply are in
``tests/fault/test_fault_cycle.py``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import redis
from monitor import Monitor, undeclared_keys

from resque_compat.protocol import Keys
from resque_compat.protocol.cycle import (
    CycleCall,
    CycleKeys,
    CycleQueues,
    CycleResult,
    End,
    Kind,
    Reserve,
    decode_reply,
)
from resque_compat.protocol.scripts import WORKER_CYCLE
from resque_compat.worker.cycle import Cycle, Finish

KEYS = Keys("resque")
WID = "host:7:high,low"
CK = CycleKeys.for_worker(KEYS, WID)
QUEUES = CycleQueues.of(KEYS, ["high", "low"])
RUN_AT = "2026-11-29T16:00:00Z"
JOB = b'{"class":"Noop","args":[1]}'
JOB2 = b'{"class":"Noop","args":[2]}'
STATUS = "resque:job:abc:status"


def record(queue: str, item: bytes) -> bytes:
    return b'{"queue":"%s","run_at":"%s","payload":%s}' % (queue.encode(), RUN_AT.encode(), item)


def call(**fields: Any) -> CycleCall:
    return CycleCall(keys=CK, run_at=RUN_AT, queues=QUEUES, **fields)


def run(r: redis.Redis, c: CycleCall) -> CycleResult:
    reply: Any = r.eval(WORKER_CYCLE, c.numkeys(), *c.keys_list(), *c.argv())
    return decode_reply(reply, c.queues)


def dump(r: redis.Redis) -> dict[str, Any]:
    """Every key of the server and its value (lists in order, sets sorted)."""
    out: dict[str, Any] = {}
    for raw in r.keys("*"):
        key = raw.decode()
        kind = r.type(key).decode()
        if kind == "string":
            out[key] = r.get(key)
        elif kind == "list":
            out[key] = r.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(r.smembers(key))
        else:
            out[key] = kind
    return out


def holding(r: redis.Redis, queue: str, item: bytes) -> None:
    """The state after a reservation of ``item`` from ``queue``."""
    r.set(CK.worker, record(queue, item))


def test_the_call_lists_keys_and_arguments_in_the_scripts_order() -> None:
    c = call(
        end=End.FAIL,
        end_list="resque:high_failed",
        end_item=b"F",
        failed_queue="high_failed",
        status_key=STATUS,
        status=b"S",
        check=True,
        reserve=Reserve.QUEUES,
        reliable=True,
        recovering=4,
    )
    assert c.keys_list() == [
        "resque:worker:host:7:high,low",
        "resque:stat:processed",
        "resque:stat:processed:host:7:high,low",
        "resque:stat:failed",
        "resque:stat:failed:host:7:high,low",
        "resque:pause-all-workers",
        "resque:compat:control:host:7:high,low",
        "resque:compat:inflight:host:7:high,low",
        "resque:high_failed",
        "resque:failed_queues",
        STATUS,
        "resque:queue:high",
        "resque:queue:low",
    ]
    assert c.argv() == ["fail", b"F", "high_failed", b"S", "1", "1", RUN_AT, "1", "4", b"", b"", b'"high"', b'"low"']
    assert c.numkeys() == 13
    idle = call()  # queues are named only when the call reserves from them
    assert idle.keys_list()[8:] == ["resque:failed", "resque:failed_queues", CK.worker]
    assert idle.argv() == ["", b"", "", b"", "", "0", RUN_AT, "", "", b"", b""]
    assert idle.numkeys() == 11


# -- reserve ------------------------------------------------------------------------------------
def test_reserve_pops_the_first_queue_in_priority_order(r: redis.Redis) -> None:
    r.rpush("resque:queue:low", JOB2)
    assert run(r, call(reserve=Reserve.QUEUES)) == CycleResult(Kind.JOB, -1, queue="low", item=JOB2)
    r.rpush("resque:queue:high", JOB)
    r.delete(CK.worker)
    assert run(r, call(reserve=Reserve.QUEUES)) == CycleResult(Kind.JOB, -1, queue="high", item=JOB)
    assert dump(r) == {CK.worker: record("high", JOB)}


def test_reliable_reserve_moves_the_item_into_the_inflight_list(r: redis.Redis) -> None:
    r.rpush("resque:queue:high", JOB, JOB2)
    assert run(r, call(reserve=Reserve.QUEUES, reliable=True)).item == JOB
    assert dump(r) == {CK.worker: record("high", JOB), CK.inflight: [JOB], "resque:queue:high": [JOB2]}


def test_a_non_json_item_is_recorded_as_a_json_string(r: redis.Redis) -> None:
    r.rpush("resque:queue:low", b"not json")
    assert run(r, call(reserve=Reserve.QUEUES)).item == b"not json"
    assert dump(r) == {CK.worker: record("low", b'"not json"')}


def test_nothing_to_reserve_goes_idle(r: redis.Redis) -> None:
    assert run(r, call(reserve=Reserve.QUEUES)) == CycleResult(Kind.IDLE, -1)
    assert dump(r) == {}


# -- finish -------------------------------------------------------------------------------------
def test_ok_counts_writes_the_final_status_and_goes_idle(r: redis.Redis) -> None:
    holding(r, "high", JOB)
    r.rpush(CK.inflight, JOB)
    c = call(end=End.OK, status_key=STATUS, status=b'{"status":"completed"}', reserve=Reserve.QUEUES, reliable=True)
    assert run(r, c) == CycleResult(Kind.IDLE, 1)
    assert dump(r) == {CK.processed: b"1", CK.processed_by_worker: b"1", STATUS: b'{"status":"completed"}'}
    assert r.ttl(STATUS) == 86400


def test_ok_then_reserve_replaces_the_record_in_one_call(r: redis.Redis) -> None:
    holding(r, "high", JOB)
    r.rpush("resque:queue:low", JOB2)
    assert run(r, call(end=End.OK, reserve=Reserve.QUEUES)) == CycleResult(Kind.JOB, 1, queue="low", item=JOB2)
    assert dump(r) == {CK.processed: b"1", CK.processed_by_worker: b"1", CK.worker: record("low", JOB2)}


@pytest.mark.parametrize("multi", [False, True], ids=["redis", "redis_multi_queue"])
def test_fail_records_the_failure_and_counts_it(r: redis.Redis, multi: bool) -> None:
    holding(r, "high", JOB)
    failure_list = "resque:high_failed" if multi else "resque:failed"
    c = call(end=End.FAIL, end_list=failure_list, end_item=b"F", failed_queue="high_failed" if multi else "")
    assert run(r, c) == CycleResult(Kind.IDLE, 1)
    expected: dict[str, Any] = {
        CK.processed: b"1",
        CK.processed_by_worker: b"1",
        CK.failed: b"1",
        CK.failed_by_worker: b"1",
        failure_list: [b"F"],
    }
    if multi:
        expected[CK.failed_queues] = [b"high_failed"]
    assert dump(r) == expected


def test_release_puts_the_job_back_at_the_head_uncounted_with_status_waiting(r: redis.Redis) -> None:
    holding(r, "high", JOB)
    r.rpush(CK.inflight, JOB)
    r.rpush("resque:queue:high", JOB2)
    c = call(
        end=End.RELEASE,
        end_list="resque:queue:high",
        end_item=JOB,
        status_key=STATUS,
        status=b'{"status":"queued"}',
        reliable=True,
    )
    assert run(r, c) == CycleResult(Kind.IDLE, -1)
    assert dump(r) == {"resque:queue:high": [JOB, JOB2], STATUS: b'{"status":"queued"}'}
    assert r.ttl(STATUS) == -1


# -- control and pause --------------------------------------------------------------------------
def test_a_control_command_is_popped_before_reserving(r: redis.Redis) -> None:
    holding(r, "high", JOB)
    r.rpush(CK.control, b"pause", b"stop")
    r.rpush("resque:queue:high", JOB2)
    c = call(end=End.OK, check=True, reserve=Reserve.QUEUES)
    assert run(r, c) == CycleResult(Kind.CONTROL, 1, command="pause")
    assert dump(r) == {
        CK.processed: b"1",
        CK.processed_by_worker: b"1",
        CK.control: [b"stop"],
        "resque:queue:high": [JOB2],
    }


def test_pause_all_stops_reserving_only_when_checked(r: redis.Redis) -> None:
    r.set(CK.pause_all, b" TRUE ")
    r.rpush("resque:queue:high", JOB)
    assert run(r, call(check=True, reserve=Reserve.QUEUES)) == CycleResult(Kind.PAUSED, -1)
    assert r.llen("resque:queue:high") == 1
    assert run(r, call(reserve=Reserve.QUEUES)).kind is Kind.JOB  # not checked this call: reserves


# -- adopt --------------------------------------------------------------------------------------
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_adopt_records_the_item_a_blocking_pop_moved(r: redis.Redis, reliable: bool) -> None:
    r.rpush(CK.inflight, JOB)  # BLMOVE queue:low -> inflight
    c = call(reserve=Reserve.ADOPT, adopt_queue="low", reliable=reliable)
    assert c.keys_list()[11:] == []  # adopting names no queue key
    assert run(r, c) == CycleResult(Kind.JOB, -1, queue="", item=JOB)
    expected: dict[str, Any] = {CK.worker: record("low", JOB)}
    if reliable:
        expected[CK.inflight] = [JOB]  # kept until the finish
    assert dump(r) == expected


# -- guard --------------------------------------------------------------------------------------
def test_guard_finishes_while_the_record_still_holds_the_item(r: redis.Redis) -> None:
    holding(r, "high", JOB)
    r.rpush("resque:queue:high", JOB2)
    assert run(r, call(end=End.OK, reserve=Reserve.GUARD, guard=JOB)) == CycleResult(Kind.IDLE, 1)
    assert dump(r) == {CK.processed: b"1", CK.processed_by_worker: b"1", "resque:queue:high": [JOB2]}


def test_guard_writes_nothing_once_a_pruner_took_the_job(r: redis.Redis) -> None:
    holding(r, "high", JOB2)  # another job: the record is not ours any more
    before = dump(r)
    assert run(r, call(end=End.FAIL, end_item=b"F", reserve=Reserve.GUARD, guard=JOB)) == CycleResult(Kind.IDLE, -1)
    r.delete(CK.worker)
    assert run(r, call(end=End.OK, reserve=Reserve.GUARD, guard=JOB)) == CycleResult(Kind.IDLE, -1)
    assert before == {CK.worker: record("high", JOB2)} and dump(r) == {}


# -- recovering: the call is sent again after a connection error ---------------------------------
def test_recovering_a_finish_that_never_ran_applies_it(r: redis.Redis) -> None:
    holding(r, "high", JOB)
    r.set(CK.processed_by_worker, 3)
    r.rpush("resque:queue:high", JOB2)
    c = call(end=End.OK, reserve=Reserve.QUEUES, recovering=3)
    assert run(r, c) == CycleResult(Kind.JOB, 4, queue="high", item=JOB2)
    assert dump(r) == {CK.processed: b"1", CK.processed_by_worker: b"4", CK.worker: record("high", JOB2)}


def test_recovering_a_finish_that_ran_returns_what_it_reserved_uncounted(r: redis.Redis) -> None:
    r.set(CK.processed_by_worker, 4)  # the lost call ran: 3 -> 4, and reserved JOB2
    r.set(CK.processed, 4)
    holding(r, "high", JOB2)
    r.rpush("resque:queue:high", b"behind")
    before = dump(r)
    c = call(end=End.OK, reserve=Reserve.QUEUES, recovering=3)
    assert run(r, c) == CycleResult(Kind.RECOVERED, 4, record=record("high", JOB2))
    assert dump(r) == before  # nothing counted twice, nothing popped


def test_recovering_a_finish_that_ran_and_went_idle(r: redis.Redis) -> None:
    r.set(CK.processed_by_worker, 4)
    before = dump(r)
    assert run(r, call(end=End.FAIL, end_item=b"F", recovering=3)) == CycleResult(Kind.IDLE, 4)
    assert dump(r) == before


def test_recovering_a_reservation_that_ran_returns_its_record(r: redis.Redis) -> None:
    holding(r, "low", JOB)  # the lost call (no finish) reserved JOB
    r.rpush("resque:queue:low", JOB2)
    recovered = CycleResult(Kind.RECOVERED, -1, record=record("low", JOB))
    assert run(r, call(reserve=Reserve.QUEUES, recovering=0)) == recovered
    assert r.lrange("resque:queue:low", 0, -1) == [JOB2]


def test_recovering_a_release_that_ran_pushes_nothing_again(r: redis.Redis) -> None:
    r.rpush("resque:queue:high", JOB)  # the lost release ran: pushed back, worker:<id> gone
    c = call(end=End.RELEASE, end_list="resque:queue:high", end_item=JOB, recovering=0)
    assert run(r, c) == CycleResult(Kind.IDLE, -1)
    assert dump(r) == {"resque:queue:high": [JOB]}
    holding(r, "high", JOB)  # it never ran: apply it
    r.delete("resque:queue:high")
    assert run(r, c) == CycleResult(Kind.IDLE, -1)
    assert dump(r) == {"resque:queue:high": [JOB]}


# -- the sender ---------------------------------------------------------------------------------
def test_the_cycle_loads_its_script_again_after_a_script_flush(redis_url: str, r: redis.Redis) -> None:
    cycle = Cycle(redis.Redis.from_url(redis_url), KEYS, WID)
    cycle.set_queues(["high", "low"])
    r.rpush("resque:queue:low", JOB)
    r.script_flush()  # as after a Redis restart: the EVALSHA meets NOSCRIPT and never ran
    assert cycle.call(None, check=True, reserve=True) == CycleResult(Kind.JOB, -1, queue="low", item=JOB)
    assert r.script_exists(cycle.sha) == [True]
    assert r.lrange("resque:queue:low", 0, -1) == []


def test_every_key_the_cycle_script_touches_is_in_keys(redis_url: str, r: redis.Redis) -> None:
    """Redis's scripting rule, which Redis Cluster enforces: every mode, every branch taken."""
    multi = call(end=End.FAIL, end_list="resque:high_failed", end_item=b"F", failed_queue="high_failed")
    with Monitor(redis_url) as monitor:
        r.rpush("resque:queue:low", JOB, b"not json", JOB2)
        assert run(r, call(check=True, reserve=Reserve.QUEUES, reliable=True)).kind is Kind.JOB
        assert run(r, dataclasses.replace(multi, status_key=STATUS, status=b"S", reserve=Reserve.QUEUES)).item
        assert run(r, call(end=End.RELEASE, end_list="resque:queue:low", end_item=b"x", reliable=True)).processed == -1
        r.rpush(CK.inflight, JOB)
        assert run(r, call(reserve=Reserve.ADOPT, adopt_queue="low")).kind is Kind.JOB
        assert run(r, call(end=End.OK, reserve=Reserve.GUARD, guard=JOB)).processed == 2
        assert run(r, call(end=End.OK, reserve=Reserve.QUEUES, recovering=0)).kind is Kind.JOB  # applied
        assert run(r, call(end=End.OK, reserve=Reserve.QUEUES, recovering=2)).kind is Kind.RECOVERED
        assert run(r, call(reserve=Reserve.QUEUES, recovering=0)).kind is Kind.RECOVERED
        r.rpush(CK.control, b"stop")
        r.set(CK.pause_all, b"true")
        assert run(r, call(end=End.OK, check=True, reserve=Reserve.QUEUES)).kind is Kind.CONTROL
        assert run(r, call(check=True, reserve=Reserve.QUEUES)).kind is Kind.PAUSED
    scripts, bad = undeclared_keys(redis_url, monitor.lines)
    assert scripts == 10
    assert bad == []


class _Recording:
    """The cycle's wire, keeping every request's bytes."""

    def __init__(self, wire: Any) -> None:
        self.wire, self.sent = wire, []

    def call(self, parts: list[bytes]) -> Any:
        self.sent.append(b"".join(parts))
        return self.wire.call(parts)


class _OneSecond(Cycle):
    """A cycle whose clock stays in one second, so its steady-state bytes are comparable."""

    def run_at(self) -> str:
        return RUN_AT


def test_the_steady_state_resends_exactly_the_bytes_the_general_path_packs(redis_url: str, r: redis.Redis) -> None:
    cycle = _OneSecond(redis.Redis.from_url(redis_url), KEYS, WID)
    cycle.set_queues(["high", "low"])
    wire = cycle._wire = _Recording(cycle._wire)  # type: ignore[assignment]
    r.rpush("resque:queue:low", JOB, JOB2)
    ok = Finish("low")
    assert cycle.call(None, check=False, reserve=True) == CycleResult(Kind.JOB, -1, queue="low", item=JOB)
    assert cycle.call(ok, check=False, reserve=True) == CycleResult(Kind.JOB, 1, queue="low", item=JOB2)
    assert cycle.call(Finish("high"), check=False, reserve=True) == CycleResult(Kind.IDLE, 2)
    general = [b"".join(cycle.pack(cycle.build(f, check=False, reserve=True))) for f in (None, ok, ok)]
    assert wire.sent == general
    assert wire.sent[1] == wire.sent[2]  # an ok finish does not name its queue: one packing serves both


def test_the_steady_state_reloads_the_script_after_a_script_flush(redis_url: str, r: redis.Redis) -> None:
    cycle = Cycle(redis.Redis.from_url(redis_url), KEYS, WID)
    cycle.set_queues(["high", "low"])
    r.rpush("resque:queue:high", JOB, JOB2)
    assert cycle.call(None, check=False, reserve=True).item == JOB  # packed and kept
    r.script_flush()
    assert cycle.call(Finish("high"), check=False, reserve=True) == CycleResult(Kind.JOB, 1, queue="high", item=JOB2)
    assert r.get("resque:stat:processed") == b"1"
