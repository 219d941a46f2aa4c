"""Image files: robust reading as 8-bit BGR and listing of image paths.

``cv2.imread`` fails silently on paths with non-ASCII characters on some
platforms and returns ``None`` for every kind of problem, so images are read
as bytes and decoded with :func:`cv2.imdecode` (the same decode for bytes
shipped to a worker, :func:`decode_image_bgr`);
each failure becomes an :class:`InputError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from squeezelens.engine.errors import InputError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")


def read_image_bytes(path: str | Path) -> bytes:
    """The encoded bytes of an image file (what :func:`decode_image_bgr` decodes).

    Raises InputError (naming the file) when it is missing, not a file or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("image file not found" if not path.exists() else "not a file", path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image file ({exc.strerror or exc})", path) from exc


def read_image_bgr(path: str | Path) -> np.ndarray:
    """Read an image file as an 8-bit BGR array.

    Returns: (H, W, 3) uint8, BGR channel order (what the SqueezeDet
    pre-processing expects).  Gray images are replicated to 3 channels, BGRA
    loses its alpha, 16-bit images are scaled to 8 bits.

    Raises InputError (naming the file) when the file is missing, empty, not
    an image, corrupt or has zero width or height.
    """
    return decode_image_bgr(read_image_bytes(path), path)


def decode_image_bgr(data: bytes, path: str | Path) -> np.ndarray:
    """Decode an image file's bytes exactly as :func:`read_image_bgr` does (``path`` names
    the file in error messages).  Workers given shipped image bytes decode with it."""
    path = Path(path)
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise InputError("image file is empty (0 bytes)", path)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0 or min(image.shape[:2]) < 1:
        raise InputError("not a readable image (corrupt or unsupported format)", path)
    return _to_bgr8(image, path)


def _to_bgr8(image: np.ndarray, path: Path) -> np.ndarray:
    """Normalise a decoded image of any depth/channel count to (H, W, 3) uint8."""
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"unsupported image pixel type {image.dtype}", path)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return np.ascontiguousarray(image)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise InputError(f"unsupported image with {channels} channels", path)


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends in a supported image suffix (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of image paths.

    A folder contributes its image files (not recursive); a file must itself
    be an image (png/jpg/jpeg/bmp, any case).  Raises InputError for a path
    that does not exist or a file that is not an image.  An empty result is
    returned as an empty list; callers decide whether that is an error.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(p for p in path.iterdir() if p.is_file() and is_image_path(p))
        elif path.is_file():
            if not is_image_path(path):
                raise InputError(
                    f"not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})", path
                )
            found.add(path)
        else:
            raise InputError("no such file or folder", path)
    return sorted(found, key=lambda p: str(p))
