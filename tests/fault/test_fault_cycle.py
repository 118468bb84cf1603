"""The cycle call's recovery branch, driven on purpose: the proxy cuts the worker's connection
right after the whole EVALSHA went through (the script ran, its reply is lost) or one byte short
of it (it never ran), and the call sent again with ``recovering`` must neither count a job twice
nor lose one.

The worker does the same (``Fetcher._call``: retry with the per-worker processed count seen
before the error); here the calls are made one by one so each cut hits the call it is aimed at."""

from __future__ import annotations

import dataclasses

import pytest
import redis
from fault_results import ScenarioResult
from proxy import TcpProxy

from resque_compat.protocol import Keys
from resque_compat.protocol.cycle import CycleCall, CycleResult, Kind
from resque_compat.testing.redis_server import RedisServer
from resque_compat.worker.cycle import Cycle, Finish

WID = "host:7:q"
JOB1 = b'{"class":"Noop","args":[1]}'
JOB2 = b'{"class":"Noop","args":[2]}'
KEYS = Keys("resque")


def cut_during(proxy: TcpProxy, cycle: Cycle, call: CycleCall, *, ran: bool) -> None:
    """Send ``call`` while the proxy cuts it: after its last byte, the reply lost (``ran``), or
    before its last byte (Redis never saw it whole)."""
    size = len(b"".join(cycle.pack(call)))
    proxy.cut_after(size if ran else size - 1, reply_lost=ran)
    with pytest.raises(redis.ConnectionError):
        cycle.send(call)


def setup(server: RedisServer, proxy: TcpProxy, *, reliable: bool) -> tuple[redis.Redis, Cycle]:
    raw = server.client()
    raw.rpush(KEYS.queue("q"), JOB1, JOB2)
    cycle = Cycle(redis.Redis.from_url(proxy.url), KEYS, WID, reliable=reliable)  # its link is open: a cut
    # armed now hits the next EVALSHA, not a handshake
    cycle.set_queues(["q"])
    return raw, cycle


@pytest.mark.scenario("cycle call, link cut around EVALSHA")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
@pytest.mark.parametrize("failed", [False, True], ids=["ok", "fail"])
@pytest.mark.parametrize("ran", [True, False], ids=["reply-lost", "never-ran"])
def test_a_cut_finish_is_counted_once_and_the_next_job_kept(
    proxied_redis: tuple[RedisServer, TcpProxy], fault_result: ScenarioResult, reliable: bool, failed: bool, ran: bool
) -> None:
    server, proxy = proxied_redis
    raw, cycle = setup(server, proxy, reliable=reliable)
    assert cycle.call(None, check=False, reserve=True) == CycleResult(Kind.JOB, -1, queue="q", item=JOB1)
    seen = 0  # the worker's processed count before the finish (a new worker: 0)
    finish = Finish("q", failure=b"F" if failed else None)
    call = cycle.build(finish, check=True, reserve=True)
    fault_result.jobs += 2
    fault_result.faults += 1
    cut_during(proxy, cycle, call, ran=ran)
    assert raw.get(KEYS.stat("processed", WID)) == (b"1" if ran else None)
    assert raw.llen(KEYS.queue("q")) == (0 if ran else 1)

    again = cycle.send(dataclasses.replace(call, recovering=seen))
    record = raw.get(KEYS.worker(WID))
    assert record is not None and record.endswith(b'"payload":' + JOB2 + b"}")
    if ran:
        assert again == CycleResult(Kind.RECOVERED, 1, record=record)
    else:
        assert again == CycleResult(Kind.JOB, 1, queue="q", item=JOB2)
    assert cycle.call(Finish("q"), check=True, reserve=True) == CycleResult(Kind.IDLE, 2)

    processed = int(raw.get(KEYS.stat("processed")) or 0)
    failures = raw.lrange(KEYS.failed, 0, -1)
    fault_result.completed += processed - len(failures)
    fault_result.failed += len(failures)
    fault_result.doubled += max(0, processed - 2)
    fault_result.lost += max(0, 2 - processed)
    assert processed == 2 and int(raw.get(KEYS.stat("processed", WID)) or 0) == 2
    assert failures == ([b"F"] if failed else [])
    assert raw.get(KEYS.stat("failed")) == (b"1" if failed else None)
    assert raw.exists(KEYS.queue("q"), KEYS.worker(WID), KEYS.inflight(WID)) == 0


@pytest.mark.scenario("cycle call, reservation reply lost")
@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_a_cut_reservation_is_recovered_not_popped_again(
    proxied_redis: tuple[RedisServer, TcpProxy], fault_result: ScenarioResult, reliable: bool
) -> None:
    server, proxy = proxied_redis
    raw, cycle = setup(server, proxy, reliable=reliable)
    call = cycle.build(None, check=True, reserve=True)
    fault_result.jobs += 2
    fault_result.faults += 1
    cut_during(proxy, cycle, call, ran=True)
    record = raw.get(KEYS.worker(WID))
    assert record is not None and record.endswith(b'"payload":' + JOB1 + b"}")

    assert cycle.send(dataclasses.replace(call, recovering=0)) == CycleResult(Kind.RECOVERED, -1, record=record)
    assert raw.lrange(KEYS.queue("q"), 0, -1) == [JOB2]  # JOB1 is ours, JOB2 still queued
    assert raw.lrange(KEYS.inflight(WID), 0, -1) == ([JOB1] if reliable else [])
    assert cycle.call(Finish("q"), check=True, reserve=True) == CycleResult(Kind.JOB, 1, queue="q", item=JOB2)
    assert cycle.call(Finish("q"), check=True, reserve=True) == CycleResult(Kind.IDLE, 2)
    fault_result.completed += int(raw.get(KEYS.stat("processed")) or 0)
    assert raw.get(KEYS.stat("processed")) == b"2"
