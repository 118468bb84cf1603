"""The interop harness: the peers' drivers as subprocesses, how each is found, and the
results-table writer. Fixtures and the pytest hooks that use it live in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from skip_policy import package_reason, peer_reason

from resque_compat.testing.redis_server import RedisServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_DIR = HERE / "peers"
RESULTS_DIR = HERE / "results"

#: Every implementation, in table order. "php-cb" is chrisboulton/php-resque, "php-fork" resque/php-resque.
IMPLEMENTATIONS = ("ruby", "php-cb", "php-fork", "node", "python")
RUN_TIMEOUT = 120.0
RUBY = "INTEROP_RUBY_RESQUE"


class PeerError(RuntimeError):
    """A driver command failed or printed no JSON."""


@dataclass
class Peer:
    """One implementation's driver. ``missing`` says why it cannot run here (None: it can), as a
    ``skip_policy`` reason: a peer not configured, or a package ``./dev test`` installs."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    missing: str | None = None

    def require(self) -> Peer:
        if self.missing:
            pytest.skip(self.missing)
        return self

    def environ(self, server: RedisServer, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env.update({"PEER_REDIS": f"127.0.0.1:{server.port}", "REDIS_URL": server.url, "RESQUE_NAMESPACE": "resque"})
        env.update(extra or {})
        return env

    def run(
        self, server: RedisServer, *args: str, timeout: float = RUN_TIMEOUT, env: dict[str, str] | None = None
    ) -> Any:
        """Run one command to completion and return the JSON of its last stdout line."""
        self.require()
        cmd = [*self.argv, *args]
        try:
            proc = subprocess.run(
                cmd,
                check=False,
                env=self.environ(server, env),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=HERE,
            )
        except subprocess.TimeoutExpired as exc:
            raise PeerError(f"{self.name} {args[0]}: no exit within {timeout} s; stderr: {_tail(exc.stderr)}") from None
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            raise PeerError(
                f"{self.name} {' '.join(args)[:200]}: exit {proc.returncode}; "
                f"stdout: {_tail(proc.stdout)}; stderr: {_tail(proc.stderr)}"
            )
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            raise PeerError(f"{self.name} {args[0]}: last line is not JSON: {lines[-1][:300]}") from None

    def start(self, server: RedisServer, *args: str, env: dict[str, str] | None = None) -> Running:
        """Start a long-running command (``worker QUEUES``); returns once it printed its first line."""
        self.require()
        # a file, not a pipe: a chatty worker must never block on stderr; closed by Running.stop
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        proc = subprocess.Popen(
            [*self.argv, *args],
            env=self.environ(server, env),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=HERE,
            start_new_session=True,
        )
        running = Running(self.name, proc, log=log)
        running.first = running.read_line()
        return running


@dataclass
class Running:
    """A started driver process; ``stop`` sends SIGQUIT (graceful everywhere) and waits."""

    name: str
    proc: subprocess.Popen[str]
    first: Any = None
    log: IO[str] | None = None

    def stderr(self) -> str:
        if self.log is None or self.log.closed:
            return ""
        self.log.seek(0)
        return self.log.read()

    def read_line(self, timeout: float = 60.0) -> Any:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
            if self.proc.poll() is not None:
                raise PeerError(
                    f"{self.name} exited with {self.proc.returncode} before starting: {_tail(self.stderr())}"
                )
        raise PeerError(f"{self.name} printed nothing within {timeout} s")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for stream in (self.proc.stdout, self.log):
            if stream:
                stream.close()
        return int(self.proc.returncode)


def _tail(text: str | bytes | None, size: int = 600) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = text.strip()
    return text if len(text) <= size else "…" + text[-size:]


# -- finding the peers -------------------------------------------------------------------------


def _ruby_peer() -> Peer:
    argv = ["ruby"]
    base = os.environ.get("INTEROP_RUBY_RESQUE")
    if not base:
        return Peer(
            "ruby", argv, missing=peer_reason(RUBY, "ruby: set INTEROP_RUBY_RESQUE to a resque/resque checkout")
        )
    if not (Path(base) / "lib" / "resque.rb").is_file():
        return Peer("ruby", argv, missing=peer_reason(RUBY, f"ruby: INTEROP_RUBY_RESQUE has no lib/resque.rb: {base}"))
    if not shutil.which("ruby"):
        return Peer("ruby", argv, missing=peer_reason(RUBY, "ruby: no `ruby` on PATH (Debian: ruby)"))
    argv += ["-I", str(Path(base) / "lib")]
    sched = os.environ.get("INTEROP_RUBY_RESQUE_SCHEDULER")
    if sched and (Path(sched) / "lib").is_dir():
        argv += ["-I", str(Path(sched) / "lib")]
    argv.append(str(PEERS_DIR / "ruby" / "peer.rb"))
    probe = subprocess.run(
        [*argv[:-1], "-e", "require 'resque'"], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        return Peer(
            "ruby", argv,
            missing=peer_reason(
                RUBY,
                "ruby: Ruby Resque does not load (Debian: ruby-redis, ruby-redis-namespace, ruby-multi-json, "
                f"ruby-mono-logger): {_tail(probe.stderr, 200)}",
            ),
        )  # fmt: skip
    return Peer("ruby", argv)


def ruby_plugins_peer() -> Peer:
    """Ruby Resque with resque-scheduler, resque-retry and resque-status (``peers/ruby/plugins.rb``)."""
    ruby = _ruby_peer()
    argv = ruby.argv[:-1]
    if ruby.missing:
        return Peer("ruby-plugins", argv, missing=ruby.missing)
    for var, what in (
        ("INTEROP_RUBY_RESQUE_SCHEDULER", "a resque/resque-scheduler checkout (resque-retry loads it)"),
        ("INTEROP_RUBY_RESQUE_RETRY", "a lantins/resque-retry checkout"),
        ("INTEROP_RUBY_RESQUE_STATUS", "a quirkey/resque-status checkout"),
    ):
        base = os.environ.get(var)
        if not base or not (Path(base) / "lib").is_dir():
            return Peer("ruby-plugins", argv, missing=peer_reason(var, f"ruby-plugins: set it to {what}"))
        if var != "INTEROP_RUBY_RESQUE_SCHEDULER":  # the scheduler's -I is added by _ruby_peer
            argv += ["-I", str(Path(base) / "lib")]
    probe = subprocess.run(
        [*argv, "-e", "require 'json'; require 'resque'; require 'resque-retry'; require 'resque/plugins/status'"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return Peer(
            "ruby-plugins", argv,
            missing=peer_reason(
                "INTEROP_RUBY_RESQUE_RETRY", f"resque-retry / resque-status do not load: {_tail(probe.stderr, 200)}"
            ),
        )  # fmt: skip
    return Peer("ruby-plugins", [*argv, str(PEERS_DIR / "ruby" / "plugins.rb")])


def _php_peer(name: str, var: str) -> Peer:
    argv = ["php", str(PEERS_DIR / "php" / "peer.php")]
    base = os.environ.get(var)
    if not base:
        return Peer(
            name,
            argv,
            missing=peer_reason(var, f"{name}: set {var} to a directory whose vendor/autoload.php loads php-resque"),
        )
    autoload = Path(base) / "vendor" / "autoload.php"
    if not autoload.is_file():
        return Peer(name, argv, missing=peer_reason(var, f"{name}: {var} has no vendor/autoload.php: {base}"))
    if not shutil.which("php"):
        return Peer(name, argv, missing=peer_reason(var, f"{name}: no `php` on PATH (Debian: php-cli)"))
    probe = subprocess.run(
        ["php", "-r", "exit(function_exists('pcntl_fork') && function_exists('posix_getpid') ? 0 : 1);"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return Peer(name, argv, missing=peer_reason(var, f"{name}: php lacks pcntl/posix (Debian's php-cli has both)"))
    return Peer(name, argv, {"INTEROP_PHP_AUTOLOAD": str(autoload), "PEER_NAME": name})


def _node_peer() -> Peer:
    node_dir = PEERS_DIR / "node"
    argv = ["node", str(node_dir / "peer.js")]
    if not shutil.which("node"):
        return Peer("node", argv, missing=package_reason("nodejs", "node: no `node` on PATH (Debian: nodejs)"))
    if not (node_dir / "node_modules" / "node-resque" / "package.json").is_file():
        npm = shutil.which("npm")
        if not npm:
            return Peer(
                "node", argv, missing=package_reason("npm", "node: node-resque is not installed and there is no `npm`")
            )
        lock = node_dir / "package-lock.json"
        install = [npm, "ci" if lock.is_file() else "install", "--no-audit", "--no-fund", "--loglevel=error"]
        proc = subprocess.run(install, cwd=node_dir, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            return Peer(
                "node",
                argv,
                missing=package_reason("node-resque", f"node: `npm install` failed: {_tail(proc.stderr, 300)}"),
            )
    return Peer("node", argv)


def _python_peer() -> Peer:
    """Our own worker, run as operators run it: ``python -m resque_compat work``."""
    argv = [sys.executable, "-m", "resque_compat"]
    paths = [str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    probe = subprocess.run(
        [*argv, "work", "--help"], capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **env}
    )
    if probe.returncode != 0 or "--burst" not in probe.stdout:
        return Peer(
            "python", argv, env, missing=f"`python -m resque_compat work` is not usable: {_tail(probe.stderr, 200)}"
        )
    return Peer("python", argv, env)


@dataclass
class Peers:
    """All five implementations as consumers (drivers / our worker)."""

    by_name: dict[str, Peer]
    server: RedisServer

    def __getitem__(self, name: str) -> Peer:
        return self.by_name[name]

    def available(self, name: str) -> bool:
        return self.by_name[name].missing is None

    def run(self, name: str, *args: str, **kwargs: Any) -> Any:
        return self.by_name[name].run(self.server, *args, **kwargs)

    def start(self, name: str, *args: str, **kwargs: Any) -> Running:
        return self.by_name[name].start(self.server, *args, **kwargs)

    # -- our worker, spoken in the same verbs as the drivers ------------------------------------
    def work(self, name: str, queues: str, timeout: float = RUN_TIMEOUT) -> Any:
        """Drain QUEUES with one worker of ``name`` and return what it reported (drivers: JSON)."""
        if name != "python":
            return self.run(name, "work", queues, timeout=timeout)
        peer = self.by_name["python"].require()
        cmd = [*peer.argv, "work", "--queues", queues, "--burst", "--no-fork", "--import", "pyjobs"]
        proc = subprocess.run(
            cmd, check=False, env=peer.environ(self.server), capture_output=True, text=True, timeout=timeout, cwd=HERE
        )
        if proc.returncode != 0:
            raise PeerError(f"python work: exit {proc.returncode}; stderr: {_tail(proc.stderr)}")
        return {"worker": "python", "stdout": proc.stdout[-500:]}

    def start_worker(
        self, name: str, queues: str, *, fork: bool = False, concurrency: int = 1, env: dict[str, str] | None = None
    ) -> Running:
        if name != "python":
            return self.start(name, "worker", queues)
        peer = self.by_name["python"].require()
        cmd = [*peer.argv, "work", "--queues", queues, "--interval", "0.1", "--import", "pyjobs"]
        if not fork:
            cmd.append("--no-fork")
        if concurrency > 1:
            cmd += ["--concurrency", str(concurrency)]
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by Running.stop
        proc = subprocess.Popen(
            cmd, env=peer.environ(self.server, env), stdout=subprocess.DEVNULL, stderr=log, text=True,
            cwd=HERE, start_new_session=True,
        )  # fmt: skip
        return Running("python", proc, {"pid": proc.pid}, log)


def text(value: bytes | str) -> str:
    """A Redis reply as text (redis-py types replies as bytes or str)."""
    return value.decode() if isinstance(value, bytes) else value


def write_results(
    directory: Path, cells: dict[tuple[str, str], dict[str, Any]], scenarios: dict[str, dict[str, Any]]
) -> None:
    """``matrix.json`` (everything) and ``matrix.md`` (the table, then the other scenarios)."""
    directory.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    data = {
        "generated": when,
        "producers": list(IMPLEMENTATIONS),
        "consumers": list(IMPLEMENTATIONS),
        "matrix": [
            {"producer": p, "consumer": c, **cells[(p, c)]}
            for p in IMPLEMENTATIONS
            for c in IMPLEMENTATIONS
            if (p, c) in cells
        ],
        "scenarios": [{"test": name, **entry} for name, entry in sorted(scenarios.items())],
    }
    (directory / "matrix.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    mark = {"pass": "pass", "fail": "**FAIL**", "skipped": "skipped"}
    lines = [
        "# Interop results",
        "",
        f"Written by the interop suite on {when}. Rows: the producer that enqueued; columns: the worker",
        "that ran the jobs. A cell passes when every job ran exactly once with the expected arguments,",
        "statuses and failures read back on both sides, and the stat counters agree (`matrix.json` has",
        "each aspect).",
        "",
        "| producer \\ consumer | " + " | ".join(IMPLEMENTATIONS) + " |",
        "| --- |" + " --- |" * len(IMPLEMENTATIONS),
    ]
    for p in IMPLEMENTATIONS:
        row = [mark[cells[(p, c)]["result"]] if (p, c) in cells else "-" for c in IMPLEMENTATIONS]
        lines.append(f"| **{p}** | " + " | ".join(row) + " |")
    notes = [
        f"- {p} → {c}: {cells[(p, c)]['result']}: {cells[(p, c)]['detail']}"
        for p in IMPLEMENTATIONS for c in IMPLEMENTATIONS
        if (p, c) in cells and cells[(p, c)]["result"] != "pass" and cells[(p, c)]["detail"]
    ]  # fmt: skip
    if notes:
        lines += ["", "Why cells did not pass:", "", *dict.fromkeys(notes)]
    if scenarios:
        lines += ["", "## Other scenarios", "", "| test | result | note |", "| --- | --- | --- |"]
        for name, entry in sorted(scenarios.items(), key=lambda kv: (kv[1]["file"], kv[0])):
            note = entry["detail"].replace("|", "\\|")[:200]
            lines.append(f"| {entry['file']}::{name} | {mark[entry['result']]} | {note} |")
    (directory / "matrix.md").write_text("\n".join(lines) + "\n")


def our_cli(server: RedisServer, *args: str, argv_only: bool = False, timeout: float = RUN_TIMEOUT) -> Any:
    """``python -m resque_compat --redis URL ARGS``: run it (CompletedProcess) or, with
    ``argv_only``, return the command line for a long-running process."""
    cmd = [sys.executable, "-m", "resque_compat", "--redis", server.url, *args]
    if argv_only:
        return cmd
    return subprocess.run(cmd, env=our_env(), capture_output=True, text=True, timeout=timeout, cwd=HERE, check=False)


def our_env() -> dict[str, str]:
    """The environment for resque-compat subprocesses: the checkout and ``pyjobs`` importable."""
    paths = [str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
