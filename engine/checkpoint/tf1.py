"""Read official TF1 (V2-format) checkpoints: ``<prefix>.index`` + ``.data-*``.

The ``.index`` file is an SSTable (LevelDB table) and is recognised by the
magic number in its last 8 bytes, so a renamed index is still found and a
stray file that merely ends in ``.index`` is rejected with a clear message.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError

SSTABLE_MAGIC = bytes.fromhex("57fb808b247547db")  # leveldb table magic, little-endian
SSTABLE_FOOTER = 48  # two padded block handles (40 bytes) + the 8-byte magic


def is_sstable(path: Path) -> bool:
    """Whether a file ends with the SSTable footer magic (what a TF1 ``.index`` is)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < SSTABLE_FOOTER:
                return False
            f.seek(-len(SSTABLE_MAGIC), os.SEEK_END)
            return f.read() == SSTABLE_MAGIC
    except OSError:
        return False


def tf1_files(location: Path) -> tuple[Path, list[Path]]:
    """(index file, data shards) of a TF1 checkpoint.

    location: a prefix (``model.ckpt-87000``, index = ``<prefix>.index``) or a renamed
    index file itself, whose shards are ``<name>.data-*`` or ``<stem>.data-*``.
    """
    if not location.is_file():
        return Path(str(location) + ".index"), sorted(
            location.parent.glob(location.name + ".data-*")
        )
    for name in (location.name, location.stem):
        data = sorted(location.parent.glob(name + ".data-*"))
        if data:
            return location, data
    return location, []


def _stage(index: Path, data: list[Path], folder: Path) -> Path:
    """Link (or copy) a renamed index and its shards as ``folder/ckpt.*``; return the prefix."""
    prefix = folder / "ckpt"
    pairs = [(index, Path(str(prefix) + ".index"))]
    pairs += [(d, Path(str(prefix) + d.name[d.name.rindex(".data-") :])) for d in data]
    for src, dst in pairs:
        try:
            dst.symlink_to(src.resolve())
        except OSError:
            shutil.copyfile(src, dst)
    return prefix


def _read_tensors(tf, prefix: Path, source: Path) -> dict[str, np.ndarray]:
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
        out = {}
        for name in shapes:
            if name.endswith(("/kernels", "/biases")):
                out[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
    except Exception as exc:  # TF raises DataLossError, OpError, ... on corrupt files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read TF1 checkpoint: {msg[:200]}", source) from None
    return out


def read_tf1(location: Path) -> dict[str, np.ndarray]:
    """All float tensors of a TF1 checkpoint, optimizer slots and global_step dropped.

    location: the checkpoint prefix, or a renamed ``.index`` file (see :func:`tf1_files`).
    """
    from squeezelens.engine.tf_runtime import import_tf

    index, data = tf1_files(location)
    if not is_sstable(index):
        raise InputError("not a TF1 checkpoint index (no SSTable footer: truncated?)", index)
    if not data:
        raise InputError("TF1 checkpoint has an .index but no .data-* file", location)
    tf = import_tf()
    if index == Path(str(location) + ".index"):
        out = _read_tensors(tf, location, location)
    else:
        with tempfile.TemporaryDirectory(prefix="squeezelens-tf1-") as tmp:
            out = _read_tensors(tf, _stage(index, data, Path(tmp)), location)
    if not out:
        raise InputError(
            "TF1 checkpoint holds no SqueezeDet tensors (*/kernels, */biases)", location
        )
    return out
