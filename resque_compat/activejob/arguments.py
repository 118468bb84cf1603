"""ActiveJob's argument format (Rails 6.1 ``ActiveJob::Arguments`` and its serializers), both ways.

JSON values travel as they are. A Hash carries a marker saying what Ruby had: ``_aj_symbol_keys``
(the keys that were Symbols), ``_aj_ruby2_keywords`` (keyword arguments),
``_aj_hash_with_indifferent_access``. A GlobalID is ``{"_aj_globalid": gid}``; other Ruby types go
through a named serializer, ``{"_aj_serialized": "ActiveJob::Serializers::TimeSerializer",
"value": ...}``. Decoding is strict: a marker or serializer this module does not know raises
:class:`ArgumentFormatError`, so the job fails with its payload kept instead of running with a
value Ruby would have read differently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from resque_compat.activejob.values import (
    Duration,
    GlobalID,
    HashWithIndifferentAccess,
    RubyDateTime,
    RubyKeywords,
    RubyModule,
    Symbol,
    TimeWithZone,
    timedelta_seconds,
)

GLOBALID_KEY = "_aj_globalid"
SYMBOL_KEYS_KEY = "_aj_symbol_keys"
RUBY2_KEYWORDS_KEY = "_aj_ruby2_keywords"
WITH_INDIFFERENT_ACCESS_KEY = "_aj_hash_with_indifferent_access"
OBJECT_SERIALIZER_KEY = "_aj_serialized"
RESERVED_KEYS = frozenset(
    (GLOBALID_KEY, SYMBOL_KEYS_KEY, RUBY2_KEYWORDS_KEY, WITH_INDIFFERENT_ACCESS_KEY, OBJECT_SERIALIZER_KEY)
)

_SERIALIZERS = "ActiveJob::Serializers::"
SYMBOL = _SERIALIZERS + "SymbolSerializer"
TIME = _SERIALIZERS + "TimeSerializer"
DATE_TIME = _SERIALIZERS + "DateTimeSerializer"
DATE = _SERIALIZERS + "DateSerializer"
TIME_WITH_ZONE = _SERIALIZERS + "TimeWithZoneSerializer"
DURATION = _SERIALIZERS + "DurationSerializer"
MODULE = _SERIALIZERS + "ModuleSerializer"
#: Rails 7.1+ (Rails 6.1 writes a BigDecimal as its JSON string): read, never written.
BIG_DECIMAL = _SERIALIZERS + "BigDecimalSerializer"


class ArgumentFormatError(ValueError):
    """Arguments Rails would not have written, or that use a marker or serializer unknown here.
    Named as Ruby's worker would fail on them."""

    resque_name = "ActiveJob::DeserializationError"


class SerializationError(ValueError):
    """A Python value ActiveJob has no format for (Ruby's ``ActiveJob::SerializationError``)."""


# -- decoding --------------------------------------------------------------------------------


def decode_arguments(arguments: Any) -> tuple[list[Any], dict[str, Any]]:
    """The job's positional and keyword arguments. A trailing ``_aj_ruby2_keywords`` hash is the
    keyword arguments, as Ruby passes it to ``perform``."""
    if not isinstance(arguments, list):
        raise ArgumentFormatError(f"arguments must be a JSON array, got {type(arguments).__name__}")
    try:
        args = [decode_value(each) for each in arguments]
    except RecursionError:
        raise ArgumentFormatError("arguments nest too deeply") from None
    if args and isinstance(args[-1], RubyKeywords):
        return args[:-1], {str(k): v for k, v in args.pop().items()}
    return args, {}


def decode_value(value: Any) -> Any:
    """One serialized argument as a Python value (see the module docstring)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [decode_value(each) for each in value]
    if isinstance(value, dict):
        if GLOBALID_KEY in value:
            gid = value[GLOBALID_KEY]
            if len(value) != 1 or not isinstance(gid, str):
                raise ArgumentFormatError(f"a GlobalID reference must be {{{GLOBALID_KEY!r}: gid}} alone: {value!r}")
            return GlobalID(gid)
        if OBJECT_SERIALIZER_KEY in value:
            return _deserialize(value)
        return _decode_hash(value)
    raise ArgumentFormatError(f"not a JSON value: {value!r}")


def _decode_hash(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(k for k in value if k.startswith("_aj_") and k not in RESERVED_KEYS)
    if unknown:
        raise ArgumentFormatError(f"unknown ActiveJob marker {', '.join(unknown)} in a hash argument")
    plain = {k: decode_value(v) for k, v in value.items() if k not in RESERVED_KEYS}
    if value.get(WITH_INDIFFERENT_ACCESS_KEY):
        return HashWithIndifferentAccess(plain)
    for marker, kind in ((SYMBOL_KEYS_KEY, dict), (RUBY2_KEYWORDS_KEY, RubyKeywords)):
        if marker in value:
            names = value[marker]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ArgumentFormatError(f"{marker} must list key names: {names!r}")
            symbols = set(names)
            return kind((Symbol(k) if k in symbols else k, v) for k, v in plain.items())
    return plain


def _deserialize(value: dict[str, Any]) -> Any:
    name = value[OBJECT_SERIALIZER_KEY]
    raw = value.get("value")
    try:
        if name == SYMBOL and isinstance(raw, str):
            return Symbol(raw)
        if name in (TIME, DATE_TIME, TIME_WITH_ZONE) and isinstance(raw, str):
            moment = parse_time(raw)
            kind = {TIME: datetime, DATE_TIME: RubyDateTime, TIME_WITH_ZONE: TimeWithZone}[name]
            return moment if kind is datetime else kind.fromisoformat(moment.isoformat())
        if name == DATE and isinstance(raw, str):
            return date.fromisoformat(raw)
        if name == DURATION and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return Duration(raw, _duration_parts(decode_value(value.get("parts", []))))
        if name == MODULE and isinstance(raw, str):
            return RubyModule(raw)
        if name == BIG_DECIMAL and isinstance(raw, str):
            return Decimal(raw)
    except (ValueError, ArithmeticError, TypeError) as exc:
        raise ArgumentFormatError(f"{name}: cannot read {raw!r}: {exc}") from None
    if not isinstance(name, str) or not name.startswith(_SERIALIZERS) or name not in _KNOWN:
        raise ArgumentFormatError(f"Serializer {name} is not known")
    raise ArgumentFormatError(f"{name}: unexpected value {raw!r}")


_KNOWN = frozenset((SYMBOL, TIME, DATE_TIME, DATE, TIME_WITH_ZONE, DURATION, MODULE, BIG_DECIMAL))


def _duration_parts(parts: Any) -> dict[str, int | float]:
    """Rails writes the parts as ``[[:hours, 1], ...]`` pairs; a hash is accepted too."""
    if not isinstance(parts, (list, dict)):
        raise ValueError(f"duration parts must be a list of [name, number] pairs: {parts!r}")  # noqa: TRY004
    pairs = parts.items() if isinstance(parts, dict) else parts
    out: dict[str, int | float] = {}
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(f"a duration part must be [name, number]: {pair!r}")
        name, amount = pair
        if not isinstance(amount, (int, float)) or isinstance(amount, bool):
            raise ValueError(f"a duration part must be [name, number]: {pair!r}")  # noqa: TRY004 - bad input
        out[str(name)] = amount
    return out


_ISO_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)\Z",
)


def parse_time(text: str) -> datetime:
    """Ruby's ``Time.iso8601`` for what ActiveJob writes: nanoseconds cut to microseconds,
    ``Z`` read as UTC, any other offset kept."""
    match = _ISO_TIME.match(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 time with a UTC offset: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    if zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)


# -- encoding --------------------------------------------------------------------------------


def encode_arguments(args: Sequence[Any], kwargs: Mapping[str, Any] | None = None) -> list[Any]:
    """``ActiveJob::Arguments.serialize``: keyword arguments become the trailing
    ``_aj_ruby2_keywords`` hash Rails writes for ``perform_later(..., key: value)``."""
    out = [encode_value(each) for each in args]
    if kwargs:
        out.append(_encode_hash(kwargs, RUBY2_KEYWORDS_KEY, all_symbols=True))
    return out


def encode_value(value: Any) -> Any:
    """One Python value in ActiveJob's format (:class:`SerializationError` when it has none)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{value!r} cannot be written as JSON")
        return value
    if isinstance(value, Symbol):
        return {OBJECT_SERIALIZER_KEY: SYMBOL, "value": str(value)}
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [encode_value(each) for each in value]
    if isinstance(value, HashWithIndifferentAccess):
        return {**_encode_plain(value), WITH_INDIFFERENT_ACCESS_KEY: True}
    if isinstance(value, RubyKeywords):
        return _encode_hash(value, RUBY2_KEYWORDS_KEY)
    if isinstance(value, Mapping):
        return _encode_hash(value, SYMBOL_KEYS_KEY)
    if isinstance(value, GlobalID):
        return {GLOBALID_KEY: value.gid}
    if isinstance(value, datetime):
        return _encode_time(value)
    if isinstance(value, date):
        return {OBJECT_SERIALIZER_KEY: DATE, "value": value.isoformat()}
    if isinstance(value, timedelta):
        return _encode_duration(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, RubyModule):
        return {OBJECT_SERIALIZER_KEY: MODULE, "value": value.name}
    raise SerializationError(f"Unsupported argument type: {type(value).__qualname__}")


def decimal_text(value: Decimal) -> str:
    """What Rails 6.1 writes for a BigDecimal: its plain-notation string (``BigDecimal#to_s``),
    which a Rails 6.1 job receives as a String."""
    if not value.is_finite():
        raise SerializationError(f"{value!r} cannot be written as JSON")
    text = format(value, "f")
    return text if "." in text else text + ".0"


def _encode_plain(value: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise SerializationError(
                f"Only string and symbol hash keys may be serialized as job arguments, but {key!r} is a "
                f"{type(key).__qualname__}"
            )
        if key.startswith("_aj_"):  # Rails reserves its markers; we read any other _aj_ key as unknown
            raise SerializationError(f"Can't serialize a Hash with reserved key {key!r}")
        out[str(key)] = encode_value(item)
    return out


def _encode_hash(value: Mapping[Any, Any], marker: str, *, all_symbols: bool = False) -> dict[str, Any]:
    out = _encode_plain(value)
    out[marker] = [str(k) for k in value if all_symbols or isinstance(k, Symbol)]
    return out


def _encode_time(value: datetime) -> dict[str, Any]:
    offset = value.utcoffset()
    if offset is None:
        raise SerializationError(f"a naive datetime has no UTC offset, give it a tzinfo: {value!r}")
    name = TIME_WITH_ZONE if isinstance(value, TimeWithZone) else DATE_TIME if isinstance(value, RubyDateTime) else TIME
    return {OBJECT_SERIALIZER_KEY: name, "value": iso8601_nanos(value, utc_z=name != DATE_TIME)}


def iso8601_nanos(value: datetime, *, utc_z: bool = True) -> str:
    """Ruby's ``iso8601(9)``: nine fraction digits; ``Z`` for UTC (a DateTime writes ``+00:00``)."""
    offset = value.utcoffset() or timedelta(0)
    if utc_z and value.tzinfo is UTC:
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    v = value  # by hand: strftime writes year 999 as "999", Ruby as "0999"
    day = f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    return f"{day}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}000{zone}"


def _encode_duration(value: timedelta) -> dict[str, Any]:
    if isinstance(value, Duration):
        seconds, parts = value.value, value.parts
    else:
        seconds = timedelta_seconds(value)
        parts = Duration(seconds).parts
    pairs = [[{OBJECT_SERIALIZER_KEY: SYMBOL, "value": name}, amount] for name, amount in parts.items()]
    return {OBJECT_SERIALIZER_KEY: DURATION, "value": seconds, "parts": pairs}
