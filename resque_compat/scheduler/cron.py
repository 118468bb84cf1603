"""Cron expressions as resque-scheduler accepts them (rufus-scheduler, parsed by fugit).

Accepted, so that a schedule that a Ruby scheduler runs also runs here:

* 5 fields ``min hour dom month dow``, or 6 with seconds first ``sec min hour dom month dow``;
* ``*``, numbers, ranges ``a-b`` (a reversed range is swapped, as fugit does), steps ``*/n``,
  ``a/n`` (a to the field's end), ``a-b/n``, and comma lists of those;
* month names ``jan``-``dec`` and day names ``sun``-``sat`` (any case); day 7 is Sunday; hour 24 is 0;
* day of month ``L`` / ``last`` (last day) and negative days ``-2`` (second to last);
* day of week ``mon#2`` (second Monday), ``fri#-1`` / ``fri#L`` (last Friday);
* ``@yearly`` ``@annually`` ``@monthly`` ``@weekly`` ``@daily`` ``@midnight`` ``@hourly``;
* a trailing time zone: an IANA name (``Europe/Paris``) or an offset (``+05:30``).

When both day of month and day of week are restricted, a day matching either fires (Vixie
cron and fugit). Without a zone, times are the scheduler host's local time, as in Ruby.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SPECIALS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_OFFSET = re.compile(r"^([+-])([01]\d|2[0-4]):?(00|15|30|45)$")
#: how far ahead :meth:`CronExpression.next_after` looks before declaring "never" (leap days
#: on a given weekday recur within 28 years)
_HORIZON_DAYS = 366 * 29


class CronError(ValueError):
    """A cron line that cannot be parsed; the message names the field and the reason."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_SEC = _Field("second", 0, 59)
_MIN = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 24)
_DOM = _Field("day of month", 1, 31)
_MON = _Field("month", 1, 12, tuple(_MONTHS), 1)
_DOW = _Field("day of week", 0, 7, tuple(_DAYS), 0)


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names.index(lowered) + field.name_base
    if not text.isdigit():
        raise CronError(f"{field.name}: {text!r} is not a number{' or a name' if field.names else ''}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _expand(part: str, field: _Field) -> set[int] | None:
    """One comma element -> its values; None means "every value" (a bare ``*``)."""
    base, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{field.name}: bad step {step_text!r} in {part!r}")
        step = int(step_text)
    if base == "*":
        if step == 1:
            return None
        start, end = field.low, field.high
    elif "-" in base[1:]:
        first, _, last = base.partition("-")
        start, end = _value(first, field), _value(last, field)
        if start > end:  # fugit swaps a reversed range rather than wrapping it
            start, end = end, start
    else:
        start = _value(base, field)
        end = field.high if slash else start
    return set(range(start, end + 1, step))


def _parse_field(text: str, field: _Field) -> frozenset[int] | None:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name}: empty list element in {text!r}")
        expanded = _expand(part, field)
        if expanded is None:
            return None
        values |= expanded
    return frozenset(values)


def _parse_dom(text: str) -> frozenset[int] | None:
    """Days of month; ``L``/``last`` is -1, ``-n`` counts from the end (-1 = last)."""
    values: set[int] = set()
    for part in text.split(","):
        lowered = part.lower()
        if lowered in ("l", "last"):
            values.add(-1)
        elif re.fullmatch(r"-(3[01]|[12]?[1-9]|[12]0)", part):
            values.add(-int(part[1:]))
        else:
            expanded = _expand(part, _DOM)
            if expanded is None:
                return None
            values |= expanded
    return frozenset(values)


def _parse_dow(text: str) -> tuple[frozenset[int] | None, frozenset[tuple[int, int]]]:
    """Week days (0 = Sunday) and ``day#n`` pairs (n > 0 from the start, n < 0 from the end)."""
    plain: set[int] = set()
    nth: set[tuple[int, int]] = set()
    every = False
    for part in text.split(","):
        day, hash_, which = part.partition("#")
        if hash_:
            lowered = which.lower()
            if lowered in ("l", "last"):
                n = -1
            elif re.fullmatch(r"-?[1-5]", which):
                n = int(which)
            else:
                raise CronError(f"day of week: bad occurrence {which!r} in {part!r} (1-5, -1 or L)")
            nth.add((_value(day, _DOW) % 7, n))
            continue
        expanded = _expand(part, _DOW)
        if expanded is None:
            every = True
        else:
            plain |= {d % 7 for d in expanded}
    if every:
        return None, frozenset()
    return frozenset(plain), frozenset(nth)


def _looks_like_zone(word: str) -> bool:
    """A trailing word is a zone when it is an offset, or starts with a capital and is not a
    day-of-week field (fugit's grammar: zone names start with an upper-case letter)."""
    if _OFFSET.match(word):
        return True
    if not word[:1].isupper():
        return False
    try:
        _parse_dow(word)
    except CronError:
        return True
    return False


def _parse_zone(text: str) -> tzinfo:
    m = _OFFSET.match(text)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {text!r}") from None


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron line. ``None`` in a field means "any"."""

    source: str
    seconds: frozenset[int]
    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    monthdays: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None
    nth_weekdays: frozenset[tuple[int, int]]
    zone: tzinfo | None

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        if not isinstance(text, str) or not text.strip():
            raise CronError("empty cron line")
        source = text.strip()
        words = SPECIALS.get(source.lower(), source).split()
        zone: tzinfo | None = None
        if len(words) in (6, 7) and _looks_like_zone(words[-1]):
            zone = _parse_zone(words.pop())
        if len(words) == 5:
            words.insert(0, "0")
        if len(words) != 6:
            raise CronError(f"{source!r}: expected 5 or 6 fields (optionally a time zone), got {len(words)}")
        sec, minute, hour, dom, month, dow = words
        seconds = _parse_field(sec, _SEC)
        minutes = _parse_field(minute, _MIN)
        hours = _parse_field(hour, _HOUR)
        if hours is not None and 24 in hours:
            hours = frozenset((hours - {24}) | {0})
        weekdays, nth = _parse_dow(dow)
        return cls(
            source=source,
            seconds=seconds if seconds is not None else frozenset(range(60)),
            minutes=minutes,
            hours=hours,
            monthdays=_parse_dom(dom),
            months=_parse_field(month, _MON),
            weekdays=weekdays if weekdays or nth else None,
            nth_weekdays=nth,
            zone=zone,
        )

    # -- matching ---------------------------------------------------------------
    def _monthday_match(self, day: date) -> bool:
        if self.monthdays is None:
            return True
        last = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        return any((d if d > 0 else last + 1 + d) == day.day for d in self.monthdays)

    def _weekday_match(self, day: date) -> bool:
        if self.weekdays is None and not self.nth_weekdays:
            return True
        wday = (day.weekday() + 1) % 7  # Python Monday=0 -> cron Sunday=0
        if self.weekdays and wday in self.weekdays:
            return True
        if self.nth_weekdays:
            from_start = (day.day - 1) // 7 + 1
            last = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
            from_end = -((last - day.day) // 7 + 1)
            return (wday, from_start) in self.nth_weekdays or (wday, from_end) in self.nth_weekdays
        return False

    def day_matches(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        dow_restricted = self.weekdays is not None or bool(self.nth_weekdays)
        if self.monthdays is not None and dow_restricted:
            return self._monthday_match(day) or self._weekday_match(day)
        return self._monthday_match(day) and self._weekday_match(day)

    def _times_of_day(self) -> list[tuple[int, int, int]]:
        hours = sorted(self.hours) if self.hours is not None else range(24)
        minutes = sorted(self.minutes) if self.minutes is not None else range(60)
        return [(h, m, s) for h in hours for m in minutes for s in sorted(self.seconds)]

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing time strictly after ``moment`` (aware), or None if it never fires.

        Wall-clock times that a DST change skips are skipped; a repeated hour fires once.
        """
        zone = self.zone or moment.astimezone().tzinfo
        assert zone is not None
        local = moment.astimezone(zone)
        times = self._times_of_day()
        day = local.date()
        start_tod = (local.hour, local.minute, local.second)
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if not self.day_matches(current):
                continue
            for tod in times:
                if offset == 0 and tod <= start_tod:
                    continue
                naive = datetime(current.year, current.month, current.day, *tod)
                candidate = naive.replace(tzinfo=zone)
                # a wall time inside a DST gap does not survive a round trip through UTC
                if candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
                    continue
                if candidate.astimezone(UTC) > moment.astimezone(UTC):
                    return candidate
        return None

    def validate(self, now: datetime | None = None) -> None:
        """Raise :class:`CronError` for a line that parses but can never fire (``0 0 30 2 *``)."""
        if self.next_after(now or datetime.now(UTC)) is None:
            raise CronError(f"{self.source!r} never fires")


def parse_cron(text: str) -> CronExpression:
    """Parse and check a cron line; errors say which field is wrong and why."""
    expression = CronExpression.parse(text)
    expression.validate()
    return expression
