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


def test_wheel_holds_packages_resources_and_sample_data(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "squeezelens = cli.main:main" in z.read(entry_points).decode()
    kitti = REPO / "sample_data" / "kitti"
    images = _tree(kitti / "training" / "image_2")
    labels = _tree(kitti / "training" / "label_2")
    assert images and labels and len(images) == len(labels)
    assert images | labels | _tree(kitti / "ImageSets") <= names
    assert "sample_data/README.md" in names
    assert _tree(REPO / "resources") <= names and "resources/__init__.py" in names
    for package in ("engine", "gui", "cli"):
        modules = {n for n in _tree(REPO / package) if n.endswith(".py")}
        assert f"{package}/__init__.py" in modules
        assert modules <= names, sorted(modules - names)[:5]
    assert not any(n.startswith(("tests/", "benchmarks/", ".venv/")) for n in names)
