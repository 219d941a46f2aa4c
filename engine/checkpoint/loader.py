"""Find, identify (by content) and load a checkpoint plus its JSON sidecar.

Accepted: a TF1 prefix (``model.ckpt-87000``), its ``.index`` or ``.data-*``
file, a folder holding one checkpoint, a Keras ``.h5`` weight file, or an
``.npz`` keyed by official names.  The sidecar (``<prefix>.json`` or
``<file>.json``) supplies input size, classes and anchor shapes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from squeezelens.engine.checkpoint.tf1 import is_sstable, tf1_files
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec, infer_spec, validate_sidecar

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
_DATA_RE = re.compile(r"\.data-\d{5}-of-\d{5}$")


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A loaded checkpoint.

    weights: official name -> float32 array (kernels HWIO, biases 1-D).
    spec: the architecture inferred from shapes + sidecar.
    """

    path: str
    format: str  # "tf1" | "h5" | "npz"
    weights: dict
    spec: ArchSpec
    sha256: str
    sidecar: dict


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _head(path: Path, n: int = 8) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _resolve_dir(folder: Path) -> Path:
    indexes = sorted(folder.glob("*.index"))
    others = sorted(
        p for p in folder.iterdir() if p.suffix in (".h5", ".hdf5", ".npz") and p.is_file()
    )
    found = [p.with_suffix("") for p in indexes] + others
    if not found:
        raise InputError("folder holds no checkpoint (.index, .h5 or .npz)", folder)
    if len(found) > 1:
        state = folder / "checkpoint"
        if state.is_file():  # TF1 'checkpoint' state file names the latest
            m = re.search(r'model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"))
            if m:
                return (folder / Path(m.group(1)).name).resolve()
        names = ", ".join(p.name for p in found[:4])
        raise InputError(f"folder holds several checkpoints ({names}); name one", folder)
    return found[0]


def identify(path: str | Path) -> tuple[str, Path]:
    """Return (format, resolved path), told apart by content, not by name.

    format is 'tf1' (path = the prefix, or a renamed SSTable index file itself), 'h5'
    or 'npz'.  A TF1 index must end with the SSTable magic.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = _resolve_dir(p)
    if p.suffix == ".index" or _DATA_RE.search(p.name):
        p = p.with_name(_DATA_RE.sub("", p.name).removesuffix(".index"))
    index = Path(str(p) + ".index")
    if not p.is_file() and index.is_file():
        if not is_sstable(index):
            raise InputError("not a TF1 checkpoint index (no SSTable footer magic)", index)
        return "tf1", p
    if not p.exists():
        raise InputError("no such checkpoint file or folder", path)
    head = _head(p)
    if head.startswith(HDF5_MAGIC):
        return "h5", p
    if head.startswith(ZIP_MAGIC):
        return "npz", p
    if is_sstable(p):  # a renamed .index: its shards are <name>.data-* or <stem>.data-*
        return "tf1", p
    if len(head) == 0:
        raise InputError("file is empty", p)
    raise InputError("not a checkpoint: neither TF1 (.index/.data), HDF5 nor .npz", p)


def find_sidecar(path: Path) -> Path | None:
    """The JSON sidecar beside a checkpoint (``<prefix>.json`` or ``<file>.json``), if any."""
    for cand in (Path(str(path) + ".json"), path.with_suffix(".json")):
        if cand.is_file() and cand != path:
            return cand
    return None


def read_sidecar(path: Path) -> dict:
    """The sidecar of a checkpoint as a dict ({} without one), its values checked.

    Raises InputError naming the sidecar when it is not a JSON object or when
    ``input_size``, ``classes`` or ``anchor_shapes`` hold bad values (see
    :func:`engine.model.spec.validate_sidecar`).
    """
    cand = find_sidecar(Path(path))
    if cand is None:
        return {}
    try:
        data = json.loads(cand.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"sidecar is not valid JSON ({exc})", cand) from None
    if not isinstance(data, dict):
        raise InputError("sidecar must hold a JSON object", cand)
    validate_sidecar(data, str(cand))
    return data


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    return read_npz_weights(path, path)


def read_npz_weights(source: Path | BinaryIO, where: str | Path) -> dict[str, np.ndarray]:
    """The float32 arrays of an ``.npz`` (a path or a file object such as ``io.BytesIO``
    of :func:`engine.checkpoint.writers.npz_bytes`); ``where`` names it in errors."""
    try:
        with np.load(source, allow_pickle=False) as z:
            return {k: np.asarray(z[k], dtype=np.float32) for k in z.files}
    except Exception as exc:  # zipfile / numpy raise many kinds on corrupt archives
        raise InputError(f"cannot read .npz ({type(exc).__name__}: {exc})", where) from None


def _load_tf1(prefix: Path) -> dict[str, np.ndarray]:
    from squeezelens.engine.checkpoint.tf1 import read_tf1

    return read_tf1(prefix)


def _load_h5(path: Path) -> dict[str, np.ndarray]:
    from squeezelens.engine.checkpoint.keras_h5 import read_keras_h5

    return read_keras_h5(path)


def _files_of(fmt: str, p: Path) -> list[Path]:
    if fmt != "tf1":
        return [p]
    index, data = tf1_files(p)
    return data + [index]


def load_checkpoint(path: str | Path, input_size: tuple[int, int] | None = None) -> Checkpoint:
    """Load any supported checkpoint; infer its architecture; apply an input-size override."""
    fmt, p = identify(path)
    loaders = {"tf1": _load_tf1, "h5": _load_h5, "npz": _load_npz}
    raw = loaders[fmt](p)
    sidecar = read_sidecar(p)
    model_keys = {k for k in raw if k.endswith(("/kernels", "/biases"))}
    weights = {k: np.ascontiguousarray(raw[k], dtype=np.float32) for k in sorted(model_keys)}
    side = find_sidecar(p)
    spec = infer_spec(
        {k: v.shape for k, v in weights.items()},
        sidecar,
        source=str(p),
        sidecar_source=None if side is None else str(side),
    )
    for name, arr in weights.items():
        if not np.all(np.isfinite(arr)):
            raise InputError(f"tensor {name} holds NaN or infinite values", p)
    if input_size is not None:
        spec = spec.with_input_size(input_size)
    keep = {k for k in weights if k.split("/")[0] in {n.split("/")[0] for n in _layer_set(spec)}}
    weights = {k: weights[k] for k in sorted(keep)}
    return Checkpoint(str(p), fmt, weights, spec, _sha256(_files_of(fmt, p)), sidecar)


def _layer_set(spec: ArchSpec) -> list[str]:
    from squeezelens.engine.model.spec import layer_names

    return layer_names(spec.variant)
