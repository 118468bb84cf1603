"""Values a person or an API client hands us, checked before anything is written.

JSON has no NaN or Infinity, so a value that would be stored as something else (``1e999``
silently becoming ``null``) is refused with the reason instead of bent. Integers of any size are
JSON and are kept exactly (Ruby reads them as written; php-resque and node-resque read them as
floats, as they read any big number from any producer). Nesting is limited so that
no reader, in any language, hits its recursion limit on what we wrote.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: deepest nesting of lists/objects accepted in job arguments (documented in the README)
MAX_NESTING = 64


class InputError(ValueError):
    """A value we refuse to store; the message says which and why."""


def check_json_value(value: Any, what: str = "value", _depth: int = 0) -> None:
    """Raise :class:`InputError` unless ``value`` is plain JSON every peer reads as written:
    finite floats, integers, string object keys, at most ``MAX_NESTING`` deep."""
    if _depth > MAX_NESTING:
        raise InputError(f"{what} is nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{what} holds {value}, which JSON cannot carry")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_json_value(item, what, _depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"{what} has an object key that is not a string: {key!r}")
            check_json_value(item, what, _depth + 1)
        return
    raise InputError(f"{what} holds a {type(value).__name__}, which is not JSON")


def parse_json_input(text: str | bytes, what: str) -> Any:
    """Strict JSON from a person or a client: NaN/Infinity literals, overflowing numbers
    (``1e999``) and deep nesting refused; returns the value."""

    def refuse(name: str) -> Any:
        raise InputError(f"{what} contains {name}, which JSON does not allow")

    try:
        value = json.loads(text, parse_constant=refuse)
    except InputError:
        raise
    except RecursionError:
        raise InputError(f"{what} is nested deeper than {MAX_NESTING} levels") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise InputError(f"{what} is not valid JSON: {exc}") from None
    check_json_value(value, what)
    return value


def check_name(what: str, value: object) -> str:
    """A queue or class name: a non-empty string without NUL (never ``str()`` of something else)."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a non-empty string, got {type(value).__name__}")
    if not value.strip():
        raise InputError(f"{what} must be a non-empty string")
    if "\0" in value:
        raise InputError(f"{what} must not contain NUL")
    return value


def check_seconds(value: float, what: str, *, positive: bool = True, maximum: float | None = None) -> float:
    """A duration or a time: finite, positive (or non-negative), at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise InputError(f"{what} must be greater than 0, got {value:g}")
    if not positive and value < 0:
        raise InputError(f"{what} must not be negative, got {value:g}")
    if maximum is not None and value > maximum:
        raise InputError(f"{what} must be at most {maximum:g}, got {value:g}")
    return float(value)
