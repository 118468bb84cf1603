"""The shape of the dashboard's history: samples of the counters, kept in capped tiers.

A sample is what one sampler read at one moment: the peers' own cumulative counters
(``stat:processed``, ``stat:failed``), the failures counted per class so far, and gauges (queue
depths). Rates are differences between consecutive samples, so a minute no sampler recorded
is simply absent: it shows as a gap, never as a zero. Each tier keeps at most ``cap`` samples,
one per ``step`` seconds, which bounds the whole history whatever the deployment does.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from resque_compat.protocol.records import ProtocolError

#: every history key expires this long after the last sample (no sampler: the history goes)
HISTORY_TTL = 8 * 24 * 3600
#: at most this many queues (the deepest) and classes are kept per sample
MAX_QUEUES = 200
MAX_CLASSES = 100
#: longer queue or class names are cut (they come from peers' data)
MAX_NAME = 200
OTHER_CLASS = "(other classes)"


class HistorySample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One reading. ``None`` counters were unreadable (a peer stored something odd)."""

    t: float  # Redis server time, seconds
    processed: int | None = None
    failed: int | None = None
    queued: int = 0  # every queue, not only those kept in ``queues``
    queues: dict[str, int] = {}
    classes: dict[str, int] = {}  # cumulative, as the history_classes hash held it


@dataclass(frozen=True)
class Tier:
    """A resolution: one sample per ``step`` seconds, ``cap`` samples kept."""

    name: str
    step: int
    cap: int


TIERS = (Tier("minute", 60, 120), Tier("tenmin", 600, 160), Tier("hour", 3600, 180))
#: what each range of the charts reads: (tier, seconds shown)
RANGES: dict[str, tuple[Tier, int]] = {
    "hour": (TIERS[0], 3600),
    "day": (TIERS[1], 24 * 3600),
    "week": (TIERS[2], 7 * 24 * 3600),
}

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(HistorySample).decode


def encode_sample(sample: HistorySample) -> bytes:
    return _encode(sample)


def decode_sample(raw: bytes | str) -> HistorySample:
    """Raises :class:`ProtocolError` for anything that is not a sample (readers skip those)."""
    try:
        return _decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError, RecursionError) as exc:
        raise ProtocolError(f"not a history sample: {exc}") from None
