"""Redis replies as text or bytes: redis-py types them ``bytes | str`` whatever the connection returns."""

from __future__ import annotations


def text(value: object) -> str:
    """A reply value as ``str`` (bytes decoded as UTF-8, undecodable bytes replaced)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def raw(value: object) -> bytes:
    """A reply value as ``bytes`` (the exact stored bytes when the client returns bytes)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def to_int(value: object) -> int:
    """A counter as peers store it; anything unreadable counts as 0 (resque-web does the same)."""
    try:
        return int(text(value)) if value is not None else 0
    except ValueError:
        return 0
