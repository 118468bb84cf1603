"""The graphs' data: the sampler's history turned into aligned series for one range.

Every range is a fixed grid of buckets (60 minutes, 144 ten-minute steps, 168 hours) ending
now; a bucket with no sample is ``None``, which the charts draw as a gap. Rates come from two
consecutive samples only, so a gap, a restarted counter (it went down) or an unreadable one
never turns into a spike or a zero.
"""

from __future__ import annotations

from typing import Any

from resque_compat.client import Resque
from resque_compat.history import recorded, redis_now
from resque_compat.protocol.history import MAX_QUEUES, OTHER_CLASS, RANGES, HistorySample
from resque_compat.web.actions import BadRequestError

#: classes drawn on the Failed page; the rest are summed into one series
TOP_CLASSES = 8


def history(
    resque: Resque, range_name: str = "hour", queue: str | None = None, now: float | None = None
) -> dict[str, Any]:
    """Throughput (jobs per minute), queued total, each queue's depth and failures per class."""
    if range_name not in RANGES:
        raise BadRequestError(f"range must be one of {', '.join(RANGES)}, not {range_name!r}")
    tier, span = RANGES[range_name]
    step = tier.step
    if now is None:
        now = redis_now(resque)
    samples: dict[int, HistorySample] = {}
    for sample in recorded(resque, tier):
        samples.setdefault(int(sample.t // step), sample)
    last = int(now // step)
    buckets = list(range(last - span // step + 1, last + 1))
    pairs = [(samples.get(b), samples.get(b - 1)) for b in buckets]

    names = sorted({name for s, _ in pairs if s for name in s.queues})
    if queue is not None:
        names = [queue]
    totals: dict[str, int] = {}
    class_deltas: dict[str, list[int | None]] = {}
    for cls in sorted({c for s, _ in pairs if s for c in s.classes}):
        series = [_delta(s.classes.get(cls, 0), p.classes.get(cls, 0)) if s and p else None for s, p in pairs]
        class_deltas[cls] = series
        totals[cls] = sum(v for v in series if v)
    shown = [c for c in sorted(totals, key=lambda c: (-totals[c], c)) if totals[c]][:TOP_CLASSES]
    rest = [c for c in class_deltas if c not in shown and totals[c]]
    classes = {c: class_deltas[c] for c in shown}
    if rest:
        classes[OTHER_CLASS] = [_sum([class_deltas[c][i] for c in rest]) for i in range(len(buckets))]

    return {
        "range": range_name,
        "step": step,
        "unit": "jobs per minute (averaged over the step)",
        "t": [b * step for b in buckets],
        "samples": sum(1 for s, _ in pairs if s),
        "processed": [_rate(s, p, "processed") for s, p in pairs],
        "failed": [_rate(s, p, "failed") for s, p in pairs],
        "queued": [s.queued if s else None for s, _ in pairs],
        "queues": {name: [_depth(s, name) for s, _ in pairs] for name in names},
        "classes": classes,
        "class_totals": {c: totals[c] for c in shown} | ({OTHER_CLASS: sum(totals[c] for c in rest)} if rest else {}),
    }


def _rate(sample: HistorySample | None, prev: HistorySample | None, field: str) -> float | None:
    if sample is None or prev is None or sample.t <= prev.t:
        return None
    now: int | None = getattr(sample, field)
    before: int | None = getattr(prev, field)
    if now is None or before is None or now < before:
        return None
    return round((now - before) * 60 / (sample.t - prev.t), 2)


def _delta(now: int, before: int) -> int | None:
    return now - before if now >= before else None


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _depth(sample: HistorySample | None, name: str) -> int | None:
    """A queue missing from a sample was empty (or gone), unless the sample was cut at MAX_QUEUES."""
    if sample is None:
        return None
    if name in sample.queues:
        return sample.queues[name]
    return 0 if len(sample.queues) < MAX_QUEUES else None
