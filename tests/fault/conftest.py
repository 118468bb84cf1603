"""Fixtures of the fault suite, and the hooks that write and print its results table."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from fault_results import TABLE, ScenarioResult
from proxy import TcpProxy
from worker_farm import Farm

from resque_compat.testing.redis_server import RedisServer

_KEY = pytest.StashKey[ScenarioResult]()


@pytest.fixture
def fault_result(request: pytest.FixtureRequest) -> Iterator[ScenarioResult]:
    """This scenario's row of the results table; name it with ``@pytest.mark.scenario("…")``."""
    marker = request.node.get_closest_marker("scenario")
    name = marker.args[0] if marker else request.node.name
    if "[" in request.node.name and marker:
        name += request.node.name[request.node.name.index("[") :]
    row = TABLE.new(name, request.node.nodeid)
    request.node.stash[_KEY] = row
    started = time.monotonic()
    yield row
    row.seconds = round(time.monotonic() - started, 2)


@pytest.fixture
def farm(private_redis: RedisServer) -> Iterator[Farm]:
    """Worker processes on a private redis-server, and the accounting of their jobs."""
    farm = Farm(private_redis.url)
    yield farm
    farm.close()


@pytest.fixture
def proxied_redis(private_redis: RedisServer) -> Iterator[tuple[RedisServer, TcpProxy]]:
    """A private redis-server and a proxy in front of it: clients use ``proxy.url``."""
    with TcpProxy(private_redis.port) as proxy:
        yield private_redis, proxy


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(name): the fault scenario's name in the results table")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    row = item.stash.get(_KEY, None)
    if row is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        row.outcome = "skipped" if report.skipped else ("passed" if report.passed else "FAILED")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not TABLE.rows:
        return
    md, js = TABLE.write(Path(config.rootpath) / "tests" / "artifacts")
    terminalreporter.section("fault suite results")
    terminalreporter.write(TABLE.markdown())
    terminalreporter.write_line(f"written to {md} and {js.name}")
