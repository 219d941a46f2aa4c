"""Remedied weights, cached in memory and on disk, so switching a remedy back on is instant.

The key is the checkpoint's sha256 (or a hash of the float weights), every config
field that shapes the weights (not the activation settings; the seed only where
rounding draws it), the calibration images' content hash when the config uses
them (bias correction, AdaRound) and :data:`RECIPE_VERSION`.  Memory holds the
last :data:`MEMORY_ENTRIES` results of any remedy; the disk keeps the costly ones
(those that use calibration images) as ``<cache>/remedies/<key>.npz``, written
atomically, so a later process (the GUI, the CLI, another command) finds them.
A damaged file counts as a miss and is replaced.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import atomic_path
from squeezelens.engine.cache_root import cache_folder
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, Progress
from squeezelens.engine.quant.config import QuantConfig

RECIPE_VERSION = 1  # bump when a remedy changes its output
MEMORY_ENTRIES = 8
WEIGHT_FIELDS_IGNORED = ("activation_bits", "activation_range")
_memory: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
_lock = threading.Lock()


def default_cache_dir() -> Path:
    """``$SQUEEZELENS_CACHE/remedies`` when set, else ``~/.cache/squeezelens/remedies``."""
    return cache_folder("remedies")


def config_fields(config: QuantConfig) -> dict:
    """The fields of ``config`` that shape its weights (JSON-ready)."""
    data = {k: v for k, v in config.to_dict().items() if k not in WEIGHT_FIELDS_IGNORED}
    if config.rounding == "nearest":
        data["seed"] = 0
    if config.rounding != "adaround":
        data.pop("adaround_iterations", None)
    data["rounded"] = sorted(getattr(config, "rounded", ())) or None
    return data


def cache_key(weights_key: str, config: QuantConfig, calibration_key: str | None) -> str:
    """The sha256 key of a remedied weight set (see the module docstring)."""
    doc = {
        "v": RECIPE_VERSION,
        "weights": weights_key,
        "config": config_fields(config),
        "calibration": calibration_key if config.needs_calibration else None,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _remember(key: str, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with _lock:
        _memory[key] = weights
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)
    return weights


def _recall(key: str) -> dict[str, np.ndarray] | None:
    with _lock:
        if key in _memory:
            _memory.move_to_end(key)
            return _memory[key]
    return None


def load_npz(path: Path, names: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The cached weights at ``path`` (aligned copies), None when absent or damaged."""
    from squeezelens.engine.detector import aligned_copy

    try:
        with np.load(path) as data:
            loaded = {name: aligned_copy(data[name]) for name in names}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if any(loaded[n].shape != np.shape(names[n]) for n in names):
        return None
    return loaded


def save_npz(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    """Write ``weights`` atomically (an unwritable cache is a one-line InputError)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{name: np.asarray(v) for name, v in weights.items()})
    except OSError as exc:
        raise InputError(f"cannot write the remedies cache ({exc.strerror or exc})", path) from exc


def equalized_weights(detector) -> dict[str, np.ndarray]:
    """The detector's float weights after cross-layer equalization (memory cached)."""
    from squeezelens.engine.provenance import model_sha256
    from squeezelens.engine.quant.remedies.equalize import equalize

    key = (
        "equalized:"
        + hashlib.sha256(f"{RECIPE_VERSION}:{model_sha256(detector)}".encode()).hexdigest()
    )
    found = _recall(key)
    if found is None:
        found = _remember(key, equalize(detector.float_weights, detector.spec.variant))
    return found


def remedy_key(detector, config: QuantConfig) -> str:
    """The cache key of ``detector``'s weights remedied under ``config`` (model, config and
    calibration set)."""
    from squeezelens.engine.provenance import model_sha256

    calibration = getattr(detector, "calibration", None)
    calib_key = calibration.key if calibration is not None else None
    return cache_key(model_sha256(detector), config, calib_key)


def _disk_path(key: str, cache_dir: str | Path | None) -> Path:
    return Path(cache_dir or default_cache_dir()) / f"{key}.npz"


def is_cached(detector, config: QuantConfig, cache_dir: str | Path | None = None) -> bool:
    """Whether the detector's weights under ``config`` are ready at once (in memory, on
    disk, or cheap to compute: no calibration images needed) -- e.g. for a GUI to tell
    an instant switch from a long job."""
    if not config.needs_calibration:
        return True
    if getattr(detector, "calibration", None) is None:
        return False
    key = remedy_key(detector, config)
    return _recall(key) is not None or _disk_path(key, cache_dir).exists()


def store(
    detector,
    config: QuantConfig,
    params: Mapping[str, np.ndarray],
    cache_dir: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """File kernels and biases computed elsewhere (a child process:
    :mod:`engine.quant.remedies.isolated`) under the detector's key for ``config``, in
    memory and, when they used calibration images, on disk; returns the full weights."""
    from squeezelens.engine.detector import aligned_copy

    names = [k for k in detector.float_weights if k.endswith(("kernels", "biases"))]
    if sorted(names) != sorted(params) or any(
        np.shape(params[n]) != detector.float_weights[n].shape for n in names
    ):
        raise InputError("remedied weights do not match the model's kernels and biases")
    key = remedy_key(detector, config)
    if config.needs_calibration:
        save_npz(_disk_path(key, cache_dir), params)
    return _remember(key, {**detector.float_weights, **{n: aligned_copy(params[n]) for n in names}})


def detector_weights(
    detector,
    config: QuantConfig,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """The detector's weights under ``config``, remedies included, from the cache or computed
    (on ``detector.calibration`` when the config needs calibration images)."""
    from squeezelens.engine.quant.remedies.pipeline import remedied_weights

    calibration = getattr(detector, "calibration", None)
    if config.needs_calibration and calibration is None:
        raise InputError(
            "bias correction and AdaRound need calibration images (--calib PATH, or the "
            "train split of --kitti-root)"
        )
    key = remedy_key(detector, config)
    found = _recall(key)
    if found is not None:
        return found
    params = {k: v for k, v in detector.float_weights.items() if k.endswith(("kernels", "biases"))}
    path = _disk_path(key, cache_dir)
    if config.needs_calibration:
        found = load_npz(path, params)
        if found is not None:
            return _remember(key, {**detector.float_weights, **found})
    model = equalized_weights(detector) if config.equalize else detector.float_weights
    inputs = calibration.inputs if config.needs_calibration else None
    weights = remedied_weights(
        detector.float_weights, detector.spec.variant, config, inputs, progress, cancel, model
    )
    if config.needs_calibration:
        save_npz(path, {k: weights[k] for k in params})
    return _remember(key, weights)
