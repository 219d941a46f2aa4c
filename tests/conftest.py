"""Shared fixtures: the ../shared folder (real KITTI frames, checkpoint, references)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_CKPT = SHARED / "checkpoints" / "squeezedet_kitti_tf1" / "model.ckpt-87000"
REAL_KITTI = SHARED / "kitti"
REFERENCE = SHARED / "reference"


def need_shared(path: Path = SHARED) -> Path:
    """Skip (with a message) when the shared data beside the repository is absent."""
    if not path.exists():
        pytest.skip(f"shared data not available: {path} is absent")
    return path


@pytest.fixture(scope="session")
def real_detector():
    """The shared real-weights SqueezeDet (its sidecar honoured): built once per session."""
    need_shared(REAL_CKPT.parent)
    from squeezelens.engine.detector import Detector

    return Detector.from_checkpoint(REAL_CKPT)


def random_weights(spec, seed: int = 0, scale: float = 0.05) -> dict[str, np.ndarray]:
    """Random float32 weights of the official shapes for a spec (HWIO kernels)."""
    from squeezelens.engine.model.spec import expected_shapes

    rng = np.random.default_rng(seed)
    return {
        k: (rng.standard_normal(s) * scale).astype(np.float32)
        for k, s in expected_shapes(spec).items()
    }


@pytest.fixture(scope="session")
def tiny_detector():
    """A random-weight SqueezeDet at a small input (fast; no shared data needed)."""
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import ArchSpec

    spec = ArchSpec().with_input_size((256, 96))
    return Detector(spec, random_weights(spec))


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime (2 CPUs) for a test module; pools and CLI runs in it join it."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture()
def no_model_load(monkeypatch):
    """Fail loudly if a command loads the model (its flags should have been refused first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the flags were checked")

    import importlib
    import pkgutil

    import squeezelens.cli.commands as commands

    # every command module is imported before anything is patched, so that none binds the
    # patched cli.common.load_detector for good (a later test would then fail)
    names = [f"squeezelens.cli.commands.{m.name}" for m in pkgutil.iter_modules(commands.__path__)]
    modules = [importlib.import_module(name) for name in ["squeezelens.cli.common", *names]]
    for module in modules:
        if hasattr(module, "load_detector"):
            monkeypatch.setattr(module, "load_detector", refuse)
