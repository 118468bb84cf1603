"""resque-status's record (``status:<uuid>``): its shape, update rule, names and percentage.

Every write is Ruby's ``Status::Hash`` merge: start from ``{"time": now, "status": "queued",
"uuid": uuid}``, merge the stored record over it (so ``time`` stays the enqueue time), then
``{"name": name}``, then the update. Python's ``dict.update`` keeps first insertion positions
exactly as Ruby's ``Hash#merge`` does, so the key order matches Ruby's byte for byte.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from resque_compat.protocol.records import UNSET, Record
from resque_compat.protocol.rubyfmt import ruby_inspect

QUEUED = "queued"
WORKING = "working"
COMPLETED = "completed"
FAILED = "failed"
KILLED = "killed"


class ResqueStatus(Record, kw_only=True, omit_defaults=True):
    """``status:<uuid>``. Every field is loosely typed: a peer or a person may store anything,
    and every reader must still show it."""

    time: Any = UNSET
    status: Any = UNSET
    uuid: Any = UNSET
    options: Any = UNSET
    name: Any = UNSET
    num: Any = UNSET
    total: Any = UNSET
    message: Any = UNSET

    @property
    def state(self) -> str:
        return self.status if isinstance(self.status, str) else ""

    @property
    def killable(self) -> bool:
        """``Hash#killable?``: not failed, completed or killed."""
        return self.state not in (FAILED, COMPLETED, KILLED)

    @property
    def final(self) -> bool:
        return self.state in (FAILED, COMPLETED, KILLED)

    @property
    def pct_complete(self) -> int:
        """``Hash#pct_complete``: 100 when completed, 0 when queued, else num / total (total 0 or
        nil counts as 1), truncated."""
        if self.state == COMPLETED:
            return 100
        if self.state == QUEUED:
            return 0
        total = _to_f(None if self.total is UNSET else self.total)
        num = _to_f(None if self.num is UNSET else self.num)
        try:
            return int(num / (total or 1.0) * 100)
        except (OverflowError, ValueError):
            return 0

    def json_with_pct(self) -> dict[str, Any]:
        """``Hash#json`` (the web tab's ``.js``): the record plus ``pct_complete`` last."""
        out = self.to_dict()
        out.pop("pct_complete", None)
        out["pct_complete"] = self.pct_complete
        return out


#: the numeric prefix Ruby's ``String#to_f`` reads (underscores between digits allowed)
_RUBY_FLOAT = re.compile(r"\s*([+-]?(?:\d+(?:_\d+)*)?(?:\.\d+(?:_\d+)*)?(?:[eE][+-]?\d+(?:_\d+)*)?)")


def _to_f(value: Any) -> float:
    """Ruby's lenient ``to_f``: numbers as they are, a string's numeric prefix, the rest 0.
    One regex match, so a huge stored string costs linear time (a reader stays total)."""
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _RUBY_FLOAT.match(value)
        prefix = match.group(1).replace("_", "") if match else ""
        try:
            return float(prefix) if any(c.isdigit() for c in prefix) else 0.0
        except ValueError:  # an exponent without a mantissa ("e5"): Ruby reads 0
            return 0.0
    return 0.0


def status_name(class_name: str, options: Any) -> str:
    """``"#{self.class.name}(#{options.inspect unless options.empty?})"``."""
    try:
        shown = "" if not options else ruby_inspect(options)
    except RecursionError:  # nested past Python's stack
        shown = "…"
    return f"{class_name}({shown})"


def merged(
    current: dict[str, Any] | None, uuid: str, name: str | None, *pieces: str | dict[str, Any], now: int | None = None
) -> ResqueStatus:
    """The next record, by Ruby's merge rule (a string piece is ``{"message": piece}``)."""
    data: dict[str, Any] = {"time": int(time.time()) if now is None else now, "status": QUEUED, "uuid": uuid}
    if current:
        data.update(current)
    if name is not None:
        data["name"] = name
    for piece in pieces:
        data.update({"message": piece} if isinstance(piece, str) else piece)
    return ResqueStatus.from_dict(data)


def new_uuid() -> str:
    """``SecureRandom.hex``: 32 lowercase hex digits."""
    return secrets.token_hex(16)
