"""Fixtures shared by tests/ and interop-tests/: a private redis-server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from resque_compat import Resque
from resque_compat.embedded import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server on a free port for the whole run (never the machine's own Redis)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server, emptied before each test."""
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    """A raw redis-py client on the emptied server."""
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def resque(redis_url: str) -> Resque:
    return Resque(redis_url)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to kill, restart or cut off."""
    with RedisServer() as server:
        yield server
