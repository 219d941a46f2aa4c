"""Sessions: the whole view as JSON, validated as a whole before any of it is applied.

A session names files by path, never embeds them: checkpoint, dataset root and
split, the current image, both quantization configs, the comparison mode, the
view settings, the bottom tab, the metrics class and difficulty and the search whose
Pareto front the front tab shows.  Every field
is optional (a missing one leaves that part of the view as it is) and has one
rule in :data:`FIELDS`; :func:`load_session` checks them all and raises an
InputError naming the first bad field and its value, so a session is applied
completely or not at all.  What can only be checked against the loaded model and
dataset (the layer, the image, the class) is checked by :func:`check_against`
before anything is applied.  The restore itself (waiting for the files to load)
is :mod:`gui.session_restore`'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.gui.state import LAYERS, MODES, VIEW_MODES, AppState

if TYPE_CHECKING:
    from squeezelens.engine.data.kitti import Dataset
    from squeezelens.gui.state import ModelInfo

SESSION_VERSION = 1
VERSION_KEY = "squeezelens_session"
TABS = ("layers", "metrics", "sweep", "front")  # the bottom tabs, as sessions name them
DIFFICULTIES = ("easy", "moderate", "hard")
MAX_BYTES = 1 << 20  # a session is a few hundred bytes; refuse anything absurd


class BadField(ValueError):
    """One field's value breaks its rule (the reason, without the field's name)."""


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadField("must be a non-empty string")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise BadField(f"must be one of {', '.join(choices)}")
        return value

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadField("must be true or false")
    return value


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadField("must be a number between 0 and 1")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise BadField("must be between 0 and 1")
    return float(value)


def _config(value: Any) -> QuantConfig:
    try:
        return QuantConfig.from_dict(value)
    except (InputError, TypeError) as exc:
        raise BadField(str(exc)) from None


def _visible(value: Any) -> dict[str, bool]:
    if not isinstance(value, dict):
        raise BadField('must be an object such as {"gt": true, "ref": true, "other": false}')
    for layer, on in value.items():
        if layer not in LAYERS:
            raise BadField(f"has an unknown layer {layer!r} (known: {', '.join(LAYERS)})")
        if not isinstance(on, bool):
            raise BadField(f"{layer} must be true or false")
    return dict(value)


# field -> rule; null (None) is allowed for every field and means "not saved"
FIELDS: dict[str, Callable[[Any], Any]] = {
    "checkpoint": _text,
    "kitti_root": _text,
    "split": _text,
    "image": _text,
    "mode": _choice(MODES),
    "quant": _config,
    "quant_b": _config,
    "int8": _flag,
    "threshold": _threshold,
    "view_mode": _choice(VIEW_MODES),
    "visible": _visible,
    "selected_layer": _text,
    "tab": _choice(TABS),
    "metrics_class": _text,
    "metrics_difficulty": _choice(DIFFICULTIES),
    "front_search": _text,  # the search folder whose Pareto front the front tab shows
}


@dataclass(frozen=True)
class Session:
    """A validated session; None = the file does not set that part of the view."""

    checkpoint: str | None = None
    kitti_root: str | None = None
    split: str | None = None
    image: str | None = None
    mode: str | None = None
    quant: QuantConfig | None = None
    quant_b: QuantConfig | None = None
    int8: bool | None = None
    threshold: float | None = None
    view_mode: str | None = None
    visible: dict[str, bool] | None = None
    selected_layer: str | None = None
    tab: str | None = None
    metrics_class: str | None = None
    metrics_difficulty: str | None = None
    front_search: str | None = None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def parse_session(data: Any, path: str | Path = "session") -> Session:
    """Check every field of a session document (the parsed JSON); InputError naming the file,
    the first bad field and its value, or the format when it is not a (known) session."""
    if not isinstance(data, dict) or VERSION_KEY not in data:
        raise InputError(f"not a SqueezeLens session (missing '{VERSION_KEY}': 1)", path)
    version = data[VERSION_KEY]
    if isinstance(version, int) and not isinstance(version, bool) and version > SESSION_VERSION:
        raise InputError(f"made by a newer SqueezeLens (format {version}); this version reads "
                         f"format {SESSION_VERSION}", path)  # fmt: skip
    if version != SESSION_VERSION or isinstance(version, bool):
        raise InputError(f"not a SqueezeLens session ('{VERSION_KEY}' is {_shown(version)}, "
                         f"expected {SESSION_VERSION})", path)  # fmt: skip
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == VERSION_KEY:
            continue
        rule = FIELDS.get(name)
        if rule is None:
            raise InputError(f"session has an unknown field {name!r}", path)
        if value is None:
            continue
        try:
            values[name] = rule(value)
        except BadField as exc:
            raise InputError(f"session field {name!r} is {_shown(value)}: {exc}", path) from None
    return Session(**values)


def load_session(path: str | Path) -> Session:
    """Read and validate a session file; InputError naming the file for anything wrong."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"not a session file (larger than {MAX_BYTES // 1024} KiB)", path)
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("session file not found", path) from None
    except RecursionError:
        raise InputError("not a readable session file (nested too deeply)", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable session file ({exc})", path) from None
    return parse_session(data, path)


def session_dict(state: AppState) -> dict:
    """Everything in AppState needed to reopen the current view (the window adds its tab
    and metrics choices)."""
    ds, record = state.dataset, state.record
    return {
        VERSION_KEY: SESSION_VERSION,
        "checkpoint": state.model.checkpoint_path if state.model else None,
        "kitti_root": str(ds.root) if ds is not None else None,
        "split": ds.split if ds is not None else None,
        "image": record.stem if record is not None else None,
        "mode": state.mode,
        "quant": state.quant.to_dict() if state.quant is not None else None,
        "quant_b": state.quant_b.to_dict() if state.quant_b is not None else None,
        "int8": state.int8,
        "threshold": state.threshold,
        "view_mode": state.view_mode,
        "visible": dict(state.visible),
        "selected_layer": state.selected_layer or None,
    }


def save_session(path: str | Path, data: dict) -> Path:
    """Write a session document; it must pass the same check as a file read back."""
    parse_session(data, path)
    return write_json_atomic(path, data)


def check_against(session: Session, model: ModelInfo | None, dataset: Dataset | None,
                  path: str | Path = "session") -> None:  # fmt: skip
    """The fields that name something in the loaded model or dataset must name what is
    there (checked before anything is applied)."""
    checks = (
        ("selected_layer", model.layer_names if model else None, "no such layer in the model"),
        ("metrics_class", model.class_names if model else None, "no such class in the model"),
        ("image", dataset.stems if dataset is not None else None, "no such image in the split"),
    )
    for name, known, problem in checks:
        value = getattr(session, name)
        if value is not None and known is not None and value not in known:
            raise InputError(f"session field {name!r} is {_shown(value)}: {problem}", path)


def apply_view(state: AppState, session: Session) -> None:
    """Restore the parts of a validated session that live in AppState (nothing here fails)."""
    given = {f.name for f in fields(session) if getattr(session, f.name) is not None}
    if given & {"mode", "quant", "quant_b"}:
        state.set_quant(session.quant, session.quant_b, mode=session.mode or "float")
    if session.int8 is not None:
        state.set_int8(session.int8)
    if session.threshold is not None:
        state.set_threshold(session.threshold)
    if session.view_mode is not None:
        state.set_view_mode(session.view_mode)
    for layer, on in (session.visible or {}).items():
        state.set_visible(layer, on)
    if session.selected_layer is not None:
        state.select_layer(session.selected_layer)
