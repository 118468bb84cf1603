"""A TCP proxy on loopback that the fault tests put between clients and a private redis-server.

It forwards bytes both ways and, on command, breaks the link the way networks break:

* :meth:`TcpProxy.cut` resets every open connection at once (a switch reboot, a killed LB);
* :meth:`TcpProxy.cut_after` forwards exactly N more client bytes, then resets that
  connection: a cut in the middle of a pipeline or a MULTI block, at a chosen byte;
* :meth:`TcpProxy.cut_before_reply`: the request reaches Redis whole, its reply never comes
  back (the ambiguous case: the write happened, the client cannot know);
* :meth:`TcpProxy.set_delay` holds every chunk for a while (a slow link);
* :meth:`TcpProxy.set_drop` swallows bytes silently, connections stay open (a black hole:
  only timeouts notice);
* :meth:`TcpProxy.set_refuse` closes new connections as soon as they are accepted.

Threads, not asyncio: the proxy must keep working while the test thread blocks in redis-py.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from types import TracebackType
from typing import NamedTuple


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0), as a dying middlebox does, rather than a polite FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Arm(NamedTuple):
    """A pending cut: at ``offset`` bytes after the first ``marker`` (or after arming)."""

    marker: bytes | None
    offset: int
    reply_lost: bool

    def position(self, stream: bytes) -> int | None:
        if self.marker is None:
            return self.offset
        found = stream.find(self.marker)
        return None if found < 0 else found + self.offset


class _Link:
    """One client connection and its upstream twin, pumped by one thread with select()."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        self.arm: _Arm | None = None  # the cut this connection will suffer
        self.seen = b""  # client->server bytes since the cut was armed
        self.hold_replies = False  # swallow server->client bytes, then cut (reply lost)
        self.thread = threading.Thread(target=self._pump, name="tcp-proxy-link", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.upstream)

    def _pump(self) -> None:
        try:
            while not self.closed.is_set():
                try:
                    readable, _, _ = select.select([self.client, self.upstream], [], [], 0.05)
                except (OSError, ValueError):
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    to_server = sock is self.client
                    if self.proxy.drop:
                        continue
                    if self.proxy.delay:
                        time.sleep(self.proxy.delay)
                    if to_server:
                        self._to_server(data)
                    else:
                        self._to_client(data)
                    if self.closed.is_set():
                        return
        except OSError:
            return
        finally:
            self.close()
            self.proxy._forget(self)

    def _to_server(self, data: bytes) -> None:
        arm = self.arm or self.proxy.take_arm()
        if arm is None:
            self.upstream.sendall(data)
            self.proxy.bytes_up += len(data)
            return
        self.arm = arm
        stream = self.seen + data
        at = arm.position(stream)
        if at is None or at > len(stream):
            self.upstream.sendall(data)
            self.proxy.bytes_up += len(data)
            self.seen = stream
            return
        part = data[: max(0, at - len(self.seen))]
        if part:
            self.upstream.sendall(part)
            self.proxy.bytes_up += len(part)
        if arm.reply_lost:
            # the request is whole upstream: let Redis run it, then lose the reply
            self.hold_replies = True
            time.sleep(0.2)
        self.proxy.cuts += 1
        self.close()

    def _to_client(self, data: bytes) -> None:
        if self.hold_replies:
            return
        self.client.sendall(data)


class TcpProxy:
    """``TcpProxy(target_port).start()``; clients connect to :attr:`port` (or :attr:`url`)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.delay = 0.0
        self.drop = False
        self.refuse = False
        self.cuts = 0
        self.accepted = 0
        self.bytes_up = 0
        self._arm: _Arm | None = None
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> TcpProxy:
        self.listener.listen(128)
        self.listener.settimeout(0.05)
        self._thread.start()
        return self

    # -- faults -----------------------------------------------------------------
    def cut(self) -> int:
        """Reset every open connection now; returns how many were cut. New ones still work."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        self.cuts += len(links)
        return len(links)

    def cut_after(self, nbytes: int, *, marker: bytes | None = None, reply_lost: bool = False) -> None:
        """Arm a cut for the next connection that sends data: ``nbytes`` more client bytes
        go through (counted from the start of ``marker`` when given, e.g. ``b"EXEC"``), then
        it is reset. With ``reply_lost`` Redis gets those bytes and runs them, but the reply
        is swallowed before the reset."""
        with self._lock:
            self._arm = _Arm(marker, nbytes, reply_lost)

    def cut_before_reply(self, marker: bytes) -> None:
        """The request up to the end of the command starting at ``marker`` reaches Redis
        whole; its reply is lost (the write happened; the client cannot know it did)."""
        self.cut_after(len(marker) + 2, marker=marker, reply_lost=True)

    def take_arm(self) -> _Arm | None:
        with self._lock:
            arm, self._arm = self._arm, None
            return arm

    def set_delay(self, seconds: float) -> None:
        self.delay = seconds

    def set_drop(self, on: bool) -> None:
        self.drop = on

    def set_refuse(self, on: bool) -> None:
        self.refuse = on

    def heal(self) -> None:
        """Back to a clean link (open connections stay as they are)."""
        self.delay = 0.0
        self.drop = False
        self.refuse = False
        with self._lock:
            self._arm = None

    # -- plumbing ---------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.refuse:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            link = _Link(self, client, upstream)
            with self._lock:
                self._links.add(link)
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()
        self._thread.join(2)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
