"""Worker settings from the environment variables Ruby and PHP users already set."""

from __future__ import annotations

import pytest

from resque_compat.worker import WorkerConfig, WorkerConfigError


def test_environment_as_php_and_ruby_users_write_it() -> None:
    env = {
        "QUEUE": "critical, default",
        "INTERVAL": "0.5",
        "BLOCKING": "",
        "COUNT": "3",
        "PIDFILE": "/run/w.pid",
        "VVERBOSE": "1",
        "APP_INCLUDE": "app.jobs,app.more",
        "FORK_PER_JOB": "false",
        "HEARTBEAT_INTERVAL": "5",
        "PRUNE_INTERVAL": "25",
        "FAILURE_BACKEND": "redis_multi_queue",
    }
    config = WorkerConfig.build(environ=env)
    assert config.queues == ("critical", "default")
    assert config.interval == 0.5 and config.blocking  # BLOCKING set at all, as php-resque reads it
    assert config.count == 3 and config.pidfile == "/run/w.pid" and config.verbose == 2
    assert config.imports == ("app.jobs", "app.more") and not config.fork
    assert config.heartbeat_interval == 5 and config.prune_interval == 25
    assert config.failure_backend == "redis_multi_queue" and not config.burst


def test_cli_values_win_and_interval_zero_is_burst() -> None:
    config = WorkerConfig.build(queues="a", interval=0, fork=True, environ={"QUEUE": "b", "FORK_PER_JOB": "false"})
    assert config.queues == ("a",) and config.burst and config.fork
    assert WorkerConfig.build(environ={"QUEUES": "x,*", "INTERVAL": "2"}).has_patterns


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no queues given"),
        ({"QUEUE": "!low"}, "no queues given"),
        ({"QUEUE": "a", "INTERVAL": "soon"}, "INTERVAL must be a number"),
        ({"QUEUE": "a", "COUNT": "0"}, "count must be >= 1"),
        ({"QUEUE": "a", "FAILURE_BACKEND": "mongo"}, "unknown failure backend"),
    ],
)
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(WorkerConfigError, match=message):
        WorkerConfig.build(environ=env)
