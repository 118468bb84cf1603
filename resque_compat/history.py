"""The history sampler: once a minute, one process records the counters for the dashboard's graphs.

Nothing on the job path writes history. Processes that already loop (every resque-compat
worker's heartbeat thread, the scheduler daemon, the dashboard) call :meth:`Sampler.tick`;
it does nothing until the next minute of Redis' clock, then one ``SET NX`` decides which of
them records that minute. The winner reads what every peer already keeps (``stat:processed``,
``stat:failed``, each queue's LLEN, the tail of the failure lists) and stores one sample into
the capped tiers of :mod:`resque_compat.protocol.history`. A minute nobody recorded stays
absent, so the graphs show a gap rather than an invented zero.

Failures per class have no counter in Resque, so the winner counts the failures whose
``failed_at`` falls between the previous recorded minute and now (newest first, at most
``SCAN_LIMIT`` entries), and adds them to a small cumulative hash.

:func:`recorded` and :func:`redis_now` read it back for the dashboard's graphs.
"""

from __future__ import annotations

import calendar
import functools
import logging
import os
import re
import secrets
import threading
import time

import redis

from resque_compat.client import Resque
from resque_compat.protocol import Keys, ProtocolError, decode_json, timefmt
from resque_compat.protocol.history import (
    HISTORY_TTL,
    MAX_CLASSES,
    MAX_NAME,
    MAX_QUEUES,
    OTHER_CLASS,
    TIERS,
    HistorySample,
    Tier,
    decode_sample,
    encode_sample,
)
from resque_compat.protocol.keys import FAILED_LIST, Stat
from resque_compat.protocol.scripts import RECORD_SAMPLE
from resque_compat.replies import raw, text

log = logging.getLogger("resque_compat.history")

LOCK_SECONDS = 120
#: failures are counted up to this many seconds before now (a failure is written just after its failed_at)
CLASS_LAG = 5
#: after a gap, failures are counted back at most this far
CLASS_LOOKBACK = 3600
FIRST_CHUNK = 16  # most minutes add few failures: read a little first, then chunks of up to SCAN_CHUNK
SCAN_CHUNK = 256
#: failure entries read per sample, over every failure list
SCAN_LIMIT = 2000
#: queues measured per sample (LLEN each); the deepest MAX_QUEUES are kept
MAX_QUEUES_READ = 5000
UNREADABLE_CLASS = "(unreadable)"
_UNTIL = "classes_until"


def redis_now(resque: Resque) -> float:
    """Redis' clock, the one the samples are stamped with (unix seconds)."""
    secs, micros = resque.redis.time()
    return float(secs + micros / 1e6)


def recorded(resque: Resque, tier: Tier) -> list[HistorySample]:
    """A tier's samples, newest first; a damaged entry is left out (the graphs show a gap)."""
    samples = []
    for item in resque.redis.lrange(resque.keys.history(tier.name), 0, tier.cap - 1):
        try:
            samples.append(decode_sample(raw(item)))
        except ProtocolError:
            continue
    return samples


class Sampler:
    """Records history samples; cheap to tick often (one local comparison until a minute is due)."""

    def __init__(self, client: redis.Redis, keys: Keys, enabled: bool | None = None) -> None:
        self.redis = client
        self.keys = keys
        #: ``RESQUE_HISTORY=off`` keeps this process out of the sampling
        self.enabled = history_enabled() if enabled is None else enabled
        self.token = secrets.token_hex(8)
        self._record = client.register_script(RECORD_SAMPLE)
        self._next_try = 0.0  # time.monotonic() of the next attempt

    def tick(self) -> bool:
        """Record this minute unless another sampler did; True when this call recorded.

        Never raises: history is a convenience, and the loops that tick have other work to do.
        """
        if not self.enabled or time.monotonic() < self._next_try:
            return False
        try:
            return self.try_record()
        except redis.RedisError as exc:
            log.debug("history sample: %s", exc)
            self._next_try = time.monotonic() + 5
        except Exception:
            log.exception("history sampler error")
            self._next_try = time.monotonic() + 60
        return False

    def try_record(self) -> bool:
        """Take this minute's lock (Redis' clock) and record; next attempt just after the next minute."""
        secs, micros = self.redis.time()
        self._next_try = time.monotonic() + (60 - secs % 60) + 1.0
        if not self.redis.set(self.keys.history_lock(secs // 60), self.token, nx=True, ex=LOCK_SECONDS):
            return False
        self.record(secs + micros / 1e6)
        return True

    # -- one sample ---------------------------------------------------------------------
    def record(self, t: float) -> HistorySample:
        """Read the counters and store them as the sample of time ``t`` (Redis time, seconds)."""
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.stat(Stat.PROCESSED))
        pipe.get(keys.stat(Stat.FAILED))
        pipe.smembers(keys.queues)
        pipe.smembers(keys.failed_queues)
        pipe.hget(keys.history_state, _UNTIL)
        pipe.hkeys(keys.history_classes)
        processed, failed, queue_names, failure_lists, until_raw, known_classes = pipe.execute()

        names = sorted(text(n) for n in queue_names)[:MAX_QUEUES_READ]
        for name in names:
            pipe.llen(keys.queue(name))
        sizes = [int(n) for n in pipe.execute()] if names else []
        deepest = sorted(zip(names, sizes, strict=True), key=lambda item: (-item[1], item[0]))[:MAX_QUEUES]

        until = int(t) - CLASS_LAG
        since = max(_float(until_raw, until - 60), until - CLASS_LOOKBACK)
        lists = sorted({FAILED_LIST} | {text(n) for n in failure_lists})
        counts = self._count_failures(lists, since, until) if until > since else {}
        classes = self._add_classes(counts, {text(k) for k in known_classes}, max(until, int(since)))

        sample = HistorySample(
            t=t,
            processed=_counter(processed),
            failed=_counter(failed),
            queued=sum(sizes),
            queues={name[:MAX_NAME]: size for name, size in deepest},
            classes=classes,
        )
        args: list[str | int | bytes] = [encode_sample(sample), HISTORY_TTL]
        for tier in TIERS:
            args += [tier.name, int(t // tier.step), tier.cap]
        self._record(keys=[keys.history_state, *(keys.history(tier.name) for tier in TIERS)], args=args)
        return sample

    def _count_failures(self, lists: list[str], since: float, until: int) -> dict[str, int]:
        """Failures per class with ``since <= failed_at < until``, reading each list from its tail
        until a chunk is all older (failures are appended as they happen)."""
        counts: dict[str, int] = {}
        budget = SCAN_LIMIT
        for name in lists:
            key = self.keys.failed_list(name)
            end = int(self.redis.llen(key))
            size = FIRST_CHUNK
            while end > 0 and budget > 0:
                size = min(size, end, budget)
                chunk = self.redis.lrange(key, end - size, end - 1)
                end -= size
                budget -= size
                size = min(size * 4, SCAN_CHUNK)
                older = True
                for item in chunk:
                    failed_at, cls = _failure_fields(raw(item))
                    moment = _epoch(failed_at) if isinstance(failed_at, str) else None
                    if moment is None:
                        continue  # an unreadable time says nothing about where the window ends
                    if moment >= since:
                        older = False
                        if moment < until:
                            counts[cls] = counts.get(cls, 0) + 1
                if older and chunk:
                    break
        return counts

    def _add_classes(self, counts: dict[str, int], known: set[str], until: int) -> dict[str, int]:
        """Add to the cumulative per-class hash (new classes beyond MAX_CLASSES go to one bucket),
        move the counting mark, and return the totals."""
        pipe = self.redis.pipeline(transaction=True)
        room = MAX_CLASSES - len(known)
        for cls, n in sorted(counts.items(), key=lambda item: -item[1]):
            field = cls
            if cls not in known:
                if room <= 1:
                    field = OTHER_CLASS
                else:
                    room -= 1
                    known.add(cls)
            pipe.hincrby(self.keys.history_classes, field, n)
        pipe.hset(self.keys.history_state, _UNTIL, until)
        pipe.hgetall(self.keys.history_classes)
        pipe.expire(self.keys.history_classes, HISTORY_TTL)
        totals = pipe.execute()[-2]
        return {text(k): _counter(v) or 0 for k, v in totals.items()}


def history_enabled() -> bool:
    return os.environ.get("RESQUE_HISTORY", "on").strip().lower() not in ("off", "0", "false", "no")


def _counter(value: object) -> int | None:
    """A peer's counter: missing is 0, anything that is not an integer is None (unknown)."""
    if value is None:
        return 0
    try:
        return int(text(value))
    except ValueError:
        return None


def _float(value: object, default: float) -> float:
    try:
        return float(text(value)) if value is not None else default
    except ValueError:
        return default


_RUBY_UTC = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) (?:UTC|GMT)")


@functools.lru_cache(maxsize=4096)
def _epoch(failed_at: str) -> float | None:
    """Seconds of a peer's ``failed_at``; Ruby's UTC form without strptime (the common case)."""
    m = _RUBY_UTC.fullmatch(failed_at)
    if m:
        return float(calendar.timegm((*(int(g) for g in m.groups()), 0, 0, 0)))
    when = timefmt.parse(failed_at)
    return when.timestamp() if when is not None else None


def _failure_fields(item: bytes) -> tuple[object, str]:
    """``failed_at`` and the job class of a stored failure, read leniently (any peer, any damage)."""
    try:
        value = decode_json(item)
    except ProtocolError:
        return None, UNREADABLE_CLASS
    if not isinstance(value, dict):
        return None, UNREADABLE_CLASS
    payload = value.get("payload")
    cls = payload.get("class") if isinstance(payload, dict) else None
    return value.get("failed_at"), cls[:MAX_NAME] if isinstance(cls, str) and cls else UNREADABLE_CLASS


class SamplerThread:
    """A daemon thread that ticks a sampler every second (the dashboard's contribution)."""

    def __init__(self, client: redis.Redis, keys: Keys, period: float = 1.0) -> None:
        self.sampler = Sampler(client, keys)
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resque-history", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sampler.tick()
