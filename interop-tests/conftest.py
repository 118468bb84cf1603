"""Fixtures for the interop suite: the real Ruby Resque, php-resque (two variants), node-resque
and resque-compat's own worker, each driven as a subprocess against the session's redis-server.

A peer that is not available is skipped with a message naming what is missing (the
variable, the interpreter, the package). Every run writes ``results/matrix.md`` and
``results/matrix.json``: producer x consumer, pass / fail / skipped, plus the other scenarios.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import redis
from harness import (
    HERE,
    RESULTS_DIR,
    Peer,
    Peers,
    _node_peer,
    _php_peer,
    _python_peer,
    _ruby_peer,
    write_results,
)

from resque_compat.testing.redis_server import RedisServer


@pytest.fixture(scope="session")
def peer_table() -> dict[str, Peer]:
    """Discovered once per run: probing Ruby, PHP and npm takes a moment."""
    return {
        "ruby": _ruby_peer(),
        "php-cb": _php_peer("php-cb", "INTEROP_PHP_RESQUE"),
        "php-fork": _php_peer("php-fork", "INTEROP_PHP_RESQUE_FORK"),
        "node": _node_peer(),
        "python": _python_peer(),
    }


@pytest.fixture
def peers(peer_table: dict[str, Peer], redis_server: RedisServer, redis_url: str) -> Peers:
    """The peers, pointed at the session's redis-server, emptied for this test."""
    return Peers(peer_table, redis_server)


@pytest.fixture
def ruby(peers: Peers) -> Peer:
    return peers["ruby"].require()


@pytest.fixture
def node(peers: Peers) -> Peer:
    return peers["node"].require()


@pytest.fixture
def python_worker(peers: Peers) -> Peer:
    return peers["python"].require()


@pytest.fixture(params=["php-cb", "php-fork"])
def php(request: pytest.FixtureRequest, peers: Peers) -> Peer:
    return peers[str(request.param)].require()


@pytest.fixture
def results(r: redis.Redis) -> Callable[[], list[dict[str, Any]]]:
    """What the echo jobs of every implementation recorded, oldest first."""

    def read() -> list[dict[str, Any]]:
        return [json.loads(item) for item in r.lrange("resque:interop:results", 0, -1)]

    return read


# -- the results table: collected here, written by harness.write_results --------------------

_CELLS: dict[tuple[str, str], dict[str, Any]] = {}
_SCENARIOS: dict[str, dict[str, Any]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if Path(str(item.fspath)).resolve().parent != HERE:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            state, detail = "pass", ""
        elif report.skipped:
            state = "skipped"
            detail = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            detail = detail.removeprefix("Skipped: ")
        else:
            state = "fail"
            detail = _first_error_line(report)
        entry = {"result": state, "detail": detail, "aspects": dict(report.user_properties).get("aspects", {})}
        params = getattr(item, "callspec", None)
        if params is not None and item.get_closest_marker("matrix") is not None:
            _CELLS[(params.params["producer"], params.params["consumer"])] = entry
        else:
            _SCENARIOS[item.nodeid.split("::", 1)[-1]] = {**entry, "file": Path(str(item.fspath)).name}


def _first_error_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.split())[:400]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "matrix: one producer x consumer cell of the interop results table")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _CELLS and not _SCENARIOS:
        return
    write_results(RESULTS_DIR, _CELLS, _SCENARIOS)
