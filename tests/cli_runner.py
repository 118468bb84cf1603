"""The in-process CLI of the tests: the ``cli`` fixture and the one-line-error check."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from resque_compat.cli import main


@pytest.fixture
def cli(redis_url: str) -> Any:
    """Run ``resque-compat ARGS`` in-process on the test's Redis."""
    runner = CliRunner()
    env: dict[str, str | None] = {"REDIS_URL": redis_url, "RESQUE_NAMESPACE": None, "PREFIX": None,
                                  "REDIS_BACKEND": None, "FAILURE_BACKEND": None}  # fmt: skip

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def one_line_error(result: Result) -> str:
    """Assert the command failed cleanly: non-zero exit, no output, one ``resque-compat:`` line."""
    assert result.exit_code != 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("resque-compat: "), result.stderr
    return lines[0]
