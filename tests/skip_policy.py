"""Why a test may skip, and the CI rule: no silent skip for something ``./dev test`` installs.

Every skip says which of three kinds it is, through the helpers below (their reasons start with a
tag the plugin reads back):

* ``skip_missing_package("redis-sentinel")`` / ``needs_binary("redis-sentinel")``: a Debian (or
  pip, or npm) package that ``./dev test`` installs is absent. Under ``CI=true`` such a skip FAILS
  the run, naming the package: CI must run every test it can.
* ``skip_missing_peer("INTEROP_RUBY_RESQUE", ...)``: a Ruby or PHP peer that no reachable registry
  has and that the ``INTEROP_*`` variables point at (``interop-tests/README.md``). Always allowed;
  counted in the summary ("N skipped: Ruby/PHP peers not configured").
* ``skip_not_applicable("needs /proc")``: the test cannot mean anything on this platform. Allowed,
  counted.

Any other skip (a bare ``pytest.skip("...")``) is unclassified and fails the run under ``CI=true``
too, so that a new skip is a decision, not an accident. The root conftest.py registers
``SkipPolicy``; tests import the helpers with ``from skip_policy import ...`` (the root conftest
puts tests/ on ``sys.path``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from typing import NoReturn

import pytest

PACKAGE = "package"
PEER = "peer"
NOT_APPLICABLE = "n/a"
UNCLASSIFIED = "unclassified"

_TAG = re.compile(r"^(?:Skipped: )?\[(package|peer|n/a)(?::([^\]]+))?\] ?")


def package_reason(package: str, detail: str = "") -> str:
    """A skip reason for a missing package that ``./dev test`` installs (as root)."""
    return f"[package:{package}] {detail or f'{package} is not installed'} (./dev test installs it, as root)"


def peer_reason(peer: str, detail: str = "") -> str:
    """A skip reason for a Ruby/PHP peer that is not configured (``INTEROP_*``)."""
    return f"[peer:{peer}] {detail or f'set {peer}'} (see interop-tests/README.md)"


def not_applicable_reason(detail: str) -> str:
    return f"[n/a] {detail}"


def skip_missing_package(package: str, detail: str = "") -> NoReturn:
    pytest.skip(package_reason(package, detail), allow_module_level=True)


def skip_missing_peer(peer: str, detail: str = "") -> NoReturn:
    pytest.skip(peer_reason(peer, detail), allow_module_level=True)


def skip_not_applicable(detail: str) -> NoReturn:
    pytest.skip(not_applicable_reason(detail), allow_module_level=True)


def needs_binary(binary: str, package: str | None = None) -> pytest.MarkDecorator:
    """``@needs_binary("redis-sentinel")``: skip (as a missing package) when ``binary`` is not on PATH."""
    name = package or binary
    return pytest.mark.skipif(
        shutil.which(binary) is None, reason=package_reason(name, f"`{binary}` is not on PATH (Debian: {name})")
    )


def require_binary(binary: str, package: str | None = None) -> str:
    """The path of ``binary``, or a missing-package skip naming ``package``."""
    path = shutil.which(binary)
    if path is None:
        name = package or binary
        skip_missing_package(name, f"`{binary}` is not on PATH (Debian: {name})")
    return path


def classify(reason: str) -> tuple[str, str]:
    """(kind, what) of a skip reason: the package or peer it names, else ("n/a" | "unclassified", "")."""
    match = _TAG.match(reason)
    if match is None:
        return UNCLASSIFIED, ""
    return match.group(1), match.group(2) or ""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@dataclass
class SkipLedger:
    """Every skip of the run, by kind; what the summary prints and the CI rule reads."""

    by_kind: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # kind -> (nodeid, what, reason)

    def add(self, nodeid: str, reason: str) -> None:
        kind, what = classify(reason)
        self.by_kind.setdefault(kind, []).append((nodeid, what, reason.removeprefix("Skipped: ")))

    def count(self, kind: str) -> int:
        return len(self.by_kind.get(kind, []))

    def names(self, kind: str) -> str:
        counts = Counter(what for _, what, _ in self.by_kind.get(kind, []))
        return ", ".join(f"{name} ({n})" if n > 1 else name for name, n in sorted(counts.items()))

    def forbidden(self) -> list[tuple[str, str, str]]:
        return self.by_kind.get(PACKAGE, []) + self.by_kind.get(UNCLASSIFIED, [])

    def lines(self, ci: bool) -> list[str]:
        out: list[str] = []
        if self.count(PEER):
            out.append(f"{self.count(PEER)} skipped: Ruby/PHP peers not configured ({self.names(PEER)})")
        if self.count(NOT_APPLICABLE):
            out.append(f"{self.count(NOT_APPLICABLE)} skipped: not applicable on this machine")
        if self.count(PACKAGE):
            verdict = "FAILS the run under CI=true" if ci else "./dev test installs them as root"
            out.append(f"{self.count(PACKAGE)} skipped: missing packages {self.names(PACKAGE)}: {verdict}")
        if self.count(UNCLASSIFIED):
            verdict = "FAILS the run under CI=true" if ci else "use skip_policy's helpers"
            out.append(f"{self.count(UNCLASSIFIED)} skipped without a classified reason: {verdict}")
        return out


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2])
    return str(longrepr)


class SkipPolicy:
    """The plugin: records every skip, prints the ``skips`` summary, applies the CI rule."""

    def __init__(self, ci: bool | None = None) -> None:
        self.ci = in_ci() if ci is None else ci
        self.ledger = SkipLedger()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.ledger.add(report.nodeid, _reason(report))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.ledger.add(report.nodeid, _reason(report))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.ci and self.ledger.forbidden() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self.ledger.lines(self.ci)
        if not lines:
            return
        terminalreporter.section("skips")
        for line in lines:
            terminalreporter.write_line(line)
        forbidden = self.ledger.forbidden()
        if self.ci and forbidden:
            terminalreporter.write_line(
                "CI=true: these tests must run here (install the package: ./dev test does as root; or classify "
                "the skip with tests/skip_policy.py's helpers):",
                red=True,
                bold=True,
            )
            for nodeid, _, reason in forbidden:
                terminalreporter.write_line(f"  {nodeid}: {reason}", red=True)
