"""Write weights as ``.npz`` (official names, HWIO) or as a TF1-layout checkpoint
that the original SqueezeDet code can restore with its Saver (and find with
``tf.train.get_checkpoint_state``, which reads the folder's ``checkpoint`` file)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from squeezelens.engine.model.spec import ArchSpec


def write_sidecar(path: Path, spec: ArchSpec, extra: dict | None = None) -> Path:
    """Write ``<path>.json`` (the loader's sidecar) describing the architecture."""
    side = Path(str(path) + ".json") if path.suffix != ".npz" else path.with_suffix(".json")
    write_json_atomic(side, {**spec.to_dict(), **(extra or {})})
    return side


def npz_bytes(weights: dict[str, np.ndarray]) -> bytes:
    """The ``.npz`` file :func:`save_npz` writes, as bytes (float32 arrays by official name)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})
    return buffer.getvalue()


def save_npz(
    path: str | Path, weights: dict[str, np.ndarray], spec: ArchSpec | None = None
) -> Path:
    """Save weights keyed by official names; with a spec, also its JSON sidecar."""
    path = Path(path)
    write_bytes_atomic(path, npz_bytes(weights))
    if spec is not None:
        write_sidecar(path, spec)
    return path


def _proto_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_checkpoint_state(folder: Path, name: str) -> Path:
    """Write the TF1 ``checkpoint`` state file naming checkpoint ``name`` (a prefix basename).

    ``model_checkpoint_path`` becomes ``name``; ``all_model_checkpoint_paths`` keeps the
    entries an existing state file lists and ends with ``name``.  Written atomically.
    """
    state = folder / "checkpoint"
    known: list[str] = []
    if state.is_file():
        text = state.read_text(errors="replace")
        known = re.findall(r'all_model_checkpoint_paths:\s*"((?:[^"\\]|\\.)*)"', text)
        known = [re.sub(r"\\(.)", r"\1", k) for k in known]
    paths = [k for k in known if k != name] + [name]
    lines = [f"model_checkpoint_path: {_proto_string(name)}"]
    lines += [f"all_model_checkpoint_paths: {_proto_string(k)}" for k in paths]
    return write_text_atomic(state, "\n".join(lines) + "\n")


def save_tf1(
    prefix: str | Path, weights: dict[str, np.ndarray], spec: ArchSpec | None = None
) -> Path:
    """Save a TF1 V2-format checkpoint (``prefix.index`` + ``prefix.data-00000-of-00001``)
    and the folder's ``checkpoint`` state file naming it as the latest."""
    from squeezelens.engine.tf_runtime import import_tf

    tf = import_tf()

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(weights)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(np.asarray(weights[n], dtype=np.float32)) for n in names],
    )
    write_checkpoint_state(prefix.parent, prefix.name)
    if spec is not None:
        write_sidecar(prefix, spec)
    return prefix
