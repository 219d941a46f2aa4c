"""The quantization panel's presets and the model-size line under it.

The presets are the engine's (:mod:`engine.quant.presets`: the low-precision
fork's four curves and Ristretto's dynamic fixed point), the single source the
CLI's ``--fork-curves`` uses too; the storage at a config's bit widths is the
engine's :func:`engine.quant.report.model_size_bytes`.  Here they are only
looked up and formatted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from squeezelens.engine.quant.presets import FORK_CURVES, PRESETS, Preset
from squeezelens.engine.quant.report import model_size_bytes
from squeezelens.gui.state import AppState

if TYPE_CHECKING:
    from squeezelens.engine.data.kitti import Dataset


def presets() -> tuple[Preset, ...]:
    """Every named preset (engine.quant.presets.PRESETS)."""
    return tuple(PRESETS)


def fork_curves() -> tuple[Preset, ...]:
    """The fork's four curves (engine.quant.presets.FORK_CURVES)."""
    return tuple(FORK_CURVES)


def describe_size(state: AppState) -> str:
    """'1.64 M parameters · 6.6 MB float → 1.2 MB at 6 bits' for the quantized config (in A-vs-B
    mode the one being edited)."""
    info = state.model
    if info is None:
        return "No model loaded"
    float_mb = info.num_parameters * 4 / 1e6
    text = f"{info.num_parameters / 1e6:.2f} M parameters · {float_mb:.1f} MB float"
    if state.int8 and state.mode == "float":
        return text + f" → ≈{info.num_parameters / 1e6:.1f} MB INT8"
    config = state.other_config if state.mode == "float" else state.edited_config
    if config is None or not info.tensor_sizes:
        return text
    mb = model_size_bytes(info.tensor_sizes, config) / 1e6
    return text + f" → {mb:.2f} MB at {config.bits} bits ({float_mb / mb:.1f}× smaller)"


def activation_tip(dataset: Dataset | None) -> str:
    """The Activations box's tooltip: what activation bits do and which images calibrate them
    (engine.activations; engine.calibration: the rule the GUI's controller applies)."""
    from squeezelens.engine.calibration import CALIBRATION_COUNT, CALIBRATION_SPLIT

    if dataset is not None and dataset.split != "images":
        where = f"the {CALIBRATION_SPLIT} split of {dataset.root}"
        if dataset.split == CALIBRATION_SPLIT:
            where += " (the split shown: choose val to evaluate on other images)"
    else:
        where = f"the bundled sample data's {CALIBRATION_SPLIT} split"
    return (
        "Activation bits N: every layer's output (after its ReLU, and ConvDet's raw output) is "
        "rounded to N-bit signed dynamic fixed point, Ristretto style: one power-of-two step "
        "per layer, its integer length (sign bit included) fitting the largest |activation| "
        f"the float model produces on the calibration images: the first {CALIBRATION_COUNT}, "
        f"in file-path order, of {where}. 'off': float activations."
    )
