"""A Redis Sentinel deployment for the fault tests: a primary, a replica, one sentinel.

Debian's ``redis-sentinel`` binary is used when it is on PATH; tests skip without it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import redis
from waiting import wait_for

from resque_compat.testing.redis_server import RedisServer, free_port

SERVICE = "mymaster"
#: Sync a replica at once (not after the 5 s diskless delay); stop without waiting for replicas.
FAST_REPLICATION = ("--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0")


def sentinel_binary() -> str | None:
    return shutil.which("redis-sentinel")


class SentinelSetup:
    """``with SentinelSetup() as s:`` → ``s.url`` is ``redis+sentinel://127.0.0.1:<port>/mymaster``."""

    def __init__(self) -> None:
        binary = sentinel_binary()
        if binary is None:
            raise RuntimeError("redis-sentinel is not installed")
        self.binary = binary
        self.primary = RedisServer(None, *FAST_REPLICATION)
        self.replica = RedisServer(None, *FAST_REPLICATION)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="resque-compat-sentinel-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> SentinelSetup:
        self.primary.start()
        self.replica.start()
        self.replica.client().replicaof("127.0.0.1", self.primary.port)
        self.wait_synced(self.primary, self.replica)
        config = self.dir / "sentinel.conf"  # sentinel rewrites its config: a file of its own
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self.process = subprocess.Popen(
            [self.binary, str(config), "--logfile", str(self.dir / "sentinel.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._sees_replica, what="the sentinel to discover the replica")
        return self

    def _sees_replica(self) -> bool:
        replicas = self.client().sentinel_slaves(SERVICE)
        return any(r.get("port") == self.replica.port and r.get("flags") == "slave" for r in replicas)

    def master_port(self) -> int:
        address = self.client().sentinel_get_master_addr_by_name(SERVICE)
        assert isinstance(address, tuple), address
        return int(address[1])

    @staticmethod
    def wait_synced(primary: RedisServer, replica: RedisServer) -> None:
        """Until the replica has every write the primary acknowledged."""

        def synced() -> bool:
            info = replica.client().info("replication")
            offset = primary.client().info("replication")["master_repl_offset"]
            return bool(info.get("master_link_status") == "up" and info.get("slave_repl_offset", -1) >= offset)

        wait_for(synced, what="the replica to catch up")

    def failover(self) -> None:
        """``SENTINEL FAILOVER``, then wait until the old primary is a replica of the new one
        (the sentinel demotes it on its next look, up to ~10 s later)."""
        self.wait_synced(self.primary, self.replica)
        self.client().execute_command("SENTINEL", "FAILOVER", SERVICE)  # type: ignore[no-untyped-call]
        wait_for(lambda: self.master_port() == self.replica.port, what="the sentinel to promote the replica")
        wait_for(
            lambda: self.primary.client().info("replication")["role"] == "slave",
            timeout=40, what="the sentinel to demote the old primary",
        )  # fmt: skip
        self.primary, self.replica = self.replica, self.primary

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.primary.close()
        self.replica.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelSetup:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
