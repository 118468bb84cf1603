"""``python -m build`` makes a wheel and an sdist with everything an install needs.

Builds a copy of the source (never in the working tree, which others use) without build
isolation, so it runs offline with the dev extra's setuptools.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import resque_compat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "resque_compat")
EXTRAS = {"web", "embedded", "metrics", "examples", "dev"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = src / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "deprecated" not in (proc.stdout + proc.stderr).lower()
    return out


def package_files() -> set[str]:
    """What the wheel must hold: every module, py.typed, the dashboard's templates and assets."""
    pkg = ROOT / "resque_compat"
    wanted = {"py.typed"}
    for path in pkg.rglob("*"):
        rel = path.relative_to(pkg)
        if "__pycache__" in rel.parts or not path.is_file():
            continue
        if path.suffix == ".py" or rel.parts[:2] in (("web", "templates"), ("web", "static")):
            wanted.add(rel.as_posix())
    return {f"resque_compat/{name}" for name in wanted}


def test_wheel_contents_and_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"resque_compat-{resque_compat.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info_dir = f"resque_compat-{resque_compat.__version__}.dist-info"
        meta = email.message_from_bytes(zf.read(f"{info_dir}/METADATA"))
        entry_points = zf.read(f"{info_dir}/entry_points.txt").decode()
    assert package_files() <= names, sorted(package_files() - names)
    assert not any(n.startswith(("tests/", "examples/", "interop-tests/")) for n in names)
    assert meta["Version"] == resque_compat.__version__  # the one version source
    assert set(meta.get_all("Provides-Extra") or []) >= EXTRAS
    assert "resque-compat = resque_compat.cli:main" in entry_points


def test_sdist_contents(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    base = f"resque_compat-{resque_compat.__version__}"
    with tarfile.open(sdist) as tf:
        names = {n.removeprefix(base + "/") for n in tf.getnames()}
    assert {"pyproject.toml", "README.md", "resque_compat/py.typed", "resque_compat/aio.py"} <= names


def test_wheel_installs_and_runs(dist: Path, tmp_path: Path) -> None:
    """Installed in a fresh venv that sees the dev environment's dependencies, the command and
    the import work, from the wheel's copy."""
    (wheel,) = dist.glob("*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the wheel's own copy
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)]
    proc = subprocess.run(install, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = subprocess.run([env / "bin" / "resque-compat", "--version"], capture_output=True, text=True, check=True)
    assert resque_compat.__version__ in out.stdout
    where = subprocess.run(
        [python, "-c", "import resque_compat.aio, resque_compat; print(resque_compat.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(env))
