"""The cells of one row of the Layers table: their text and the value each sorts by.

Every column sorts by a number (params, range width, step, levels, SQNR, the clipped
share and the clipping and rounding parts of the error, mAP drop, effective bits), the
Layer column by forward order, so a click on any header gives the order a user means,
not the text's.  The clipping columns are the engine's
:func:`~engine.quant.clipping.clipping_report` (what ``squeezelens quantize --report``
prints), computed on the analysis worker.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidgetItem

SORT_ROLE = Qt.ItemDataRole.UserRole + 10
FLOAT_BITS = 32  # a float layer sorts after every bit width


class SortItem(QTableWidgetItem):
    """A table item ordered by its :data:`SORT_ROLE` value (its text when there is none)."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None:
            return super().__lt__(other)
        return a < b


def num(value: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return format(value, fmt)


def _finite(value: float, default: float) -> float:
    return default if value is None or math.isnan(value) else float(min(value, 1e9))


def sensitivity_tip(state: Any, layer: str) -> str:
    """'mAP R11 lost with only this layer quantized: 5 bits +0.0312 · 6 bits +0.0040 …'."""
    drops = state.sensitivity_by_bits.get(layer)
    head = "mAP (R11, a fraction; positive = worse) lost with only this layer quantized"
    if not drops:
        return f"{head}: Compute sensitivity"
    widths = " · ".join(f"{b} bits {d:+.4f}" for b, d in sorted(drops.items()))
    noise = state.sensitivity_noise.get(layer)
    if noise is None:
        return f"{head}: {widths}"
    return f"{head}: {widths}\nEvaluation noise at the bits shown: ±{noise:.4f} (bootstrap)"


def sensitivity_cell(state: Any, layer: str) -> tuple[str, float]:
    """'+0.0312 ±0.0040' (the drop and its bootstrap spread) and its sort key."""
    drop = state.sensitivity.get(layer)
    if drop is None:
        return "", -math.inf
    noise = state.sensitivity_noise.get(layer)
    return f"{drop:+.4f}" + (f" ±{noise:.4f}" if noise is not None else ""), drop


def _bits(info: Any, override: Any, config: Any) -> tuple[str, float]:
    quantized = info is not None and info.quantized
    if override is not None:
        return str(override), FLOAT_BITS if override == "float" else int(override)
    if config is None:
        return "default", FLOAT_BITS
    return (f"default ({info.bits if quantized else 'float'})",
            info.bits if quantized else FLOAT_BITS)  # fmt: skip


def _step(info: Any) -> tuple[str, str, float, float]:
    """(step text, levels text, step key, levels key)."""
    if info is None or not info.quantized:
        return "–", "float", -1.0, FLOAT_BITS**2
    levels = float(info.n_levels)
    if info.per_channel:
        return "per channel", str(info.n_levels), float(max(info.step)), levels
    return num(float(info.step), ".2e"), str(info.n_levels), float(info.step), levels


def clipping_cells(clip: Any) -> list[tuple[str, float]]:
    """[(text, sort key)] of the Clipped, Clip dB and Round dB columns of one layer
    (engine LayerClipping; None for a float layer: dashes, sorted first)."""
    if clip is None:
        return [("–", -1.0), ("–", -math.inf), ("–", -math.inf)]
    t = clip.total
    share = float(t.clipped_fraction)
    text = "0" if t.clipped == 0 else f"{share:.2%}" if share >= 1e-4 else f"{share:.1e}"
    return [(text, share),
            (num(float(t.clip_db), ".1f"), _finite(float(t.clip_db), -math.inf)),
            (num(float(t.round_db), ".1f"), _finite(float(t.round_db), -math.inf))]  # fmt: skip


def row_cells(state: Any, index: int, row: Any, info: Any, override: Any, config: Any,
              clip: Any = None) -> list:  # fmt: skip
    """[(text, sort key)] of the eleven columns of one layer (``index``: forward order;
    ``clip``: its engine LayerClipping, None when it stays float)."""
    step, levels, step_key, levels_key = _step(info)
    sens, sens_key = sensitivity_cell(state, row.name)
    bits, bits_key = _bits(info, override, config)
    return [
        (row.name, index),
        (f"{row.params:,}", row.params),
        (f"{row.w_min:+.3f} … {row.w_max:+.3f}", row.w_max - row.w_min),
        (step, step_key),
        (levels, levels_key),
        (num(row.error.sqnr_db, ".1f"), _finite(row.error.sqnr_db, -math.inf)),
        *clipping_cells(clip),
        (sens, sens_key),
        (bits, bits_key),
    ]
