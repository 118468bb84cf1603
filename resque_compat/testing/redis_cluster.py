"""A private Redis Cluster on loopback ports, for the tests: ``redis-server --cluster-enabled yes``
nodes joined by ``redis-cli --cluster create``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

from resque_compat.testing.redis_server import RedisServer, RedisUnavailable, find_redis_server, free_port


def find_redis_cli(server_binary: str) -> str:
    """``redis-cli`` next to ``server_binary``, else on PATH (``--cluster create`` needs it)."""
    beside = Path(server_binary).with_name("redis-cli")
    found = str(beside) if beside.exists() else shutil.which("redis-cli")
    if not found:
        raise RedisUnavailable("no redis-cli found (needed to create a Redis Cluster)")
    return found


def cluster_port() -> int:
    """A free port for a cluster node: its bus listens 10000 higher, so both must be free
    (and the port at most 55535)."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class LocalCluster:
    """A throwaway Redis Cluster on loopback ports: ``masters`` primaries (the 16384 slots split
    between them by ``redis-cli --cluster create``), each with ``replicas`` replicas.

    ``url`` is the ``redis+cluster://`` address of every node; ``owner(slot)`` the server that
    serves a slot now; ``failover(slot)`` promotes that slot's replica (``CLUSTER FAILOVER``).
    ``tls``: a directory holding ``ca.crt``, ``server.crt`` and ``server.key``; the nodes then also
    listen for TLS (clients, cluster bus and replication over TLS) and ``tls_url`` is the
    ``rediss+cluster://`` address (the plain ports stay, on loopback, for setting up and probing)."""

    #: a failed primary is replaced after this long (the default 15 s would slow failover tests)
    NODE_TIMEOUT_MS = 2000

    def __init__(
        self, masters: int = 3, replicas: int = 0, *extra_args: str, binary: str | None = None, tls: Path | None = None
    ) -> None:
        self.binary = binary or find_redis_server()
        self.cli = find_redis_cli(self.binary)
        self.masters = masters
        self.replicas = replicas
        cluster_args = (
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS),
            "--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0", *extra_args,
        )  # fmt: skip
        count = masters * (1 + replicas)
        self.tls = tls
        self.tls_ports = [cluster_port() for _ in range(count)] if tls else []
        self.servers = [
            RedisServer(cluster_port(), *cluster_args, *self._tls_args(i), binary=self.binary) for i in range(count)
        ]

    def _tls_args(self, index: int) -> tuple[str, ...]:
        if self.tls is None:
            return ()
        return (
            "--tls-port", str(self.tls_ports[index]), "--tls-cert-file", str(self.tls / "server.crt"),
            "--tls-key-file", str(self.tls / "server.key"), "--tls-ca-cert-file", str(self.tls / "ca.crt"),
            "--tls-auth-clients", "no", "--tls-cluster", "yes", "--tls-replication", "yes",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    @property
    def tls_url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.tls_ports)
        return f"rediss+cluster://{nodes}?ssl_ca_certs={self.tls / 'ca.crt' if self.tls else ''}"

    def start(self, timeout: float = 30.0) -> LocalCluster:
        for server in self.servers:
            server.start()
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        subprocess.run(
            [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
        )  # fmt: skip
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every running node reports ``cluster_state:ok`` and knows every replica: a
        cluster is usable (and failover-ready) only once the gossip has settled."""
        deadline = time.monotonic() + timeout
        while not self._settled():
            if time.monotonic() > deadline:
                raise RedisUnavailable("the Redis Cluster did not settle")
            time.sleep(0.05)

    def _settled(self) -> bool:
        running = [s for s in self.servers if s.process is not None]
        try:
            for server in running:
                with server.client(socket_timeout=2) as client:
                    info = client.execute_command("CLUSTER", "INFO")
                    if b"cluster_state:ok" not in info:
                        return False
                    roles = [
                        line.split()[2] for line in client.execute_command("CLUSTER", "NODES").split(b"\n") if line
                    ]
                    if sum(b"slave" in r and b"fail" not in r for r in roles) < self.replicas * 3 and self.replicas:
                        return False
        except redis.RedisError:
            return False
        return True

    def owner(self, slot: int) -> RedisServer:
        """The running primary serving ``slot`` now."""
        for server in self.servers:
            if server.process is None:
                continue
            with server.client(socket_timeout=2) as client:
                for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        return self._server(int(primary[1]))
        raise RedisUnavailable(f"no node serves slot {slot}")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        with primary.client(socket_timeout=2) as client:
            replicas = client.execute_command("CLUSTER", "REPLICAS", self.node_id(primary))
        for line in replicas:
            port = int(line.split()[1].split(b"@")[0].rsplit(b":", 1)[1])
            return self._server(port)
        raise RedisUnavailable(f"no replica of 127.0.0.1:{primary.port}")

    def failover(self, slot: int, *, kill: bool = False, timeout: float = 40.0) -> RedisServer:
        """Once the replica of ``slot``'s primary has every write: ``CLUSTER FAILOVER`` on it, or
        with ``kill`` SIGKILL the primary (the other primaries elect the replica after
        ``NODE_TIMEOUT_MS``); then wait until every node names the replica the slot's primary
        (and, without ``kill``, the old one is its replica). Returns the new primary."""
        old = self.owner(slot)
        new = self.replica_of(old)
        deadline = time.monotonic() + timeout

        def wait(done: Callable[[], bool], what: str) -> None:
            while not done():
                if time.monotonic() > deadline:
                    raise RedisUnavailable(f"cluster failover: {what}")
                time.sleep(0.05)

        def synced() -> bool:
            with old.client() as primary, new.client() as replica:
                offset = primary.info("replication")["master_repl_offset"]
                info = replica.info("replication")
                return bool(info.get("master_link_status") == "up" and info.get("slave_repl_offset", -1) >= offset)

        wait(synced, "the replica to catch up")
        if kill:
            old.kill()
            wait(lambda: self._agreed(slot, new), "every node to name the new primary")
            return new
        with new.client() as replica:
            replica.execute_command("CLUSTER", "FAILOVER")
        wait(lambda: self._agreed(slot, new), "every node to name the new primary")
        with old.client() as demoted:
            wait(lambda: demoted.info("replication")["role"] == "slave", "the old primary to become a replica")
        return new

    def _agreed(self, slot: int, primary: RedisServer) -> bool:
        for server in self.servers:
            if server.process is None:
                continue
            try:
                with server.client(socket_timeout=2) as client:
                    ranges = client.execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                return False
            if not any(start <= slot <= end and int(node[1]) == primary.port for start, end, node, *_ in ranges):
                return False
        return True

    def node_id(self, server: RedisServer) -> str:
        with server.client(socket_timeout=2) as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())

    def _server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
