"""On-disk cache of converted INT8 models.

Conversion takes seconds to minutes (export + one float forward per
calibration image + quantization), so each result is kept as
``<cache>/<ckpt>-<W>x<H>-<calib>-<recipe>.tflite``: the checkpoint's sha256
(or a hash of the float weights when there is no checkpoint file), the input
size, a hash of the calibration images (content, shape, dtype, order) and a
hash of the recipe (converter options, TensorFlow version, architecture).
Files are written to a temporary name and renamed, so a reader never sees a
half-written model, and a cancelled conversion leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_bytes_atomic
from squeezelens.engine.cache_root import cache_folder
from squeezelens.engine.errors import InputError
from squeezelens.engine.int8.convert import (
    DEFAULT_OPTIONS,
    ConvertOptions,
    ImageLike,
    load_calibration_images,
)
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.provenance import images_sha256, model_sha256

RECIPE_VERSION = 1  # bump when the conversion recipe changes its output
_TFLITE_IDENT = b"TFL3"  # flatbuffer file identifier at bytes 4..8
_lock = threading.Lock()  # one conversion at a time per process (2 cores are all busy anyway)


def default_cache_dir() -> Path:
    """``$SQUEEZELENS_CACHE/int8`` when set, else ``~/.cache/squeezelens/int8``."""
    return cache_folder("int8")


def recipe_hash(detector, options: ConvertOptions) -> str:
    import tensorflow as tf

    recipe = {
        "v": RECIPE_VERSION,
        "tf": tf.__version__,
        "opts": options.key(),
        "spec": detector.spec.to_dict(),
        "means": list(detector.spec.bgr_means),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def cache_path(
    detector,
    images: Sequence[np.ndarray],
    cache_dir: str | Path | None = None,
    options: ConvertOptions = DEFAULT_OPTIONS,
) -> Path:
    """Where the INT8 model for (weights, input size, calibration set, recipe) lives."""
    w, h = detector.spec.input_size
    name = (
        f"{model_sha256(detector)[:16]}-{w}x{h}-{images_sha256(images)[:16]}"
        f"-{recipe_hash(detector, options)[:8]}.tflite"
    )
    return Path(cache_dir).expanduser() / name if cache_dir else default_cache_dir() / name


def is_valid_tflite(path: Path) -> bool:
    """Cheap integrity check: a non-trivial file with the TFLite flatbuffer identifier."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        return len(head) == 8 and head[4:8] == _TFLITE_IDENT and path.stat().st_size > 1024
    except OSError:
        return False


def get_or_convert_int8(
    detector,
    calibration_images: Sequence[ImageLike],
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    options: ConvertOptions = DEFAULT_OPTIONS,
    isolated: bool = False,
) -> Path:
    """Path of the cached INT8 .tflite for this detector and calibration set; converts on a miss.

    isolated: convert in a child process (:mod:`engine.int8.isolated`) -- what a
    multi-threaded host such as the desktop tool needs; in-process otherwise.
    A corrupt or truncated cache file counts as a miss and is replaced.
    Raises InputError for bad calibration images or an unwritable cache dir,
    engine.errors.Cancelled when cancelled (nothing is written then).
    """
    from squeezelens.engine.int8 import convert as _convert
    from squeezelens.engine.int8 import isolated as _isolated

    images = load_calibration_images(calibration_images)
    path = cache_path(detector, images, cache_dir, options)
    with _lock:
        if is_valid_tflite(path):
            if progress is not None:
                progress(1, 1)
            return path
        run = _isolated.convert_int8_isolated if isolated else _convert.convert_int8
        data = run(detector, images, progress, cancel, options)
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            raise InputError(f"cannot write the INT8 cache ({exc.strerror or exc})", path) from exc
    return path
