"""Times as people and scripts see them: one format everywhere (CLI tables, dashboard pages).

Peers store six formats (see ``protocol.timefmt``); those stay exactly as written. Everything
shown is ISO 8601 in UTC (``2026-11-29T10:40:02Z``), or in the local zone with its offset
when the process was started with ``--local``; scripts (``--json``) get ISO 8601 plus epoch
seconds. A value no parser recognises is shown as stored, never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from resque_compat.protocol import timefmt

_settings = {"local": False}


def use_local(local: bool) -> None:
    """Show times in the local zone (``--local``) instead of UTC, for this process."""
    _settings["local"] = local


def showing_local() -> bool:
    return _settings["local"]


def parse(value: object) -> datetime | None:
    """Any stored time (a peer's text, epoch seconds as a number or text), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return timefmt.parse(value)
    except (ValueError, OverflowError, OSError):
        return None  # a year out of range, an absurd epoch: shown as stored


def iso(moment: datetime, local: bool | None = None) -> str:
    """``2026-11-29T10:40:02Z`` (UTC), or ``2026-11-29T11:40:02+01:00`` (local)."""
    if showing_local() if local is None else local:
        return moment.astimezone().replace(microsecond=0).isoformat()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def show(value: object, local: bool | None = None) -> str | None:
    """A stored time for a table or a page; unknown formats as stored, None as None."""
    if value is None:
        return None
    moment = parse(value)
    if moment is None:
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return iso(moment, local)


def for_json(value: object) -> tuple[str | None, float | None]:
    """(ISO 8601, epoch seconds) for ``--json``; an unknown format keeps its text, epoch None."""
    moment = parse(value)
    if moment is None:
        return show(value), None
    seconds = moment.timestamp()
    return iso(moment), int(seconds) if seconds == int(seconds) else seconds


def json_fields(name: str, value: object) -> dict[str, Any]:
    """``{name: iso, name_epoch: seconds}``: the pair every ``--json`` time is given as."""
    shown, epoch = for_json(value)
    return {name: shown, f"{name}_epoch": epoch}
