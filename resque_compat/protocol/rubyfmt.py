"""Ruby's text forms of JSON values: ``to_s``, ``inspect`` and ``Array#join``.

Two Ruby plugins put these forms into Redis: resque-retry hashes ``args.join('-')`` into its
attempt key, and resque-status writes ``"Class(#{options.inspect})"`` as a status name. The
forms are Ruby 3.1's, checked against a real Ruby (``tests/test_plugin_layouts.py``).
"""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\v": "\\v"}
_ESCAPES.update({"\b": "\\b", "\a": "\\a", "\x1b": "\\e"})


def ruby_float(value: float) -> str:
    """``Float#to_s``: the shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if str(value).startswith("-") else ""
    if value == 0:
        return sign + "0.0"
    _, digits_t, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    decpt = len(digits_t) + int(exponent)
    if -4 < decpt <= 0:
        return f"{sign}0.{'0' * -decpt}{digits}"
    if 0 < decpt < 16:
        whole, frac = digits[:decpt].ljust(decpt, "0"), digits[decpt:]
        return f"{sign}{whole}.{frac or '0'}"
    exp = decpt - 1
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{sign}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"


def ruby_string_inspect(text: str) -> str:
    """``String#inspect`` for a UTF-8 string: printable characters as they are."""
    out = ['"']
    for i, ch in enumerate(text):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "#" and text[i + 1 : i + 2] in ("{", "$", "@"):
            out.append("\\#")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}" if ord(ch) == 0x7F else f"\\u{ord(ch):04X}")
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ruby_inspect(value: Any) -> str:
    """``inspect`` of a decoded JSON value (Ruby 3.1: ``{"k"=>"v"}``, ``nil``, ``[1, 2]``)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return ruby_string_inspect(value)
    if isinstance(value, float):
        return ruby_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
    return ruby_string_inspect(str(value))


def ruby_to_s(value: Any) -> str:
    """``to_s``: nil is empty, strings as they are, hashes as ``inspect``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return ruby_inspect(value)


def ruby_join(values: list[Any], separator: str) -> str:
    """``Array#join``: nested arrays flattened (without recursion, however deep), every element by
    ``to_s``; an element too deeply nested to inspect is shown as ``…``."""
    parts: list[str] = []
    stack: list[Any] = [iter(values)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            try:
                parts.append(ruby_to_s(item))
            except RecursionError:
                parts.append("…")
    return separator.join(parts)


_END = object()


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
