"""Fixtures of the GUI tests: a tiny random-weight model, generated KITTI images, a window.

Everything here runs without the shared data; tests that use the real
checkpoint and KITTI frames skip cleanly when ``../shared`` is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REAL_CKPT = SHARED / "checkpoints" / "squeezedet_kitti_tf1" / "model.ckpt-87000"
REAL_KITTI = SHARED / "kitti"
TINY_SIZE = (256, 96)
N_IMAGES = 6  # the val split
N_TRAIN = 3  # the train split: other images (calibration never sees the evaluated ones)

pytestmark = pytest.mark.gui


def need_real() -> tuple[Path, Path]:
    """The shared checkpoint and KITTI folder, or skip."""
    if not Path(str(REAL_CKPT) + ".index").exists():
        pytest.skip(f"shared checkpoint not available: {REAL_CKPT}")
    if not (REAL_KITTI / "training" / "image_2").is_dir():
        pytest.skip(f"shared KITTI frames not available: {REAL_KITTI}")
    return REAL_CKPT.resolve(), REAL_KITTI.resolve()


def _label_line(box: tuple[int, int, int, int], kind: str = "Car") -> str:
    x1, y1, x2, y2 = box
    return f"{kind} 0.00 0 -1.58 {x1}.00 {y1}.00 {x2}.00 {y2}.00 1.5 1.6 3.7 1.0 1.5 20.0 -1.5"


def write_kitti(
    root: Path, n: int = N_IMAGES, size: tuple[int, int] = (480, 180), n_train: int = N_TRAIN
) -> Path:
    """A small KITTI-layout folder of generated road-like scenes with labels: ``n`` images in
    the val split, ``n_train`` other images in the train split, trainval both."""
    rng = np.random.default_rng(7)
    img_dir, lbl_dir = root / "training" / "image_2", root / "training" / "label_2"
    img_dir.mkdir(parents=True)
    lbl_dir.mkdir(parents=True)
    (root / "ImageSets").mkdir()
    w, h = size
    stems = []
    for i in range(n + n_train):
        stem = f"{i:06d}"
        image = np.full((h, w, 3), (90, 110, 120), np.uint8)
        image[h // 2 :] = (70, 70, 70)
        lines = []
        for _ in range(2 + i % 3):
            x1, y1 = int(rng.integers(0, w - 60)), int(rng.integers(h // 3, h - 40))
            box = (x1, y1, x1 + int(rng.integers(30, 60)), y1 + int(rng.integers(25, 40)))
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.rectangle(image, box[:2], box[2:], color, -1)
            lines.append(_label_line(box))
        cv2.imwrite(str(img_dir / f"{stem}.png"), image)
        (lbl_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        stems.append(stem)
    splits = {"val": stems[:n], "train": stems[n:] or stems[:n], "trainval": stems}
    for split, names in splits.items():
        (root / "ImageSets" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight SqueezeDet at 256x96 saved as .npz with its sidecar."""
    from squeezelens.engine.checkpoint.writers import save_npz
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes

    spec = ArchSpec().with_input_size(TINY_SIZE)
    rng = np.random.default_rng(0)
    weights = {k: (rng.standard_normal(s) * 0.05).astype(np.float32)
               for k, s in expected_shapes(spec).items()}  # fmt: skip
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.npz"
    return save_npz(path, weights, spec)


@pytest.fixture(scope="session")
def tiny_detector(tiny_checkpoint):
    """The tiny model, built once per session (TensorFlow is slow to build graphs)."""
    from squeezelens.engine.detector import Detector

    return Detector.from_checkpoint(tiny_checkpoint)


KITTI_TYPES = {"car": "Car", "pedestrian": "Pedestrian", "cyclist": "Cyclist"}


def relabel_with(detector, root: Path, per_image: int = 4) -> None:
    """Replace the labels by the detector's own best float boxes (so its AP is high).

    A random-weight model finds nothing real; labelling with its own output
    gives PR curves with substance, which quantization then degrades.
    """
    for image in sorted((root / "training" / "image_2").glob("*.png")):
        dets = detector.detect(image)
        lines = []
        for k in range(len(dets)):
            x1, y1, x2, y2 = (int(round(v)) for v in dets.boxes_xyxy[k])
            if y2 - y1 >= 42 and len(lines) < per_image:  # "easy" needs 40 px
                lines.append(
                    _label_line((x1, y1, x2, y2), KITTI_TYPES.get(dets.class_name(k), "Car"))
                )
        (root / "training" / "label_2" / f"{image.stem}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def tiny_kitti(tmp_path_factory, tiny_detector) -> Path:
    root = write_kitti(tmp_path_factory.mktemp("kitti") / "kitti")
    relabel_with(tiny_detector, root)
    return root


@pytest.fixture
def window(qtbot, tmp_path):
    """A main window at 1366x768 with settings in a temporary INI file."""
    from squeezelens.gui.app import configure_pyqtgraph
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings

    configure_pyqtgraph()
    win = MainWindow(settings=Settings.at(tmp_path / "settings.ini"))
    win.analysis.sweep_root = tmp_path / "sweeps"
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    yield win
    win.close()


def idle(win) -> bool:
    return win.controller.is_idle()


def wait_idle(qtbot, win, timeout: int = 30000) -> None:
    """Until every worker is idle and the results they queued before have been delivered
    (a result handled late may start new jobs, so check again after delivering)."""
    for _ in range(20):
        qtbot.waitUntil(lambda: idle(win), timeout=timeout)
        qtbot.wait(20)
        if idle(win):
            return


@pytest.fixture
def loaded(window, qtbot, tiny_detector, tiny_kitti):
    """The window with the tiny model and generated KITTI folder open, threshold 0."""
    window.state.set_threshold(0.0)
    window.controller.use_detector(tiny_detector)
    window.controller.open_dataset(tiny_kitti, "val")
    qtbot.waitUntil(lambda: window.state.result is not None, timeout=60000)
    wait_idle(qtbot, window)
    return window
