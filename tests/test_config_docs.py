"""docs/configuration.md is what tools/gen_config_docs.py writes from the CLI today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "tools" / "gen_config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_configuration_reference_is_current() -> None:
    expected = generator().render()
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == expected, "docs/configuration.md is stale: run python tools/gen_config_docs.py"


def test_reference_covers_every_command_and_env_var() -> None:
    text = generator().render()
    for needle in (
        "## Global options",
        "`REDIS_URL`",
        "`RESQUE_NAMESPACE`",
        "## `resque-compat doctor`",
        "`--stale-after`",
    ):
        assert needle in text
    assert "\n| " in text and "|---|" in text


def test_check_mode_reports_stale(tmp_path: Path) -> None:
    module = generator()
    module.TARGET = tmp_path / "configuration.md"
    module.TARGET.write_text("old\n")
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
