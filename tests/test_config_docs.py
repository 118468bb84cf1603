"""docs/configuration.md is what tools/gen_config_docs.py writes from the CLI today."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import click
from click.testing import CliRunner

from resque_compat.cli import main as cli_main
from resque_compat.envvars import ENVIRONMENT, EVERY_COMMAND, for_command, for_option

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


# -- the environment table (resque_compat/envvars.py) feeds --help and the reference ---------------

#: How the code reads a variable: os.environ.get("X"), env.get("X"), env["X"], "X" in env, envvar="X",
#: _float(env, "X", ...), and constants named *_ENV.
READS = re.compile(
    r"""(?:environ|env)(?:\.get\(|\[)"([A-Z][A-Z0-9_]+)"|"([A-Z][A-Z0-9_]+)" in env\b|envvar="([A-Z][A-Z0-9_]+)"|"""
    r"""_float\(env, "([A-Z][A-Z0-9_]+)"|_ENV = "([A-Z][A-Z0-9_]+)"|for var in \(([^)]*)\)"""
)


def variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "resque_compat").rglob("*.py"):
        for match in READS.finditer(path.read_text()):
            for group in match.groups():
                if group:
                    names.update(re.findall(r"[A-Z][A-Z0-9_]{2,}", group))
    return names


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    read = variables_read_by_the_code()
    assert {"QUEUE", "HEARTBEAT_INTERVAL", "REDIS_SERVER", "RESQUE_WEB_AUTH", "PREFIX"} <= read  # the scan works
    missing = read - {var.name for var in ENVIRONMENT}
    assert not missing, f"add these to resque_compat/envvars.py: {sorted(missing)}"


def test_the_reference_lists_every_variable_and_fills_the_option_rows() -> None:
    text = generator().render()
    for var in ENVIRONMENT:
        assert f"| `{var.name}` |" in text
    for name in ("QUEUE", "INTERVAL", "COUNT", "APP_INCLUDE", "FORK_PER_JOB", "RESQUE_RELIABLE", "HEARTBEAT_INTERVAL",
                 "PRUNE_INTERVAL", "REDIS_SERVER"):  # fmt: skip
        assert f"`{name}`" in text
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| `-")}
    assert "`QUEUE`, `QUEUES`" in rows["| `-q`, `--queues` `Q1,Q2`"]
    assert "`INTERVAL`" in rows["| `--interval`"] and "`COUNT`" in rows["| `-c`, `--count`"]
    assert "`APP_INCLUDE`" in rows["| `-i`, `--import` `MODULE`"]
    assert "`FORK_PER_JOB`" in rows["| `--fork`, `--no-fork`"] and "`RESQUE_RELIABLE`" in rows["| `--reliable`"]


def commands_with_env() -> list[str]:
    return sorted({c for var in ENVIRONMENT for c in var.commands if c != EVERY_COMMAND})


def test_each_commands_help_lists_its_variables() -> None:
    runner = CliRunner()
    for command in [EVERY_COMMAND, *commands_with_env()]:
        argv = ["--help"] if command == EVERY_COMMAND else [command, "--help"]
        result = runner.invoke(cli_main, argv, prog_name="resque-compat", standalone_mode=True)
        assert result.exit_code == 0, result.output
        assert "Environment (an option on the command line wins):" in result.output
        for var in for_command(command):
            assert f"  {var.name}: " in result.output, (command, var.name)


def test_env_named_in_option_help_agrees_with_the_table() -> None:
    """An option's own help text that says ``[env: X]`` names only variables the table ties to it."""
    ctx = click.Context(cli_main)
    commands: list[tuple[str, click.Command]] = [(EVERY_COMMAND, cli_main)]
    commands += [(name, cmd) for name in cli_main.list_commands(ctx) if (cmd := cli_main.get_command(ctx, name))]
    checked = 0
    for name, command in commands:
        for param in command.params:
            if not isinstance(param, click.Option) or "[env: " not in (param.help or ""):
                continue
            said = set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", (param.help or "").split("[env: ", 1)[1].split("]")[0]))
            known = {n for flag in [*param.opts, *param.secondary_opts] for n in for_option(name, flag)}
            assert said <= known, f"{name} {param.opts}: help says {sorted(said)}, envvars.py has {sorted(known)}"
            checked += 1
    assert checked >= 8


def test_readmes_configuration_table_names_only_known_variables() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})(?:=[^`]*)?`", section)) - {"PATH"}
    assert {"QUEUE", "REDIS_URL"} <= named
    assert named <= {var.name for var in ENVIRONMENT}, named - {var.name for var in ENVIRONMENT}
