"""Cron lines and ``every`` durations as resque-scheduler (rufus/fugit) accepts them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from resque_compat.scheduler.cron import CronError, CronExpression, parse_cron
from resque_compat.scheduler.recurring import parse_duration

T0 = datetime(2026, 11, 26, 20, 23, 21, tzinfo=UTC)  # a Thursday


def nxt(line: str, after: datetime = T0) -> datetime:
    result = CronExpression.parse(line).next_after(after)
    assert result is not None
    return result.astimezone(UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("* * * * * UTC", datetime(2026, 11, 26, 20, 24, tzinfo=UTC)),
        ("*/15 * * * * UTC", datetime(2026, 11, 26, 20, 30, tzinfo=UTC)),
        ("5,35 * * * * UTC", datetime(2026, 11, 26, 20, 35, tzinfo=UTC)),
        ("0 9-17/4 * * * UTC", datetime(2026, 11, 27, 9, 0, tzinfo=UTC)),
        ("10/20 * * * * UTC", datetime(2026, 11, 26, 20, 30, tzinfo=UTC)),
        ("0 9 * * mon-fri UTC", datetime(2026, 11, 27, 9, 0, tzinfo=UTC)),
        ("0 9 * * SAT,sun UTC", datetime(2026, 11, 28, 9, 0, tzinfo=UTC)),
        ("0 0 1 jan * UTC", datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 0 * * 7 UTC", datetime(2026, 11, 29, tzinfo=UTC)),  # 7 is Sunday
        ("0 24 * * * UTC", datetime(2026, 11, 27, 0, 0, tzinfo=UTC)),  # hour 24 is 0
        ("0 0 L * * UTC", datetime(2026, 11, 30, tzinfo=UTC)),
        ("0 0 last * * UTC", datetime(2026, 11, 30, tzinfo=UTC)),
        ("0 0 -2 * * UTC", datetime(2026, 11, 29, tzinfo=UTC)),
        ("0 12 * * thu#4 UTC", datetime(2026, 12, 24, 12, 0, tzinfo=UTC)),  # today's has passed
        ("0 12 * * fri#-1 UTC", datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
        ("0 12 * * mon#1 UTC", datetime(2026, 12, 7, 12, 0, tzinfo=UTC)),
        ("0 0 13 * fri UTC", datetime(2026, 11, 27, tzinfo=UTC)),  # dom OR dow
        ("30 20-10 * * * UTC", datetime(2026, 11, 26, 20, 30, tzinfo=UTC)),  # reversed: 10-20 (fugit)
        ("*/10 * * * * * UTC", datetime(2026, 11, 26, 20, 23, 30, tzinfo=UTC)),  # 6 fields: seconds first
        ("0 0 * * * * UTC", datetime(2026, 11, 26, 21, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_times(line: str, expected: datetime) -> None:
    assert nxt(line) == expected


def test_thursday_nth_is_exact() -> None:
    # 2026-11-26 is the fourth Thursday of November; 21:00 is still ahead of T0
    assert nxt("0 21 * * thu#4 UTC") == datetime(2026, 11, 26, 21, 0, tzinfo=UTC)


def test_specials() -> None:
    after = datetime(2026, 11, 26, 20, 23, tzinfo=ZoneInfo("UTC"))
    for line, expected in {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }.items():
        assert nxt(line, after) == nxt(expected, after)


def test_zones_and_offsets() -> None:
    assert nxt("0 9 * * * Europe/Paris") == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert nxt("0 9 * * * +05:30") == datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
    assert nxt("0 9 * * * -0800") == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def test_dst_gap_is_skipped_and_repeated_hour_fires_once() -> None:
    ny = ZoneInfo("America/New_York")
    before_gap = datetime(2027, 3, 14, 1, 0, tzinfo=ny)  # 02:30 does not exist that day
    assert nxt("30 2 * * * America/New_York", before_gap) == datetime(2027, 3, 15, 6, 30, tzinfo=UTC)
    before_fold = datetime(2026, 11, 1, 0, 0, tzinfo=ny)  # 01:30 happens twice
    first = nxt("30 1 * * * America/New_York", before_fold)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert nxt("30 1 * * * America/New_York", first).date() == datetime(2026, 11, 2).date()


def test_local_zone_by_default() -> None:
    expression = CronExpression.parse("0 3 * * *")
    result = expression.next_after(T0)
    assert result is not None
    local = result.astimezone()
    assert (local.hour, local.minute) == (3, 0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "empty"),
        ("* * *", "expected 5 or 6 fields"),
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("* 25 * * *", "hour: 25 is outside 0-24"),
        ("* * 0 * *", "day of month: 0 is outside 1-31"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day of week: 8 is outside 0-7"),
        ("*/0 * * * *", "bad step"),
        ("x * * * *", "minute: 'x' is not a number"),
        ("* * * foo *", "month: 'foo' is not a number or a name"),
        ("1,,2 * * * *", "empty list element"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 * * * Mars/Olympus", "unknown time zone"),
        ("0 0 * * mon#6", "bad occurrence"),
    ],
)
def test_errors_name_the_field(line: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(line)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m", 60),
        ("1h", 3600),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2 days", 172800),
        ("1.5h", 5400),
        ("1M", 30 * 86400),
        ("1y", 365 * 86400),
        ("90", 90),
        ("1m30", 90),
        ("PT1H30M", 5400),
        ("P1D", 86400),
        (45, 45),
        (0.5, 0.5),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "1x", "0s", "-5s", True, None, [], "1 2"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(bad)
