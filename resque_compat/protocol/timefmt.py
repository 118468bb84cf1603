"""Time formats exactly as the peers write them, and a lenient parser for all of them.

Writers follow Ruby Resque 3.0 (the format every peer's tools can parse):

============================  ==================================  ===========================
field                          format                              example
============================  ==================================  ===========================
``worker:<id>`` run_at         UTC ISO-8601, ``Z``, no fraction    2026-11-26T20:20:39Z
``worker:<id>:started``        Ruby ``Time#to_s``, local zone      2026-11-26 20:20:39 +0000
``workers:heartbeat`` value    ISO-8601 with a ``+hh:mm`` offset   2026-11-26T20:20:39+00:00
``failed_at`` / retried_at     ``%Y/%m/%d %H:%M:%S %Z``, local     2026/11/26 20:20:42 UTC
============================  ==================================  ===========================
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone


def _local(epoch: float | None) -> time.struct_time:
    return time.localtime(time.time() if epoch is None else epoch)


def run_at(epoch: float | None = None) -> str:
    """``Time.now.utc.iso8601``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))


def started(epoch: float | None = None) -> str:
    """Ruby ``Time#to_s``: local time with a ``+hhmm`` offset."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", _local(epoch))


def heartbeat(epoch: float | None = None) -> str:
    """Ruby ``Time#iso8601`` in local time; a zero offset is ``+00:00``, never ``Z``."""
    t = _local(epoch)
    offset = t.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f"{sign}{hours:02d}:{minutes:02d}"


def failed_at(epoch: float | None = None) -> str:
    """``strftime("%Y/%m/%d %H:%M:%S %Z")`` with the local zone abbreviation."""
    return time.strftime("%Y/%m/%d %H:%M:%S %Z", _local(epoch))


_ZONE_ABBREVIATIONS = {"UTC": 0, "GMT": 0, "Z": 0}
_NODE_DATE = re.compile(r"^\w{3} (\w{3} \d{2} \d{4} \d{2}:\d{2}:\d{2}) GMT([+-]\d{4})")  # JavaScript Date#toString
_PHP_STRFTIME = re.compile(r"^\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2}) (\S+) (\d{4})$")
_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",  # run_at, heartbeat, php date('c')
    "%Y-%m-%d %H:%M:%S %z",  # Ruby Time#to_s
    "%Y/%m/%d %H:%M:%S %z",  # retried_at of some backends with a numeric zone
    "%Y-%m-%dT%H:%M:%S.%f%z",
)


def _zone(name: str) -> timezone | None:
    if name in _ZONE_ABBREVIATIONS:
        return timezone(timedelta(seconds=_ZONE_ABBREVIATIONS[name]))
    if name in time.tzname:
        return timezone(timedelta(seconds=-time.timezone if name == time.tzname[0] else -time.altzone))
    return None


#: the last second a time may name (9999-12-31T23:59:59Z, datetime's limit)
MAX_EPOCH = 253402300799


def epoch_datetime(value: object) -> datetime | None:
    """Unix seconds as an aware UTC datetime; None for anything not a finite number within
    1970..9999 (negative, NaN, ±Infinity, overflowing, bools, strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        if not 0 <= value <= MAX_EPOCH:  # NaN fails both comparisons
            return None
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def parse(value: object) -> datetime | None:
    """Parse any time a Resque peer stores (Ruby, php-resque, node-resque, pyres, unix seconds).

    Returns an aware datetime, or None when the value is not a time we recognise or lies
    outside 1970..9999: dashboards show such values as they are, and nothing that reads a
    stored time ever raises because of it.
    """
    try:
        moment = _parse(value)
    except (ValueError, OverflowError, OSError, TypeError):
        return None
    if moment is None:
        return None
    try:
        return moment if 0 <= moment.timestamp() <= MAX_EPOCH else None
    except (ValueError, OverflowError, OSError):
        return None


def _parse(value: object) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return epoch_datetime(value)
    if not isinstance(value, str) or not value or len(value) > 100:
        return None
    text = value.strip()
    if re.fullmatch(r"\d{1,20}(\.\d{1,20})?", text):
        return epoch_datetime(float(text))
    iso = text[:-1] + "+00:00" if text.endswith("Z") else text
    for fmt in _FORMATS:
        try:
            return datetime.strptime(iso, fmt)
        except ValueError:
            pass
    m = re.fullmatch(r"(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})(?: (\S+))?", text)
    if m:  # failed_at: zone abbreviation, or none at all (pyres, resque-retry)
        naive = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S")
        zone = _zone(m.group(2)) if m.group(2) else UTC
        return naive.replace(tzinfo=zone) if zone else None
    m = _PHP_STRFTIME.match(text)
    if m:  # php-resque cb: "Thu Nov 26 20:21:31 UTC 2026"
        zone = _zone(m.group(2))
        if zone is None:
            return None
        naive = datetime.strptime(f"{m.group(1)} {m.group(3)}", "%b %d %H:%M:%S %Y")
        return naive.replace(tzinfo=zone)
    m = _NODE_DATE.match(text)
    if m:
        return datetime.strptime(f"{m.group(1)} {m.group(2)}", "%b %d %Y %H:%M:%S %z")
    return None
