"""Reading back a finished mixed-precision search (what ``squeezelens search`` writes).

:func:`read_search` takes the search folder, its ``search.json`` or its ``front.csv``
(the front's table; its folder's ``search.json`` holds the float mAP and size, the
allowed drop and every point's full config) and returns the
:class:`~engine.search.SearchResult` the search returned, every verified point
included (from ``search.csv`` beside it, else the front alone), with the folder's
metadata (checkpoint, images, protocol, widths and base config).  Anything
malformed is a one-line InputError naming the file.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.config import QuantConfig
from squeezelens.engine.search import RESULT_JSON, SEARCH_CSV, SearchPoint, SearchResult
from squeezelens.engine.sweep import META_NAME

FRONT_CSV = "front.csv"


@dataclass(frozen=True)
class SavedSearch:
    """A search read from its folder: the result, its metadata and the folder."""

    result: SearchResult
    meta: dict  # sweep_meta of the search (checkpoint, kitti_root, split, protocol, ...)
    folder: Path

    @property
    def base(self) -> QuantConfig | None:
        """The config every point shares but for the widths (None when not recorded)."""
        data = self.meta.get("search_base")
        return QuantConfig.from_dict(data) if isinstance(data, dict) else None


def _number(value: Any, name: str, path: Path) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise InputError(f"{name} must be a number, got {value!r}", path)
    return number


def _point(data: Any, path: Path) -> SearchPoint:
    """One point of search.json's front or of a search.csv row."""
    if not isinstance(data, dict):
        raise InputError(f"a search point must be an object, got {data!r}", path)
    try:
        config = data["config"]
        config = (
            QuantConfig.from_json(config)
            if isinstance(config, str)
            else QuantConfig.from_dict(config)
        )
        values = [_number(data[k], k, path) for k in
                  ("size_kb", "map_r11", "drop", "noise", "predicted_noise")]  # fmt: skip
    except KeyError as exc:
        raise InputError(f"a search point has no {exc.args[0]!r}", path) from None
    except InputError as exc:
        raise InputError(str(exc).split(": ", 1)[-1], path) from None
    return SearchPoint(config, *values)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable search result ({exc})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("front"), list):
        raise InputError("not a search result written by squeezelens search (no front)", path)
    return data


def _verified(folder: Path, front: tuple[SearchPoint, ...]) -> tuple[SearchPoint, ...]:
    """Every verified point (search.csv), else the front; sorted by size."""
    path = folder / SEARCH_CSV
    points = list(front)
    if path.exists():
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"not a readable search table ({exc})", path) from None
        exact = {p.config: p for p in front}  # search.json's unrounded sizes
        rows = [row for row in rows if row.get("config")]  # not the float reference's row
        points = [exact.get(q.config, q) for q in (_point(row, path) for row in rows)] or points
    return tuple(sorted(points, key=lambda p: p.size_kb))


def read_search(path: str | Path) -> SavedSearch:
    """The search in a folder, its search.json or its front.csv (module docstring)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    json_path = folder / RESULT_JSON
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_file() and path.name not in (RESULT_JSON, FRONT_CSV):
        raise InputError(f"open a search's {RESULT_JSON} or {FRONT_CSV} (or its folder)", path)
    if not json_path.exists():
        raise InputError(f"no {RESULT_JSON} here: not a finished squeezelens search", folder)
    data = _json(json_path)
    front = tuple(_point(p, json_path) for p in data["front"])
    best = _point(data["best"], json_path) if data.get("best") else None
    values = {k: _number(data.get(k), k, json_path) for k in ("float_map", "float_kb", "max_drop")}
    result = SearchResult(values["float_map"], values["float_kb"], _verified(folder, front),
                          front, best, values["max_drop"])  # fmt: skip
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    try:
        folder_meta = json.loads((folder / META_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        folder_meta = {}
    if isinstance(folder_meta, dict):
        meta = {**folder_meta, **meta}
    return SavedSearch(result, meta, folder)
