"""The skip policy (tests/skip_policy.py): under CI=true a skip for a package ``./dev test``
installs, or an unclassified skip, fails the run; Ruby/PHP peer skips are allowed and counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from skip_policy import NOT_APPLICABLE, PACKAGE, PEER, UNCLASSIFIED, classify, package_reason, peer_reason

HERE = Path(__file__).resolve().parent

CONFTEST = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
from skip_policy import SkipPolicy

def pytest_configure(config):
    config.pluginmanager.register(SkipPolicy(), "skip-policy")
"""

PASSING = "def test_ok():\n    pass\n"
PACKAGE_SKIP = """
from skip_policy import skip_missing_package

def test_sentinel():
    skip_missing_package("redis-sentinel")
"""
PEER_SKIP = """
from skip_policy import skip_missing_peer

def test_ruby():
    skip_missing_peer("INTEROP_RUBY_RESQUE", "ruby: set it")

def test_php():
    skip_missing_peer("INTEROP_PHP_RESQUE", "php-cb: set it")
"""
MARK_SKIP = """
from skip_policy import needs_binary

@needs_binary("no-such-binary-here", package="no-such-package")
def test_needs():
    pass
"""
MODULE_SKIP = """
from skip_policy import skip_missing_package
skip_missing_package("redis-tools", "`redis-cli` is not on PATH")

def test_cluster():
    pass
"""
BARE_SKIP = """
import pytest

def test_bare():
    pytest.skip("for no stated reason")
"""
NOT_APPLICABLE_SKIP = """
from skip_policy import skip_not_applicable

def test_proc():
    skip_not_applicable("needs /proc")
"""


def run(tmp_path: Path, files: dict[str, str], ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


FORBIDDEN = {"test_a.py": PASSING, "test_b.py": PACKAGE_SKIP, "test_c.py": MARK_SKIP, "test_d.py": MODULE_SKIP,
             "test_e.py": BARE_SKIP}  # fmt: skip
ALLOWED = {"test_a.py": PASSING, "test_b.py": PEER_SKIP, "test_c.py": NOT_APPLICABLE_SKIP}


def test_ci_fails_on_skips_for_installable_packages_and_unclassified_ones(tmp_path: Path) -> None:
    proc = run(tmp_path, FORBIDDEN, ci="true")
    assert proc.returncode == 1, proc.stdout
    out = proc.stdout
    assert (
        "3 skipped: missing packages no-such-package, redis-sentinel, redis-tools: FAILS the run under CI=true" in out
    )
    assert "1 skipped without a classified reason: FAILS the run under CI=true" in out
    assert "test_b.py::test_sentinel: [package:redis-sentinel]" in out  # the offenders, one per line
    assert "test_d.py: [package:redis-tools]" in out  # a module-level skip, reported at collection
    assert "for no stated reason" in out


def test_without_ci_the_same_skips_pass_and_are_counted(tmp_path: Path) -> None:
    proc = run(tmp_path, FORBIDDEN, ci=None)
    assert proc.returncode == 0, proc.stdout
    assert (
        "3 skipped: missing packages no-such-package, redis-sentinel, redis-tools: ./dev test installs" in proc.stdout
    )
    assert run(tmp_path, {}, ci="false").returncode == 0  # CI=false is not CI


def test_ci_allows_peer_and_not_applicable_skips_and_counts_them(tmp_path: Path) -> None:
    proc = run(tmp_path, ALLOWED, ci="true")
    assert proc.returncode == 0, proc.stdout
    assert "2 skipped: Ruby/PHP peers not configured (INTEROP_PHP_RESQUE, INTEROP_RUBY_RESQUE)" in proc.stdout
    assert "1 skipped: not applicable on this machine" in proc.stdout


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (package_reason("redis-sentinel"), (PACKAGE, "redis-sentinel")),
        ("Skipped: " + package_reason("nodejs", "node: no `node` on PATH"), (PACKAGE, "nodejs")),
        (peer_reason("INTEROP_PHP_RESQUE_FORK", "php-fork: set it"), (PEER, "INTEROP_PHP_RESQUE_FORK")),
        ("[n/a] needs /proc", (NOT_APPLICABLE, "")),
        ("redis-sentinel is not installed", (UNCLASSIFIED, "")),
        ("the [package:x] tag must lead", (UNCLASSIFIED, "")),
    ],
)
def test_classify(reason: str, expected: tuple[str, str]) -> None:
    assert classify(reason) == expected
