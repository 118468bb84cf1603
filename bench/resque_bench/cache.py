"""Getting the peers: npm and pip installs into ``bench/.cache``, the rest from ``INTEROP_*``.

Each ``ensure_*`` returns what the driver needs, or raises :class:`PeerUnavailable` with a
one-line reason that the report prints, so a missing peer costs its rows and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
CACHE = BENCH_DIR / ".cache"
NODE_RESQUE = "node-resque@9.7.1"
PY_PEERS = ("rq==3.0.0", "pyres==1.5")  # both accept redis-py 5..8, so one venv serves both


class PeerUnavailable(RuntimeError):  # noqa: N818 - a skip, not an error
    """A peer that cannot be run here; the message says what is missing."""


def _run(argv: list[str], what: str, timeout: float = 600) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerUnavailable(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PeerUnavailable(f"{what} failed: {tail[0]}")


def ensure_node_resque() -> Path:
    """The ``node_modules`` holding node-resque 9.7.1 (installed with npm on first use)."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise PeerUnavailable("node-resque needs node and npm on PATH")
    prefix = CACHE / "node"
    modules = prefix / "node_modules"
    manifest = modules / "node-resque" / "package.json"
    want = NODE_RESQUE.split("@")[1]
    if not manifest.exists() or json.loads(manifest.read_text()).get("version") != want:
        prefix.mkdir(parents=True, exist_ok=True)
        _run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", NODE_RESQUE], "npm install")
    return modules


def ensure_python_peers() -> Path:
    """A venv with RQ and pyres (``bin/python``, ``bin/pyres_manager``...), built on first use."""
    venv = CACHE / "venv-py"
    marker = venv / "bench-installed.txt"
    spec = " ".join(PY_PEERS)
    if marker.exists() and marker.read_text() == spec:
        return venv
    if not venv.exists():
        _run([sys.executable, "-m", "venv", str(venv)], "creating the RQ/pyres venv", timeout=120)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PY_PEERS], "pip install rq pyres")
    marker.write_text(spec)
    return venv


def ruby_resque() -> Path:
    """Ruby Resque's checkout from ``$INTEROP_RUBY_RESQUE`` (its ``lib/`` is put on ``-I``)."""
    root = os.environ.get("INTEROP_RUBY_RESQUE")
    if not root:
        raise PeerUnavailable("set INTEROP_RUBY_RESQUE to a resque 3.0 checkout (see interop-tests/README.md)")
    if not (Path(root) / "lib" / "resque.rb").exists():
        raise PeerUnavailable(f"INTEROP_RUBY_RESQUE={root} has no lib/resque.rb")
    if not shutil.which("ruby"):
        raise PeerUnavailable("Ruby Resque needs ruby on PATH")
    return Path(root)


def php_resque() -> Path:
    """The ``vendor/autoload.php`` under ``$INTEROP_PHP_RESQUE``; php needs pcntl to fork per job."""
    root = os.environ.get("INTEROP_PHP_RESQUE")
    if not root:
        raise PeerUnavailable("set INTEROP_PHP_RESQUE to a php-resque install (see interop-tests/README.md)")
    autoload = Path(root) / "vendor" / "autoload.php"
    if not autoload.exists():
        raise PeerUnavailable(f"INTEROP_PHP_RESQUE={root} has no vendor/autoload.php")
    if not shutil.which("php"):
        raise PeerUnavailable("php-resque needs php on PATH")
    modules = subprocess.run(["php", "-m"], capture_output=True, text=True, check=False).stdout.split()
    if "pcntl" not in modules:
        raise PeerUnavailable("php-resque needs php's pcntl extension to fork per job")
    return autoload
