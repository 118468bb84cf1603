"""Client and CLI faults: Redis down, restarted, cut off mid-batch, slow, silent.

The promise under test: an enqueue call either returns (and every job it carried is in
Redis, once) or raises a ``redis.RedisError`` and wrote nothing, except in the one case no
client can rule out: the whole MULTI reached Redis and only the reply was lost. Then the
call raises and the batch landed whole; it is never half there.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis
from fault_helpers import namespace_keys, one_line_error, run_cli
from fault_results import ScenarioResult
from proxy import TcpProxy
from waiting import wait_for

from resque_compat import Resque
from resque_compat.protocol import JobPayload
from resque_compat.testing.redis_server import RedisServer

BATCH = 20
EXEC = b"*1\r\n$4\r\nEXEC\r\n"
MULTI = b"*1\r\n$5\r\nMULTI\r\n"


def _batch(tag: str) -> list[tuple[str, list[object]]]:
    return [("FaultJob", [tag, i, "x" * 40]) for i in range(BATCH)]


def _tags(client: redis.Redis, queue: str = "q") -> Counter[str]:
    """How many times each job (by its ``args[0]:args[1]``) is on the queue."""
    out: Counter[str] = Counter()
    for raw in client.lrange(f"resque:queue:{queue}", 0, -1):
        args = JobPayload.decode(raw).args
        out[f"{args[0]}:{args[1]}"] += 1
    return out


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A redis-server that fsyncs every write: a kill -9 loses nothing it acknowledged."""
    with RedisServer(None, "--appendonly", "yes", "--appendfsync", "always") as server:
        yield server


@pytest.mark.scenario("enqueue, Redis down")
def test_enqueue_while_redis_down_raises_and_writes_nothing(
    private_redis: RedisServer, fault_result: ScenarioResult
) -> None:
    resque = Resque(private_redis.url)
    resque.enqueue("q", "Before", 1)
    raw = private_redis.client()
    before = {k: dumped for k in namespace_keys(raw) if (dumped := raw.dump(k)) is not None}
    private_redis.kill()
    attempts: list[Callable[[], object]] = [
        lambda: resque.enqueue("q", "Down", 1),
        lambda: resque.enqueue("q", "Down", 2, track=True),
        lambda: resque.enqueue_many("q", _batch("down"), track=True),
        lambda: resque.push_raw("q", b'{"class":"Down","args":[]}'),
    ]
    for attempt in attempts:
        fault_result.faults += 1
        with pytest.raises(redis.ConnectionError):
            attempt()
        fault_result.refused += 1
    proc = run_cli("--redis", private_redis.url, "enqueue", "q", "Down", "[3]", "--track")
    fault_result.faults += 1
    line = one_line_error(proc)
    assert "cannot reach Redis" in line and str(private_redis.port) in line
    fault_result.refused += 1
    # The password of the address is never echoed back.
    proc = run_cli("--redis", f"redis://app:hunter2secret@127.0.0.1:{private_redis.port}/0", "queues")
    assert "hunter2secret" not in one_line_error(proc)

    private_redis.start()  # no persistence: Redis comes back empty, as configured
    assert namespace_keys(raw) == set()
    for key, dumped in before.items():  # put back what was there; nothing of the down period appears
        raw.restore(key, 0, dumped)
    # The same client object recovers by itself once Redis is back.
    job_id = resque.enqueue("q", "After", 1, track=True)
    assert job_id is not None and resque.status(job_id) is not None
    items = [JobPayload.decode(x).class_ for x in raw.lrange("resque:queue:q", 0, -1)]
    fault_result.jobs = 2
    fault_result.lost = 2 - sum(1 for c in items if c in ("Before", "After"))
    fault_result.doubled = max(0, len(items) - 2)
    assert items == ["Before", "After"]
    assert len(namespace_keys(raw)) == 3  # queues, queue:q, the one status key


@pytest.mark.scenario("enqueue_many, link cut mid-MULTI")
@pytest.mark.parametrize("track", [False, True], ids=["ruby", "tracked"])
def test_enqueue_many_cut_mid_batch_lands_whole_or_not_at_all(
    proxied_redis: tuple[RedisServer, TcpProxy], fault_result: ScenarioResult, track: bool
) -> None:
    server, proxy = proxied_redis
    raw = server.client()
    resque = Resque(proxy.url)
    resque.redis.ping()
    sent_before = proxy.bytes_up
    resque.enqueue_many("q", _batch("probe"), track=track)
    size = proxy.bytes_up - sent_before  # the whole MULTI … EXEC request, about
    raw.flushall()

    # Cut points across the whole request, plus each byte around EXEC (where it commits).
    cuts: list[tuple[int, bytes | None, bool]] = [(n, MULTI, False) for n in range(0, size - len(EXEC), size // 25)]
    cuts += [(n, EXEC, False) for n in range(len(EXEC))]
    cuts += [(0, EXEC, True)]  # the whole request arrives, the reply is lost
    landed_despite_error = 0
    for i, (offset, marker, reply_lost) in enumerate(cuts):
        tag = f"cut{i}"
        resque.redis.ping()  # a warm connection: the cut hits the MULTI, not the handshake
        if reply_lost:
            proxy.cut_before_reply(b"*1\r\n$4\r\nEXEC")
        else:
            proxy.cut_after(offset, marker=marker)
        fault_result.faults += 1
        try:
            ids = resque.enqueue_many("q", _batch(tag), track=track)
            acknowledged = True
        except redis.ConnectionError:
            ids, acknowledged = [], False
        landed = {k: v for k, v in _tags(raw).items() if k.startswith(tag + ":")}
        statuses = len(list(raw.scan_iter(match="resque:job:*:status")))
        assert len(landed) in (0, BATCH), f"cut {offset} after {marker!r}: half a batch landed: {len(landed)}"
        fault_result.doubled += sum(n - 1 for n in landed.values())
        if acknowledged:
            fault_result.jobs += BATCH
            fault_result.lost += BATCH - len(landed)
            if track:
                assert all(ids) and statuses == BATCH
        elif landed:
            landed_despite_error += 1
        else:
            fault_result.refused += 1
        if track:
            assert statuses == len(landed), "status keys and queue items are written together or not at all"
        raw.flushall()
    fault_result.note(f"{landed_despite_error} cut(s) after EXEC: raised, batch landed whole")
    assert fault_result.lost == 0 and fault_result.doubled == 0
    assert landed_despite_error >= 1  # the reply-lost cut: the ambiguous case exists, and stays whole


def _enqueue_loop(resque: Resque, stop: threading.Event, acked: list[str], refused: list[str]) -> None:
    """Enqueue one uniquely tagged job at a time until told to stop, sorting each attempt."""
    n = 0
    while not stop.is_set():
        tag = f"load:{n}"
        n += 1
        try:
            resque.enqueue("q", "FaultJob", "load", n - 1)
            acked.append(tag)
        except redis.RedisError:
            refused.append(tag)


def _grows(items: list[str], by: int) -> Callable[[], bool]:
    """A check for wait_for: ``items`` got ``by`` longer than it is now."""
    mark = len(items)
    return lambda: len(items) >= mark + by


def _check_load(raw: redis.Redis, acked: list[str], refused: list[str], result: ScenarioResult) -> None:
    present = _tags(raw)
    result.jobs = len(acked)
    result.lost = sum(1 for tag in acked if present[tag] == 0)
    result.doubled = sum(n - 1 for n in present.values() if n > 1)
    result.refused = sum(1 for tag in refused if present[tag] == 0)
    result.note(f"{len(refused) - result.refused} refused call(s) landed anyway (reply lost)")


@pytest.mark.scenario("enqueue under load, Redis kill -9 + restart")
def test_enqueue_load_survives_redis_restarts(durable_redis: RedisServer, fault_result: ScenarioResult) -> None:
    resque = Resque(durable_redis.url)
    raw = durable_redis.client()
    stop = threading.Event()
    acked: list[str] = []
    refused: list[str] = []
    loader = threading.Thread(target=_enqueue_loop, args=(resque, stop, acked, refused), daemon=True)
    loader.start()
    try:
        for _ in range(5):
            wait_for(_grows(acked, 50), what="enqueues to go through")
            durable_redis.kill()
            fault_result.faults += 1
            wait_for(_grows(refused, 1), what="an enqueue refused while Redis is down")
            durable_redis.start()
        mark = len(acked)
        wait_for(lambda: len(acked) > mark + 50, what="enqueues after the last restart")
    finally:
        stop.set()
        loader.join(10)
    _check_load(raw, acked, refused, fault_result)
    assert fault_result.lost == 0 and fault_result.doubled == 0


@pytest.mark.scenario("enqueue under load, proxy cuts every connection")
def test_enqueue_load_survives_connection_cuts(
    proxied_redis: tuple[RedisServer, TcpProxy], fault_result: ScenarioResult
) -> None:
    server, proxy = proxied_redis
    resque = Resque(proxy.url)
    stop = threading.Event()
    acked: list[str] = []
    refused: list[str] = []
    loader = threading.Thread(target=_enqueue_loop, args=(resque, stop, acked, refused), daemon=True)
    loader.start()
    try:
        for _ in range(20):
            wait_for(_grows(acked, 20), what="enqueues to go through")
            fault_result.faults += proxy.cut()
    finally:
        stop.set()
        loader.join(10)
    _check_load(server.client(), acked, refused, fault_result)
    assert fault_result.faults >= 20
    assert fault_result.lost == 0 and fault_result.doubled == 0


@pytest.mark.scenario("enqueue over a black-hole link")
def test_enqueue_over_silent_link_times_out_cleanly(
    proxied_redis: tuple[RedisServer, TcpProxy], fault_result: ScenarioResult
) -> None:
    server, proxy = proxied_redis
    url = proxy.url + "?socket_timeout=0.5&socket_connect_timeout=0.5"
    resque = Resque(url)
    resque.enqueue("q", "FaultJob", "slow", 0)
    proxy.set_delay(0.05)  # a slow link still works
    resque.enqueue("q", "FaultJob", "slow", 1)
    proxy.set_delay(0.0)
    proxy.set_drop(True)  # bytes vanish, nothing answers: only the timeout notices
    for i in range(3):
        fault_result.faults += 1
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            resque.enqueue_many("q", _batch(f"hole{i}"), track=True)
        fault_result.refused += 1
    line = one_line_error(run_cli("--redis", url, "enqueue", "q", "FaultJob", '["hole-cli", 0]'))
    fault_result.faults += 1
    fault_result.refused += 1
    assert "Redis" in line
    proxy.heal()
    proxy.cut()  # the stuck connections go; the client reconnects
    resque.enqueue("q", "FaultJob", "slow", 2)
    present = _tags(server.client())
    fault_result.jobs = 3
    fault_result.lost = 3 - sum(present[f"slow:{i}"] for i in range(3))
    fault_result.doubled = sum(n - 1 for n in present.values() if n > 1)
    assert set(present) == {"slow:0", "slow:1", "slow:2"}, "nothing sent into the black hole landed"
    assert not list(server.client().scan_iter(match="resque:job:*"))
