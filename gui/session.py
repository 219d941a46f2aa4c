"""Sessions (the whole view as JSON) and "Copy as command" (the CLI equivalent).

A session names files by path, never embeds them: checkpoint, dataset root and
split, the current image, both quantization configs, the comparison mode and
the view settings (the window adds its bottom tab and the metrics class and
difficulty).  Reopening it restores each part that can be restored and reports
the rest; a session whose checkpoint or dataset fails to open is dropped.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError
from squeezelens.gui import engine_api
from squeezelens.gui.state import AppState

SESSION_VERSION = 1


def session_dict(state: AppState) -> dict:
    """Everything needed to reopen the current view."""
    ds, record = state.dataset, state.record
    return {
        "squeezelens_session": SESSION_VERSION,
        "checkpoint": state.model.checkpoint_path if state.model else None,
        "kitti_root": str(ds.root) if ds is not None else None,
        "split": ds.split if ds is not None else None,
        "image": record.stem if record is not None else None,
        "mode": state.mode,
        "quant": engine_api.config_to_dict(state.quant),
        "quant_b": engine_api.config_to_dict(state.quant_b),
        "int8": state.int8,
        "threshold": state.threshold,
        "view_mode": state.view_mode,
        "visible": dict(state.visible),
        "selected_layer": state.selected_layer,
    }


def save_session(path: str | Path, data: dict) -> Path:
    return write_json_atomic(path, data)


def load_session(path: str | Path) -> dict:
    """Read a session file; InputError naming the file for anything malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("session file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable session file ({exc})", path) from None
    if not isinstance(data, dict) or data.get("squeezelens_session") != SESSION_VERSION:
        raise InputError("not a SqueezeLens session (missing 'squeezelens_session': 1)", path)
    return data


def apply_view(state: AppState, data: dict) -> None:
    """Restore the parts of a session that live in AppState alone."""
    try:
        quant = engine_api.config_from_dict(data.get("quant"))
        quant_b = engine_api.config_from_dict(data.get("quant_b"))
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"session has an invalid quantization config ({exc})") from None
    mode = data.get("mode") if data.get("mode") in ("float", "ab") else "float"
    state.set_quant(quant, quant_b, mode=mode)
    state.set_int8(bool(data.get("int8", False)))
    state.set_threshold(float(data.get("threshold", state.threshold)))
    state.set_view_mode(data.get("view_mode", state.view_mode))
    for layer, on in (data.get("visible") or {}).items():
        if layer in state.visible:
            state.set_visible(layer, bool(on))
    if data.get("selected_layer"):
        state.select_layer(str(data["selected_layer"]))


def _q(config: Any) -> list[str]:
    return engine_api.config_cli_args(config)


def _calibration_count(state: AppState, int8: bool) -> list[str]:
    """``--calib-count N`` when something calibrates (INT8 or activation bits), else nothing.

    The window calibrates by the one rule of engine.calibration: the open KITTI folder's train
    split (the bundled sample's for an image folder); the count is given even at its default so
    a copied command keeps meaning the same images."""
    from squeezelens.engine.calibration import CALIBRATION_COUNT

    config = state.other_config
    if int8 or (config is not None and config.activation_bits):
        return ["--calib-count", str(CALIBRATION_COUNT)]
    return []


def command_lines(state: AppState) -> list[str]:
    """CLI commands that reproduce the current view: detect on this image, evaluate the split.

    They carry every flag that changes a number: the checkpoint, the config (or --int8), the
    calibration images and, for detect, the score threshold; evaluate scores with the protocol
    the window's Evaluate uses (the CLI default, official).
    """
    if state.model is None:
        return []
    ckpt = ["--checkpoint", state.model.checkpoint_path]
    int8 = state.int8 and state.mode == "float"
    quant = ["--int8"] if int8 else _q(state.other_config)
    calib = _calibration_count(state, int8)
    ds = state.dataset
    kitti = ["--kitti-root", str(ds.root)] if ds is not None and ds.split != "images" else []
    lines = []
    record = state.record
    if record is not None:  # --kitti-root: the folder whose train split calibrates
        detect_kitti = kitti if calib else []
        lines.append(shlex.join(["squeezelens", "detect", *ckpt, "--images", record.path,
                                 "--threshold", f"{state.threshold:.2f}", *quant, *detect_kitti,
                                 *calib]))  # fmt: skip
    if kitti:
        lines.append(shlex.join(["squeezelens", "evaluate", *ckpt, *kitti, "--split", ds.split,
                                 *quant, *calib]))  # fmt: skip
    if state.mode == "ab" and state.quant is not None and record is not None:
        lines.insert(0, "# config A: " + shlex.join(_q(state.quant)))
    return lines
