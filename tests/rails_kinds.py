"""What Rails' every-kind job (``interop-tests/peers/ruby/activejob.rb``, ``Interop.kinds``; the
``every_kind`` vector of ``spec/vectors/activejob.json``) reads as in Python: one list for the
vector tests and the interop tests against a real Rails."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from resque_compat.activejob import (
    Duration,
    GlobalID,
    HashWithIndifferentAccess,
    RubyDateTime,
    RubyModule,
    Symbol,
    TimeWithZone,
)

EVERY_KIND_ARGS: list[Any] = [
    1,
    -(2**62),
    1.5,
    "two",
    None,
    True,
    False,
    [1, "a", [None]],
    {"k": "v", "n": {"deep": [1]}},
    {Symbol("sym"): 1, "str": 2},
    HashWithIndifferentAccess(a=1),
    Symbol("sym"),
    datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 11, 29, 10, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    RubyDateTime(2026, 11, 29, 10, 0, 0, tzinfo=timezone(timedelta(hours=-3))),
    date(2026, 11, 29),
    TimeWithZone(2026, 11, 29, 19, 0, 0, tzinfo=timezone(timedelta(hours=9))),
    Duration(3600, {"hours": 1}),
    Duration(172980, {"days": 2, "minutes": 3}),
    Duration(2629746, {"months": 1}),
    "12.345",  # a BigDecimal: Rails 6.1 writes its string, and hands the job a String
    RubyModule("Person"),
    GlobalID("gid://interop/Person/42"),
]
EVERY_KIND_KWARGS: dict[str, Any] = {"lang": "en", "at": Symbol("noon")}
