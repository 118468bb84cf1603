"""Fixtures shared by tests/ and interop-tests/: a private redis-server per session.

Skips: use ``tests/skip_policy.py``'s helpers (``skip_missing_package``, ``needs_binary``,
``skip_missing_peer``, ``skip_not_applicable``). Under ``CI=true`` a skip for a package that
``./dev test`` installs, or an unclassified skip, fails the run; Ruby/PHP peer skips are counted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.append(str(Path(__file__).resolve().parent / "tests"))  # skip_policy, for interop-tests/ too

from skip_policy import SkipPolicy

from resque_compat import Resque
from resque_compat.testing.redis_server import RedisServer

pytest_plugins = ["cli_runner"]  # the `cli` fixture (tests/cli_runner.py)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipPolicy(), "resque-compat-skip-policy")


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
