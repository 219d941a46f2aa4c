"""Initial weights, periodic checkpoints and the resumable training-state file.

Layout of a run folder::

    out_dir/model.npz (+ model.json)       latest weights, project checkpoint format
    out_dir/checkpoints/model-0001000.npz  periodic snapshots (+ sidecars), newest few kept
    out_dir/train.state                    step, weights, momentum slots, run metadata
    out_dir/loss_log.csv                   loss components every N steps

``train.state`` is one ``.npz`` archive (no pickle) written to a temporary file
and renamed, so a kill at any moment leaves either the previous or the new
state, never a torn one.  It carries its own copy of the weights, so resuming
never depends on which snapshot survived.  Its name does not end in ``.npz``,
so ``load_checkpoint(out_dir)`` still finds exactly one checkpoint: model.npz.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import atomic_path
from squeezelens.engine.checkpoint.writers import save_npz
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec, expected_shapes

STATE_FILE = "train.state"
LATEST = "model.npz"
SNAPSHOT_DIR = "checkpoints"
CONVDET = "conv12"
PIXEL_SCALE = 64.0  # about the std of mean-subtracted KITTI pixels


@dataclass
class TrainState:
    """Everything needed to continue a run after ``step`` completed updates.

    weights / momentum: official tensor name -> float32 array (momentum are
    the optimizer's accumulators, same shapes as the weights).
    meta: JSON-able run description (spec, seed, batch, kind, quantization...).
    """

    step: int
    weights: dict[str, np.ndarray]
    momentum: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)


def spec_from_dict(d: dict) -> ArchSpec:
    """Inverse of :meth:`ArchSpec.to_dict` (as stored in a state or sidecar)."""
    return ArchSpec(
        variant=d["variant"],
        class_names=tuple(d["classes"]),
        anchor_shapes=tuple(tuple(float(v) for v in a) for a in d["anchor_shapes"]),
        convdet_kernel=int(d["convdet_kernel"]),
        input_size=tuple(int(v) for v in d["input_size"]),  # type: ignore[arg-type]
    )


def save_state(out_dir: str | Path, state: TrainState) -> Path:
    """Write ``out_dir/train.state`` atomically (temp file, fsync, rename)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / STATE_FILE
    meta = json.dumps({**state.meta, "step": int(state.step)}).encode()
    arrays = {f"weights/{k}": np.asarray(v, np.float32) for k, v in state.weights.items()}
    arrays.update({f"momentum/{k}": np.asarray(v, np.float32) for k, v in state.momentum.items()})
    arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_state(out_dir: str | Path) -> TrainState | None:
    """The state in ``out_dir`` (None when there is none); InputError when unreadable."""
    path = Path(out_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            weights = {k[8:]: z[k] for k in z.files if k.startswith("weights/")}
            momentum = {k[9:]: z[k] for k in z.files if k.startswith("momentum/")}
    except Exception as exc:  # a corrupt archive raises many kinds
        raise InputError(
            f"training state is unreadable ({type(exc).__name__}: {exc})", path
        ) from None
    return TrainState(int(meta["step"]), weights, momentum, meta)


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """Normal(0, std) redrawn outside +-2 std, as TF's truncated_normal_initializer."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) > 2.0
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2.0
    return (x * std).astype(np.float32)


def init_weights(spec: ArchSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights for training from scratch.

    The original started the body from ImageNet SqueezeNet and drew the new
    layers from a truncated normal (stddev 0.001; conv12: 0.0001).  Without a
    pretrained body, 0.001 would vanish the signal through 20+ ReLU layers, so
    the body uses He (truncated normal, stddev sqrt(2 / fan_in) corrected for
    the truncation, as Keras' he_normal); conv12 keeps the original 0.0001.
    He assumes unit-scale inputs but the pixels enter un-normalised (mean-
    subtracted 0..255, as the original), so conv1 is further divided by
    PIXEL_SCALE: activations then start near unit scale, and the first updates
    of conv12 (lr 0.01) do not throw the box deltas far off.  Biases are 0.
    """
    rng = np.random.default_rng([int(seed), 2])
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(spec).items():
        if name.endswith("/biases"):
            out[name] = np.zeros(shape, np.float32)
        elif name.startswith(CONVDET + "/"):
            out[name] = _truncated_normal(rng, shape, 1e-4)
        else:
            fan_in = int(np.prod(shape[:3]))
            std = np.sqrt(2.0 / fan_in) / 0.87962566103423978
            if name == "conv1/kernels":
                std /= PIXEL_SCALE
            out[name] = _truncated_normal(rng, shape, std)
    return out


def merge_init(
    spec: ArchSpec, loaded: dict[str, np.ndarray], seed: int = 0
) -> tuple[dict, list[str]]:
    """Start weights for ``spec`` from a loaded checkpoint's weights.

    conv12 is drawn afresh when its shape differs (other classes or anchors);
    any other missing or mis-shaped tensor is an InputError (another variant).
    Returns (weights, names of re-initialised tensors).
    """
    fresh = init_weights(spec, seed)
    out, redrawn = {}, []
    for name, shape in expected_shapes(spec).items():
        have = loaded.get(name)
        if have is not None and tuple(have.shape) == shape:
            out[name] = np.asarray(have, np.float32)
        elif name.startswith(CONVDET + "/"):
            out[name] = fresh[name]
            redrawn.append(name)
        else:
            got = "missing" if have is None else f"shape {list(have.shape)}"
            raise InputError(
                f"--init checkpoint does not fit: {name} is {got}, expected {list(shape)}"
            )
    return out, redrawn


def write_checkpoint(
    out_dir: str | Path, step: int, weights: dict[str, np.ndarray], spec: ArchSpec, keep: int = 5
) -> Path:
    """Save weights as ``checkpoints/model-<step>.npz`` and as ``model.npz`` (both with sidecars).

    Only the newest ``keep`` snapshots are kept (0 keeps all).
    """
    out = Path(out_dir)
    snap_dir = out / SNAPSHOT_DIR
    snap = save_npz(snap_dir / f"model-{step:07d}.npz", weights, spec)
    save_npz(out / LATEST, weights, spec)
    if keep > 0:
        for old in sorted(snap_dir.glob("model-*.npz"))[:-keep]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
    return snap


def json_safe(value):
    """Tuples to lists, recursively (a dataclasses.asdict result made JSON-able)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
