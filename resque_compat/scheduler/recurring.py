"""Recurring schedules (cron and ``every``) as resque-scheduler 5.0 defines and stores them.

A schedule is ``name -> {class, cron | every, args, queue, description}`` (``cron`` wins over
``every``; a missing ``class`` is the name, as in Ruby). They come from a schedule file (YAML or
JSON, resque-scheduler's format) and from ``persistent_schedules`` (a hash of name -> JSON);
a name in both takes the Redis one, as Ruby's ``all_schedules`` does. ``set``/``remove`` write
Ruby's commands (HSET/HDEL + ``SADD schedules_changed``); the master SPOPs
``schedules_changed`` and reloads those names, which is resque-scheduler's dynamic mode.

Firing is Ruby's ``enqueue_from_config``: args ``None`` -> ``[]``, a list as is, anything else
(scalar or hash) -> ``[value]``; then ``HSET delayed:last_enqueued_at <name> <Time#to_s>``.

Timing rules, chosen so nothing bursts: a schedule fires at most once per pass however many
runs it missed (a clock jumping forward, a stopped scheduler, a stalled pass); after firing,
the next time is computed from *now*. When the clock jumps backwards, next times are
recomputed from the new now rather than waiting out the jump. Non-masters keep their next
times moving without firing, so a scheduler that takes over does not replay the past.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from resque_compat.client import Resque
from resque_compat.plans import push_raw_commands
from resque_compat.protocol import UNSET, JobPayload, ProtocolError, ScheduleEntry, decode_json, timefmt
from resque_compat.replies import raw, text
from resque_compat.resp import queue_commands
from resque_compat.scheduler.cron import CronError, CronExpression
from resque_compat.scheduler.lock import Leaders, leaders

log = logging.getLogger("resque_compat.scheduler")

_UNITS = {
    "y": 365 * 86400, "year": 365 * 86400, "years": 365 * 86400,
    "M": 30 * 86400, "month": 30 * 86400, "months": 30 * 86400,
    "w": 7 * 86400, "week": 7 * 86400, "weeks": 7 * 86400,
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+\.\d*|\.?\d+|\d*\.\d+)\s*([A-Za-z]*)")
_ISO = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


#: the longest ``every`` accepted (100 years): longer ones name no time a clock can show
MAX_DURATION = 100 * 365 * 86400


class ScheduleError(ValueError):
    """A schedule that cannot be loaded; the message names the entry and the reason."""


def parse_duration(value: object) -> float:
    """rufus-scheduler durations: ``"30s"``, ``"1m"``, ``"1h30m"``, ``"1.5h"``, ``"2 days"``,
    ``"1w"``, ``"1M"`` (30 days), ``"1y"`` (365 days), ISO ``"PT1H"``, or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")  # noqa: TRY004 - bad input, reported as such
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds = _parse_duration_text(value.strip())
    else:
        raise ValueError(f"not a duration: {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration must be at most 100 years: {value!r}")
    return seconds


def _parse_duration_text(text: str) -> float:
    iso = _ISO.fullmatch(text.upper()) if text[:1] in "Pp" else None
    if iso and any(iso.groups()):
        y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in iso.groups())
        return y * _UNITS["y"] + mo * _UNITS["M"] + w * _UNITS["w"] + d * 86400 + h * 3600 + mi * 60 + s
    total = 0.0
    pos = 0
    cleaned = re.sub(r"(?i)[\s,]+|\band\b", " ", text)
    while pos < len(cleaned):
        if cleaned[pos] == " ":
            pos += 1
            continue
        m = _DURATION_PART.match(cleaned, pos)
        if not m:
            raise ValueError(f"not a duration: {text!r}")
        number, unit = float(m.group(1)), m.group(2)
        if not unit:
            if m.end() != len(cleaned.rstrip()):
                raise ValueError(f"not a duration: {text!r} (a unit is missing after {m.group(1)})")
            total += number  # a trailing bare number is seconds
        else:
            factor = _UNITS.get(unit) if unit in ("M", "m") else _UNITS.get(unit.lower())
            if factor is None:
                raise ValueError(f"not a duration: {text!r} (unknown unit {unit!r})")
            total += number * factor
        pos = m.end()
    return total


def job_args(args: Any) -> list[Any]:
    """Ruby's ``enqueue_from_config``: a list as is, None (or absent) as [], a hash or scalar as [value]."""
    if args is None or args is UNSET:
        return []
    if isinstance(args, list):
        return args
    return [args]


@dataclass
class RecurringSchedule:
    """One loaded schedule and its next firing time."""

    name: str
    class_name: str
    queue: str
    args: list[Any]
    cron: CronExpression | None = None
    every: float | None = None
    first_in: float | None = None
    description: str = ""
    source: str = "redis"
    config: dict[str, Any] = field(default_factory=dict)
    next_fire: float | None = None

    @classmethod
    def from_config(cls, name: str, config: Any, source: str = "redis") -> RecurringSchedule:
        """Validate one entry; errors are ``schedule 'name': reason``."""

        def fail(reason: str) -> ScheduleError:
            return ScheduleError(f"schedule {name!r}: {reason}")

        if not isinstance(name, str) or not name:
            raise ScheduleError(f"schedule names must be non-empty strings, got {name!r}")
        if not isinstance(config, Mapping):
            raise fail(f"expected a mapping of options, got {type(config).__name__}")
        class_name = config.get("class", name)
        if not isinstance(class_name, str) or not class_name.strip():
            raise fail("'class' must be a non-empty string")
        queue = config.get("queue")
        if not isinstance(queue, str) or not queue.strip():
            raise fail("'queue' is required (resque-compat cannot read a Ruby class's @queue)")
        description = config.get("description") or ""
        schedule = cls(
            name, class_name, queue, job_args(config.get("args")), description=str(description),
            source=source, config=dict(config),
        )  # fmt: skip
        cron, every = config.get("cron"), config.get("every")
        if cron not in (None, ""):
            cron_text, _ = _with_options(cron)
            try:
                schedule.cron = CronExpression.parse(cron_text)
                schedule.cron.validate()
            except CronError as exc:
                raise fail(f"invalid cron {cron_text!r}: {exc}") from None
        elif every not in (None, ""):
            every_value, options = _with_options(every)
            try:
                schedule.every = parse_duration(every_value)
                if "first_in" in options:
                    schedule.first_in = parse_duration(options["first_in"])
            except ValueError as exc:
                raise fail(f"invalid every: {exc}") from None
        else:
            raise fail("needs 'cron' or 'every'")
        return schedule

    @property
    def timing(self) -> str:
        """The cron line or the ``every`` value, as configured."""
        if self.cron is not None:
            return f"cron {self.cron.source}"
        return f"every {_with_options(self.config.get('every'))[0]}"

    def compute_next(self, now: float, *, first: bool = False) -> float:
        """The next firing time after ``now``."""
        if self.cron is not None:
            nxt = self.cron.next_after(datetime.fromtimestamp(now, UTC))
            return nxt.timestamp() if nxt else math.inf
        assert self.every is not None
        if first and self.first_in is not None:
            return now + self.first_in
        return now + self.every

    def payload(self) -> bytes:
        return JobPayload.new(self.class_name, self.args).encode()


def _with_options(value: Any) -> tuple[Any, dict[str, Any]]:
    """rufus allows ``every: ["1h", {first_in: "10s"}]``; split value and options."""
    if isinstance(value, list) and value:
        options = value[1] if len(value) > 1 and isinstance(value[1], Mapping) else {}
        return value[0], dict(options)
    return value, {}


def load_schedule_file(path: str | Path) -> dict[str, RecurringSchedule]:
    """Read a resque-scheduler schedule file (YAML, or JSON); every entry is validated."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(f"cannot read schedule file {file}: {exc.strerror or exc}") from None
    data: Any
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScheduleError(f"{file}: not valid JSON: {exc}") from None
    else:
        try:
            import yaml  # noqa: PLC0415 - optional: only schedule files need it
        except ImportError:
            raise ScheduleError(
                f"{file}: reading YAML needs PyYAML (pip install 'resque-compat[scheduler]'), or use a .json file"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScheduleError(f"{file}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ScheduleError(f"{file}: expected a mapping of schedule names to options")
    return {str(name): RecurringSchedule.from_config(str(name), config, "file") for name, config in data.items()}


class ScheduleStore:
    """``persistent_schedules``, ``schedules_changed``, ``delayed:last_enqueued_at``, the
    published next runs, and who leads (the scheduler locks)."""

    def __init__(self, resque: Resque) -> None:
        self.redis = resque.redis
        self.keys = resque.keys

    def all(self) -> dict[str, dict[str, Any]]:
        """Every stored config; unreadable ones are logged and left out."""
        out: dict[str, dict[str, Any]] = {}
        for name, stored in self.redis.hgetall(self.keys.persistent_schedules).items():
            config = self._decode(text(name), raw(stored))
            if config is not None:
                out[text(name)] = config
        return out

    def stored(self) -> list[tuple[str, bytes]]:
        """Every entry's name and bytes as stored, unreadable ones too, sorted by name (HSCAN)."""
        entries = self.redis.hscan_iter(self.keys.persistent_schedules, count=200)
        return sorted((text(name), raw(stored)) for name, stored in entries)

    def stored_entry(self, name: str) -> bytes | None:
        """One entry's bytes as stored, whether or not they decode."""
        stored = self.redis.hget(self.keys.persistent_schedules, name)
        return None if stored is None else raw(stored)

    def get(self, name: str) -> dict[str, Any] | None:
        stored = self.stored_entry(name)
        return None if stored is None else self._decode(name, stored)

    @staticmethod
    def _decode(name: str, raw: bytes) -> dict[str, Any] | None:
        try:
            config = decode_json(raw)
        except ProtocolError as exc:
            log.error("schedule %r in persistent_schedules is unreadable: %s", name, exc)  # noqa: TRY400 - expected, no traceback wanted
            return None
        if not isinstance(config, dict):
            log.error("schedule %r in persistent_schedules is not a JSON object", name)
            return None
        return config

    def set(self, name: str, entry: ScheduleEntry) -> None:
        """Ruby's ``set_schedule(name, config)`` with persistence: validated first."""
        RecurringSchedule.from_config(name, entry.to_dict())
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.persistent_schedules, name, entry.encode())
        pipe.sadd(self.keys.schedules_changed, name)
        pipe.execute()

    def remove(self, name: str) -> bool:
        """Ruby's ``remove_schedule``; True when the name was stored. An unknown name writes
        nothing (no ``schedules_changed`` entry for a schedule that never was)."""
        if not self.redis.hdel(self.keys.persistent_schedules, name):
            return False
        self.redis.sadd(self.keys.schedules_changed, name)
        return True

    def pop_changed(self, limit: int = 1000) -> list[str]:
        """SPOP ``schedules_changed`` (master only, as Ruby's dynamic mode)."""
        names: list[bytes] = self.redis.spop(self.keys.schedules_changed, limit) or []  # type: ignore[assignment]
        return [text(n) for n in names]

    def last_enqueued_at(self) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.redis.hgetall(self.keys.last_enqueued_at).items()}

    def published_next(self) -> dict[str, float]:
        """``compat:schedule_next``: the master scheduler's next run per schedule (unreadable
        values left out)."""
        out: dict[str, float] = {}
        for name, value in self.redis.hgetall(self.keys.schedule_next).items():
            try:
                seconds = float(text(value))
            except ValueError:
                continue
            if math.isfinite(seconds):
                out[text(name)] = seconds
        return out

    def publish_next(self, next_runs: Mapping[str, float | None], previous: Mapping[str, float]) -> dict[str, float]:
        """Write what changed since ``previous`` (our last write); returns what is now stored."""
        now = {n: t for n, t in next_runs.items() if t is not None and math.isfinite(t)}
        gone = [n for n in previous if n not in now]
        changed = {n: repr(t) for n, t in now.items() if previous.get(n) != t}
        if gone or changed:
            pipe = self.redis.pipeline(transaction=True)
            if gone:
                pipe.hdel(self.keys.schedule_next, *gone)
            if changed:
                pipe.hset(self.keys.schedule_next, mapping=changed)  # type: ignore[arg-type]
            pipe.execute()
        return now

    def clear_next(self) -> None:
        self.redis.delete(self.keys.schedule_next)

    def leaders(self) -> Leaders:
        return leaders(self.redis, self.keys)


#: a published next run this far in the past means its scheduler is gone (killed, not stopped)
STALE_NEXT_AFTER = 120.0


def next_run(
    schedule: RecurringSchedule, published: float | None, last: str | None, now: float
) -> tuple[float | None, str]:
    """When ``schedule`` runs next, and how we know: ``scheduler`` (what the master scheduler
    holds, published in ``compat:schedule_next``), ``cron`` (the next matching minute),
    ``last+every`` (its last run plus the interval: a Ruby scheduler's timing), or ``unknown``
    (an ``every`` schedule no scheduler has run yet: it starts when one loads it)."""
    if published is not None and published >= now - STALE_NEXT_AFTER:
        return published, "scheduler"
    if schedule.cron is not None:
        nxt = schedule.compute_next(now)
        return (nxt if math.isfinite(nxt) else None), "cron"
    moment = timefmt.parse(last) if last else None
    if moment is not None and schedule.every is not None:
        return moment.timestamp() + schedule.every, "last+every"
    return None, "unknown"


class Recurring:
    """The set of schedules one scheduler runs, with their next firing times."""

    def __init__(self, resque: Resque, file_schedules: Mapping[str, RecurringSchedule] | None = None) -> None:
        self.resque = resque
        self.store = ScheduleStore(resque)
        self.file_schedules = dict(file_schedules or {})
        self.schedules: dict[str, RecurringSchedule] = {}
        self._last_now: float | None = None

    def _resolve(self, name: str, persistent: Mapping[str, Any] | None) -> RecurringSchedule | None:
        if persistent is not None:
            try:
                return RecurringSchedule.from_config(name, persistent, "redis")
            except ScheduleError as exc:
                log.error("skipping %s", exc)  # noqa: TRY400 - expected, no traceback wanted
                return None
        return self.file_schedules.get(name)

    def load(self, now: float | None = None) -> None:
        """Full (re)load: the file's schedules, then ``persistent_schedules`` over them."""
        t = time.time() if now is None else now
        stored = self.store.all()
        fresh: dict[str, RecurringSchedule] = {}
        for name in sorted(set(self.file_schedules) | set(stored)):
            schedule = self._resolve(name, stored.get(name))
            if schedule is not None:
                fresh[name] = self._carry_over(schedule, t)
        self.schedules = fresh

    def apply_changes(self, now: float | None = None) -> list[str]:
        """Reload the names in ``schedules_changed`` (SPOPped); returns them."""
        t = time.time() if now is None else now
        names = self.store.pop_changed()
        for name in names:
            schedule = self._resolve(name, self.store.get(name))
            if schedule is None:
                if self.schedules.pop(name, None) is not None:
                    log.info("schedule %s removed", name)
            else:
                previous = self.schedules.get(name)
                changed = previous is None or previous.config != schedule.config
                self.schedules[name] = schedule if changed else previous  # type: ignore[assignment]
                if changed:
                    schedule.next_fire = schedule.compute_next(t, first=True)
                    log.info("schedule %s loaded: %s, next at %s", name, schedule.timing, _fmt(schedule.next_fire))
        return names

    def _carry_over(self, schedule: RecurringSchedule, now: float) -> RecurringSchedule:
        previous = self.schedules.get(schedule.name)
        if previous is not None and previous.config == schedule.config:
            schedule.next_fire = previous.next_fire
        else:
            schedule.next_fire = schedule.compute_next(now, first=True)
        return schedule

    def tick(self, now: float | None = None, *, fire: bool = True) -> list[str]:
        """Fire what is due (when ``fire``), advance every due schedule; returns fired names."""
        t = time.time() if now is None else now
        if self._last_now is not None and t < self._last_now - 1:
            log.warning("clock went back %.0f s: recomputing next run times", self._last_now - t)
            for schedule in self.schedules.values():
                schedule.next_fire = schedule.compute_next(t)
        self._last_now = t
        fired = []
        for schedule in self.schedules.values():
            if schedule.next_fire is None:
                schedule.next_fire = schedule.compute_next(t, first=True)
            if schedule.next_fire > t:
                continue
            if fire:
                self.fire(schedule, t)
                fired.append(schedule.name)
            schedule.next_fire = schedule.compute_next(t)
        return fired

    def fire(self, schedule: RecurringSchedule, now: float | None = None) -> None:
        """Enqueue one run now, and record it in ``delayed:last_enqueued_at``."""
        keys = self.resque.keys
        pipe = self.resque.redis.pipeline(transaction=True)
        queue_commands(pipe, push_raw_commands(keys, schedule.queue, schedule.payload()))
        pipe.hset(keys.last_enqueued_at, schedule.name, timefmt.started(now))
        pipe.execute()
        log.info("queueing %s (%s) in %s", schedule.class_name, schedule.name, schedule.queue)

    def next_fire(self) -> float | None:
        times = [s.next_fire for s in self.schedules.values() if s.next_fire is not None]
        return min(times) if times else None


def _fmt(epoch: float | None) -> str:
    if epoch is None or not math.isfinite(epoch):
        return "never"
    return timefmt.started(epoch)
