"""'Copy as command': the CLI commands that reproduce what the window shows.

They carry every flag that changes a number: the checkpoint, the config (or
--int8), the calibration images and, for detect, the score threshold; evaluate
scores with the protocol the window's Evaluate uses (``--protocol`` when it is not the
CLI's default, official) and, float vs quantized, explains the errors as Evaluate does
(``--errors``).
"""

from __future__ import annotations

import shlex

from squeezelens.engine.quant import QuantConfig
from squeezelens.gui.state import AppState


def _q(config: QuantConfig | None) -> list[str]:
    """The CLI flags of a config (none for float)."""
    return [] if config is None else list(config.to_cli_args())


def _calibration_count(state: AppState, int8: bool) -> list[str]:
    """``--calib-count N`` when something calibrates (INT8, activation bits, bias correction,
    AdaRound), else nothing.

    The window calibrates by the one rule of engine.calibration: the open KITTI folder's train
    split (the bundled sample's for an image folder); the count is given even at its default so
    a copied command keeps meaning the same images."""
    from squeezelens.engine.calibration import CALIBRATION_COUNT

    config = state.other_config
    if int8 or (config is not None and (config.activation_bits or config.needs_calibration)):
        return ["--calib-count", str(CALIBRATION_COUNT)]
    return []


def command_lines(state: AppState) -> list[str]:
    """CLI commands that reproduce the current view: detect on this image, evaluate the split."""
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
        protocol = ["--protocol", state.protocol] if state.protocol != "official" else []
        errors = ["--errors"] if state.mode == "float" else []  # the error chart's numbers too
        lines.append(shlex.join(["squeezelens", "evaluate", *ckpt, *kitti, "--split", ds.split,
                                 *protocol, *quant, *calib, *errors]))  # fmt: skip
    if state.mode == "ab" and state.quant is not None and record is not None:
        lines.insert(0, "# config A: " + shlex.join(_q(state.quant)))
    return lines
