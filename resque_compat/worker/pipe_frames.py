"""The pipes between a worker and its forked job child, framed so neither side waits for EOF.

Child to worker: ``>IB`` (size, last) then the job's ``Outcome`` as JSON; ``last`` says the
child will take no further job (it was sent TERM, or its ``after_fork`` hook failed).
Worker to child: ``>cI`` (kind, size) then the body:

* ``A`` the outcome is recorded in Redis (the child may go, or wait for its next job);
* ``L`` the worker leaves without recording it (stopping with Redis unreachable): a pruner's;
* ``J`` the next job of a batch (``--jobs-per-fork``), an :class:`Order`.

End of file without ``A`` or ``L`` after an outcome means the worker died: the child records
the job itself (``fork_child``).
"""

from __future__ import annotations

import os
import struct

import msgspec

from resque_compat.worker.runner import Outcome, decode_outcome, encode_outcome

_OUTCOME = struct.Struct(">IB")
_ORDER = struct.Struct(">cI")
RECORDED, LEAVE, JOB = b"A", b"L", b"J"


class Order(msgspec.Struct, array_like=True):
    """The next job of a batch, with what recording its end needs."""

    queue: str
    item: bytes
    status_key: str | None
    status: bytes | None
    attempt: int


_encode_order = msgspec.msgpack.Encoder().encode
_decode_order = msgspec.msgpack.Decoder(Order).decode


def outcome_frame(outcome: Outcome, *, last: bool) -> bytes:
    encoded = encode_outcome(outcome)
    return _OUTCOME.pack(len(encoded), last) + encoded


def complete_outcome(buf: bytearray) -> tuple[Outcome, bool] | None:
    """(outcome, last) once all of its framed bytes arrived; None while incomplete or garbled."""
    if len(buf) < _OUTCOME.size:
        return None
    size, last = _OUTCOME.unpack_from(buf)
    if len(buf) < _OUTCOME.size + size:
        return None
    try:
        return decode_outcome(bytes(buf[_OUTCOME.size : _OUTCOME.size + size])), bool(last)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def order_frame(kind: bytes, order: Order | None = None) -> bytes:
    body = _encode_order(order) if order is not None else b""
    return _ORDER.pack(kind, len(body)) + body


def read_order(fd: int) -> tuple[bytes, Order | None] | None:
    """Blocking: the next (kind, order) from the worker; None at end of file or on garbage."""
    head = _read_exactly(fd, _ORDER.size)
    if head is None:
        return None
    kind, size = _ORDER.unpack(head)
    body = _read_exactly(fd, size) if size else b""
    if body is None:
        return None
    if kind != JOB:
        return kind, None
    try:
        return kind, _decode_order(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)
