"""Where the engine keeps what it can recompute (INT8 conversions, remedied weights)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SQUEEZELENS_CACHE"


def cache_folder(kind: str) -> Path:
    """``$SQUEEZELENS_CACHE/<kind>`` when set, else ``~/.cache/squeezelens/<kind>``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "squeezelens"
    return base / kind
