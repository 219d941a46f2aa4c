"""Write a KITTI-layout folder of synthetic scenes.

Layout (what KITTI readers and SqueezeDet's training scripts expect)::

    out_dir/
        training/image_2/000000.png ...
        training/label_2/000000.txt ...
        ImageSets/train.txt  val.txt  trainval.txt
        synth_manifest.json

Scene ``i`` is generated from :func:`engine.synth.scene.scene_seed`
``(seed, i)``, so any single image can be regenerated without the others, and
the train/val split is a seeded permutation, so the same arguments always
give the same folder.  ``synth_manifest.json`` marks the folder as the
generator's: only such a folder (or an empty or missing one) is overwritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.synth.labels import write_labels
from squeezelens.engine.synth.scene import generate_scene, scene_seed

MANIFEST = "synth_manifest.json"
GENERATOR = "squeezelens.synth"
MAX_COUNT = 1_000_000  # six-digit file names
SPLIT_KEY = 2**40  # beyond any scene index, so the split never shares a seed with a scene
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}
_STEM = re.compile(r"^\d{6}$")


def _check_args(count, seed, val_fraction, image_format, jpeg_quality) -> str:
    """Validate the arguments; return the normalised image format ('png' or 'jpg')."""
    integer = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)  # noqa: E731
    if not integer(count) or not 1 <= count <= MAX_COUNT:
        raise InputError(f"count must be an integer in [1, {MAX_COUNT}], got {count!r}")
    if not integer(seed) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, (int, float))
        or not 0.0 <= val_fraction <= 1.0
    ):
        raise InputError(f"val fraction must be a number in [0, 1], got {val_fraction!r}")
    fmt = str(image_format).lower()
    if fmt not in FORMATS:
        raise InputError(f"image format must be 'png' or 'jpg', got {image_format!r}")
    if not integer(jpeg_quality) or not 1 <= jpeg_quality <= 100:
        raise InputError(f"JPEG quality must be an integer in [1, 100], got {jpeg_quality!r}")
    return "jpg" if fmt == "jpeg" else fmt


def _is_ours(out: Path) -> bool:
    """True when ``out`` holds a manifest written by this generator."""
    try:
        return (
            json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("generator") == GENERATOR
        )
    except (OSError, ValueError, AttributeError):
        return False


def _prepare(out: Path) -> None:
    """Make ``out`` ready: create it, or clear a previous run's files, or refuse."""
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if not _is_ours(out):
            raise InputError(
                "folder is not empty and was not written by sample-data; refusing to overwrite", out
            )
        for folder, suffixes in (
            ("training/image_2", (".png", ".jpg")),
            ("training/label_2", (".txt",)),
        ):
            for path in (out / folder).glob("*"):
                if path.is_file() and path.suffix in suffixes and _STEM.match(path.stem):
                    path.unlink()
        for name in ("train.txt", "val.txt", "trainval.txt"):
            (out / "ImageSets" / name).unlink(missing_ok=True)
    try:
        for folder in ("training/image_2", "training/label_2", "ImageSets"):
            (out / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder ({exc.strerror or exc})", out) from None


def split_indices(count: int, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """(train, val) scene indices, each sorted; deterministic in (count, seed, val_fraction)."""
    n_val = int(round(count * val_fraction))
    if 0.0 < val_fraction < 1.0 and count >= 2:
        n_val = min(max(n_val, 1), count - 1)
    order = np.random.default_rng([int(seed), SPLIT_KEY]).permutation(count)
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])


def _write_manifest(out: Path, info: dict, complete: bool) -> None:
    """Mark ``out`` as this generator's (written first, so even an interrupted run is ours)."""
    text = json.dumps({"generator": GENERATOR, **info, "complete": complete}, indent=2)
    (out / MANIFEST).write_text(text + "\n", encoding="utf-8")


def _encode(image: np.ndarray, fmt: str, jpeg_quality: int) -> bytes:
    """PNG or JPEG bytes of a BGR image (RLE PNG: the fastest and, on noisy images, smallest)."""
    params = (
        [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
        if fmt == "png"
        else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    )
    ok, buf = cv2.imencode(FORMATS[fmt], image, params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {fmt} image")
    return buf.tobytes()


def write_kitti_tree(
    out_dir: str | Path,
    count: int,
    seed: int,
    val_fraction: float = 0.5,
    image_format: str = "png",
    jpeg_quality: int = 90,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate ``count`` scenes into a KITTI-layout folder and return its path.

    ``progress(done, count)`` is called after each scene.  Raises InputError
    for bad arguments or a non-empty folder the generator did not write.
    """
    fmt = _check_args(count, seed, val_fraction, image_format, jpeg_quality)
    out = Path(out_dir)
    _prepare(out)
    info = {
        "seed": int(seed),
        "count": int(count),
        "val_fraction": float(val_fraction),
        "image_format": fmt,
    }
    _write_manifest(out, info, complete=False)
    for i in range(count):
        image, labels = generate_scene(scene_seed(seed, i))
        stem = f"{i:06d}"
        (out / "training" / "image_2" / f"{stem}{FORMATS[fmt]}").write_bytes(
            _encode(image, fmt, jpeg_quality)
        )
        write_labels(out / "training" / "label_2" / f"{stem}.txt", labels)
        if progress is not None:
            progress(i + 1, count)
    train, val = split_indices(count, seed, val_fraction)
    for name, indices in (("train", train), ("val", val), ("trainval", range(count))):
        (out / "ImageSets" / f"{name}.txt").write_text(
            "".join(f"{i:06d}\n" for i in indices), encoding="ascii"
        )
    _write_manifest(out, info, complete=True)
    return out
