"""deploy/: the documented systemd steps make every user, group and path the units name, the
units pass ``systemd-analyze verify``, and the image and install line carry what the units run."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from skip_policy import require_binary

from resque_compat.envvars import ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
#: Directories a Debian system has before any step runs.
SYSTEM_DIRS = {"/etc/systemd/system", "/etc", "/srv"}


def steps() -> list[list[str]]:
    """The shell block of deploy/README.md's systemd section, one argv per command."""
    section = (DEPLOY / "README.md").read_text().split("## systemd", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [argv for line in block.splitlines() if (argv := shlex.split(line, comments=True))]


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def installed(path: str, directory: bool = False) -> list[str] | None:
    """The ``install`` step that makes ``path`` (a file, or with ``directory`` a directory)."""
    for argv in steps():
        if argv[0] == "install" and ("-d" in argv) == directory and argv[-1] == path:
            return argv
    return None


def test_the_units_parse_and_the_steps_exist() -> None:
    assert {p.name for p in UNITS} == {
        "resque-compat-worker@.service", "resque-compat-scheduler.service", "resque-compat-web.service"
    }  # fmt: skip
    assert len(steps()) >= 8


def test_the_user_and_group_of_every_unit_are_created() -> None:
    created_users = {argv[-1] for argv in steps() if argv[0] == "useradd"}
    created_groups = {argv[-1] for argv in steps() if argv[0] == "useradd" and "--user-group" in argv}
    created_groups |= {argv[-1] for argv in steps() if argv[0] == "groupadd"}
    for path in UNITS:
        service = unit(path)["Service"]
        assert service["User"] in created_users, (path.name, service["User"])
        assert service["Group"] in created_groups, (path.name, service["Group"])
    for argv in steps():  # `install -g G` needs G first
        if argv[0] == "install" and "-g" in argv:
            assert argv[argv.index("-g") + 1] in created_groups, argv


def test_every_file_and_directory_the_units_name_is_made_by_a_step() -> None:
    for path in UNITS:
        service = unit(path)["Service"]
        for name in filter(None, service.get("EnvironmentFile", "").split()):
            step = installed(name.lstrip("-"))
            assert step, f"{path.name}: no documented step makes EnvironmentFile {name}"
        if "WorkingDirectory" in service:
            assert installed(service["WorkingDirectory"], directory=True), (path.name, service["WorkingDirectory"])
        for arg in shlex.split(service["ExecStart"])[1:]:
            if arg.startswith("/"):
                assert installed(arg), f"{path.name}: no documented step makes {arg}"


def test_installed_files_come_from_the_repository_into_made_directories() -> None:
    made_dirs = {argv[-1] for argv in steps() if argv[0] == "install" and "-d" in argv} | SYSTEM_DIRS
    for argv in steps():
        if argv[0] != "install" or "-d" in argv:
            continue
        *_, source, target = argv
        assert list(ROOT.glob(source)), f"{source} is not in the repository"
        parent = target.rstrip("/") if target.endswith("/") else str(Path(target).parent)
        assert parent in made_dirs, f"{target}: its directory is made by no earlier step"


def test_execstart_runs_from_the_documented_virtualenv_with_the_extras_it_needs() -> None:
    venvs = [argv[-1] for argv in steps() if argv[:3] == ["python3", "-m", "venv"]]
    pip_lines = [argv for argv in steps() if argv[0].endswith("/bin/pip") and argv[1] == "install"]
    for path in UNITS:
        binary, *args = shlex.split(unit(path)["Service"]["ExecStart"])
        venv = next((v for v in venvs if binary.startswith(v + "/bin/")), None)
        assert venv, f"{path.name}: {binary} is in no documented virtualenv"
        [pip] = [argv for argv in pip_lines if argv[0] == f"{venv}/bin/pip"]
        spec = next(a for a in pip[2:] if "resque_compat" in a or "resque-compat" in a)
        extras = set(re.findall(r"\[([^\]]*)\]$", spec)[0].split(","))
        if args[0] == "web":
            assert "web" in extras
        if "--schedule" in args and args[args.index("--schedule") + 1].endswith((".yml", ".yaml")):
            assert "scheduler" in extras, "a YAML schedule needs PyYAML: the scheduler extra"


def test_the_example_schedule_and_env_files_load() -> None:
    from resque_compat.scheduler.recurring import load_schedule_file  # noqa: PLC0415

    assert load_schedule_file(DEPLOY / "systemd" / "schedule.yml.example") == {}
    known = {var.name for var in ENVIRONMENT}
    for env_file in (DEPLOY / "systemd").glob("*.env.example"):
        names = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", env_file.read_text(), re.MULTILINE)
        assert names and set(names) <= known, (env_file.name, set(names) - known)


def test_the_image_installs_pyyaml_for_yaml_schedules() -> None:
    pip_lines = [line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if "pip " in line]
    assert len(pip_lines) == 2
    for line in pip_lines:
        extras = re.search(r"\[([a-z,]+)\]", line)
        assert extras and {"web", "scheduler"} <= set(extras.group(1).split(",")), line


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """The units as written, but with ExecStart's binary this environment's ``resque-compat``
    (verify insists the command exists), and the template verified as an instance."""
    analyze = require_binary("systemd-analyze", "systemd")
    real = shutil.which("resque-compat", path=str(Path(sys.executable).parent)) or shutil.which("resque-compat")
    if real is None:
        pytest.fail("resque-compat is not installed next to this Python")
    paths = []
    for path in UNITS:
        text = re.sub(r"^ExecStart=\S+", f"ExecStart={real}", path.read_text(), flags=re.MULTILINE)
        copy = tmp_path / path.name.replace("@.service", "@1.service")
        copy.write_text(text)
        paths.append(str(copy))
    proc = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if "resque-compat" in line]
    assert not problems, problems  # unknown keys and bad values are only warnings: none allowed
