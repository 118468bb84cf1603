"""The suite's own layout: pytest imports test modules by basename (rootdir, no packages), so two
files of one name in tests/ and interop-tests/ stop the whole run at collection."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_basename() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for directory in ("tests", "interop-tests"):
        for path in (ROOT / directory).rglob("*.py"):
            if "node_modules" in path.parts or "__pycache__" in path.parts:
                continue
            if path.name.startswith("test_") or path.name.endswith("_test.py") or path.name == "conftest.py":
                by_name[path.name].append(str(path.relative_to(ROOT)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1 and name != "conftest.py"}
    assert not clashes, f"rename one of each: {clashes}"
