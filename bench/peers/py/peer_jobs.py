"""No-op, sleep and stamp jobs for the RQ and pyres benches (pyres names them ``peer_jobs.Noop``...)."""

import os
import time

import redis

_stamps: "redis.Redis | None" = None


def _client() -> "redis.Redis":
    global _stamps  # noqa: PLW0603 - one connection per worker process, made on first use
    if _stamps is None:
        host, port = os.environ.get("BENCH_REDIS", "127.0.0.1:6379").rsplit(":", 1)
        _stamps = redis.Redis(host=host, port=int(port))
    return _stamps


def noop(i: int = 0) -> None:
    return None


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def stamp() -> None:
    t = time.time()
    _client().rpush("resque:bench:stamps", f"{t:.6f}")


class Noop:
    queue = "bench"

    @staticmethod
    def perform(i: int = 0) -> None:
        return None


class Sleep:
    queue = "bench"

    @staticmethod
    def perform(seconds: float) -> None:
        time.sleep(seconds)


class Stamp:
    queue = "bench"

    @staticmethod
    def perform() -> None:
        stamp()
