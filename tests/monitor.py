"""MONITOR for tests: every command a real server runs, with its exact words (scripts' own
calls included), to check what a client sends rather than only what it stored."""

from __future__ import annotations

import re
import threading
from typing import Any

import redis

_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b", b'"': b'"', b"\\": b"\\"}


def _unescape(text: bytes) -> bytes:
    """Undo MONITOR's quoting (sdscatrepr: backslash escapes and \\xHH)."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i : i + 1] == b"\\":
            nxt = text[i + 1 : i + 2]
            if nxt == b"x":
                out += bytes([int(text[i + 2 : i + 4], 16)])
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += text[i : i + 1]
        i += 1
    return bytes(out)


def parse(line: bytes) -> tuple[bool, list[bytes]]:
    """(issued by a script?, the command's words) of one MONITOR line."""
    head, _, rest = line.partition(b"] ")
    return head.endswith(b" lua"), [_unescape(m) for m in _QUOTED.findall(rest)]


class Monitor:
    """Every command the server runs while the block is open, scripts' own calls included."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.lines: list[bytes] = []
        self._ready = threading.Event()

    def _listen(self) -> None:
        conn = self.client.connection_pool.get_connection()
        conn.send_command("MONITOR")
        conn.read_response()  # +OK
        self._ready.set()
        while True:
            line = conn.read_response(disable_decoding=True)
            assert isinstance(line, bytes)
            if b'"ECHO" "monitor-done"' in line:
                break
            self.lines.append(line)
        conn.disconnect()

    def __enter__(self) -> Monitor:
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        redis.Redis.from_url(self.url).echo("monitor-done")
        self.thread.join(10)


def undeclared_keys(url: str, lines: list[bytes]) -> tuple[int, list[tuple[bytes, bytes]]]:
    """How many script calls ran, and each (command, key) a script touched outside its KEYS."""
    client = redis.Redis.from_url(url)
    declared: set[bytes] = set()
    scripts = 0
    bad: list[tuple[bytes, bytes]] = []
    for line in lines:
        from_script, words = parse(line)
        if not words:
            continue
        if not from_script:
            if words[0].upper() in (b"EVALSHA", b"EVAL"):
                scripts += 1
                count = int(words[2])
                declared = set(words[3 : 3 + count])
            continue
        keys: Any = client.command_getkeys(*words)
        touched = [key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape") for key in keys]
        bad += [(words[0], key) for key in touched if key not in declared]
    return scripts, bad
