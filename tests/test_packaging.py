"""A wheel of the project carries the packages, the resources and the sample data.

The source tree (without virtual environments, caches and build outputs) is
copied to a temporary folder and built there, so the checkout is left alone.
The build first uses the running interpreter's setuptools (no build isolation);
when that is too old for the project's PEP 639 licence field, pip builds in
isolation, and the test is skipped when the build dependencies cannot be
fetched (offline).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

ROOT_SKIP = {"build", "dist", "runs", "out"}
BUILD_TIMEOUT_S = 600


def _ignore(folder: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in ("__pycache__",) or n.endswith(".pyc")}
    if Path(folder).resolve() == REPO:
        skip |= {n for n in names if n.startswith(".") or n in ROOT_SKIP or n.endswith(".egg-info")}
    return skip


def _source_copy(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_ignore, symlinks=True)
    return src


def _pip_wheel(src: Path, out: Path, isolated: bool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(out)]
    if not isolated:
        cmd.append("--no-build-isolation")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env, cwd=src
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"building the wheel took over {BUILD_TIMEOUT_S} s (offline index?)")


def _build_wheel(tmp: Path) -> Path:
    src, out = _source_copy(tmp), tmp / "wheels"
    done = _pip_wheel(src, out, isolated=False)
    if done.returncode != 0:  # e.g. setuptools older than the build-system's requirement
        done = _pip_wheel(src, out, isolated=True)
    if done.returncode != 0:
        log = done.stdout + done.stderr
        if "build dependencies" in log.lower():
            pytest.skip("cannot fetch the build dependencies (offline?): " + log.strip()[-300:])
        pytest.fail("pip wheel failed:\n" + log[-3000:])
    wheels = sorted(out.glob("squeezelens-*.whl"))
    assert len(wheels) == 1, list(out.iterdir())
    return wheels[0]


def _tree(folder: Path) -> set[str]:
    """Repository-relative names of the packageable files under a folder."""
    return {
        p.relative_to(REPO).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


PACKAGES = ("engine", "gui", "cli", "resources", "sample_data")


def _wheel_names(tmp: Path) -> tuple[Path, set[str]]:
    wheel = _build_wheel(tmp)
    with zipfile.ZipFile(wheel) as z:
        return wheel, set(z.namelist())


def test_wheel_holds_packages_resources_and_sample_data(tmp_path):
    wheel, names = _wheel_names(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "squeezelens = squeezelens.cli.main:main" in z.read(entry_points).decode()
    installed = {f"squeezelens/{n}" for n in _packageable()}
    assert installed <= names, sorted(installed - names)[:5]
    for package in PACKAGES:
        assert f"squeezelens/{package}/__init__.py" in names
    # one top-level name: the package (plus its dist-info), nothing generic like engine/ or cli/
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"squeezelens"}, sorted(top)


def _packageable() -> set[str]:
    """What the wheel must carry: every module of the packages, resources and the sample data."""
    kitti = REPO / "sample_data" / "kitti"
    images = _tree(kitti / "training" / "image_2")
    labels = _tree(kitti / "training" / "label_2")
    assert images and labels and len(images) == len(labels)
    modules = {n for package in PACKAGES for n in _tree(REPO / package) if n.endswith(".py")}
    model = _tree(REPO / "sample_data" / "model")
    return (
        images | labels | _tree(kitti / "ImageSets") | modules | model | _tree(REPO / "resources")
    )


def test_installed_wheel_imports_only_under_squeezelens(tmp_path):
    """Installed (no editable finder, run from a neutral folder), the old top-level names are gone."""
    wheel, _ = _wheel_names(tmp_path)
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import squeezelens.engine.errors, squeezelens.engine.samples as s\n"
        "assert s.default_checkpoint() is not None, 'the sample model did not travel'\n"
        "for name in ('engine', 'gui', 'cli', 'resources', 'sample_data'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise SystemExit(f'{name} is importable at the top level')\n"
    )
    neutral = tmp_path / "neutral"
    neutral.mkdir()
    out = subprocess.run([sys.executable, "-I", "-c", code, str(target)], cwd=neutral,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_package_folder_is_listed_in_pyproject():
    """A new subpackage must be named in pyproject's explicit package list, or the wheel drops it."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "squeezelens." + ".".join(p.parent.relative_to(REPO).parts)
        for package in PACKAGES
        for p in (REPO / package).rglob("__init__.py")
    }
    assert found == listed, (sorted(found - listed), sorted(listed - found))
    folders_with_modules = {
        "squeezelens." + ".".join(p.parent.relative_to(REPO).parts)
        for package in PACKAGES
        for p in (REPO / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert folders_with_modules <= listed, sorted(folders_with_modules - listed)
