"""Atomic file writes: a killed run never leaves a half-written file.

Every writer of the project (results, sidecars, checkpoints, sessions, exports)
goes through :func:`atomic_path`: the content is written to a unique temporary
sibling (same folder, so the final rename never crosses file systems), flushed
to disk, then renamed over the target in one step.  On any error the temporary
file is removed and the target keeps its old content (or stays absent).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` on a clean exit.

    ``suffix`` ends the temporary name (``np.savez`` wants ``.npz``).  Parent folders are
    created.  The temporary name is unique per process and thread, so concurrent writers
    of the same target never write into each other's file (the last rename wins).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp{suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # the writer produced nothing: the rename reports it
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON to ``path`` atomically; returns the path."""
    return write_text_atomic(path, json.dumps(data, indent=indent))


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the file ``source`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)
