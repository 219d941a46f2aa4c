"""Clipping vs rounding: where each quantized layer's (and channel's) error comes from.

A weight beyond its grid's end levels is *clipped* (it lands on the end level);
every other weight is *rounded* to a level near it.  The squared error of a
layer is the sum over its clipped weights (the **clipping error**) plus the sum
over the others (the **rounding error**), exactly, so beside the SQNR each part
is given as an MSE contribution and as dB: ``10 log10(signal / part)``
(``inf``: none of that error).

Min/max ranges never clip (the grid spans the values); ``symmetric`` neither
(+-max|w|); ``pow2`` does when a maximum is an exact power of two (Ristretto's
rule), and so does any range narrower than the values (a range search that
trades clipping for finer steps).  The functions read whatever grid
:func:`~engine.quant.apply.plan_quantization` gives each tensor, so they hold
for every range rule.  Layer = kernel and bias together; channel = one output
channel (the kernel's last axis and that bias element).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import atomic_path
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.apply import TensorPlan, plan_quantization, quantize_weights
from squeezelens.engine.quant.config import QuantConfig


def _db(signal: float | np.ndarray, noise: float | np.ndarray) -> float | np.ndarray:
    """10 log10(signal / noise), inf where noise is 0 (-inf for a zero signal with noise)."""
    s, n = np.asarray(signal, np.float64), np.asarray(noise, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(n > 0, 10 * np.log10(s / n), np.inf)
    return out.item() if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class ClipRound:
    """Sums of one layer, or arrays (C,) of its channels: values, clipped values, signal
    (sum w^2), clipping and rounding squared error."""

    count: int | np.ndarray
    clipped: int | np.ndarray
    signal: float | np.ndarray
    clip_noise: float | np.ndarray
    round_noise: float | np.ndarray

    @property
    def clipped_fraction(self):
        return np.asarray(self.clipped) / np.maximum(self.count, 1)

    @property
    def mse(self):
        return (np.asarray(self.clip_noise) + self.round_noise) / np.maximum(self.count, 1)

    @property
    def clip_mse(self):
        return np.asarray(self.clip_noise) / np.maximum(self.count, 1)

    @property
    def round_mse(self):
        return np.asarray(self.round_noise) / np.maximum(self.count, 1)

    @property
    def sqnr_db(self):
        return _db(self.signal, np.asarray(self.clip_noise) + self.round_noise)

    @property
    def clip_db(self):
        return _db(self.signal, self.clip_noise)

    @property
    def round_db(self):
        return _db(self.signal, self.round_noise)


@dataclass(frozen=True, eq=False)
class LayerClipping:
    """Clipping vs rounding of one quantized layer: ``total`` and ``channels`` (arrays (C,))."""

    layer: str
    bits: int
    total: ClipRound
    channels: ClipRound

    def channel(self, k: int) -> ClipRound:
        c = self.channels
        return ClipRound(*(np.asarray(getattr(c, f))[k].item() for f in
                           ("count", "clipped", "signal", "clip_noise", "round_noise")))  # fmt: skip


def _end_levels(plan: TensorPlan) -> tuple[np.ndarray, np.ndarray]:
    """The grid's lowest and highest level (scalars or (C,) on the last axis), widened by
    1e-9 of their magnitude: a range end computed in float64 (e.g. 15 * (max|w| / 15)) may
    miss the weight it came from by an ulp, which is not clipping."""
    lo, hi = np.asarray(plan.grid.min_level), np.asarray(plan.grid.max_level)
    slack = 1e-9 * np.maximum(np.abs(lo), np.abs(hi))
    return lo - slack, hi + slack


def _channel_sums(plan: TensorPlan, quantized: np.ndarray) -> np.ndarray:
    """(5, C) per output channel: count, clipped, signal, clipping and rounding error."""
    v = plan.values.astype(np.float64).reshape(-1, plan.values.shape[-1] if plan.values.ndim else 1)
    q = np.asarray(quantized, np.float64).reshape(v.shape)
    lo, hi = _end_levels(plan)
    clipped = (v < lo) | (v > hi)
    err2 = (v - q) ** 2
    return np.stack([
        np.full(v.shape[1], v.shape[0], np.float64),
        clipped.sum(axis=0),
        (v * v).sum(axis=0),
        np.where(clipped, err2, 0.0).sum(axis=0),
        np.where(clipped, 0.0, err2).sum(axis=0),
    ])  # fmt: skip


def _clip_round(sums: np.ndarray) -> ClipRound:
    count, clipped = sums[0].astype(np.int64), sums[1].astype(np.int64)
    return ClipRound(count, clipped, sums[2], sums[3], sums[4])


def clipping_report(
    weights: Mapping[str, np.ndarray],
    config: QuantConfig,
    quantized: Mapping[str, np.ndarray] | None = None,
    order: Sequence[str] | None = None,
) -> list[LayerClipping]:
    """Clipping vs rounding of every quantized layer.

    quantized: ``quantize_weights(weights, config)`` when already computed.
    order: layer names in the order wanted (e.g. forward order); default the weights' order.
    """
    plans = plan_quantization(weights, config)
    quantized = quantize_weights(weights, config) if quantized is None else quantized
    layers: dict[str, list[TensorPlan]] = {}
    for plan in plans.values():
        layers.setdefault(plan.layer, []).append(plan)
    rank = {name: i for i, name in enumerate(order or ())}
    out = []
    for layer, parts in sorted(layers.items(), key=lambda kv: rank.get(kv[0], len(rank))):
        sums = sum(_channel_sums(p, quantized[p.name]) for p in parts)
        total = _clip_round(sums.sum(axis=1, keepdims=True))
        total = ClipRound(*(np.asarray(getattr(total, f)).item() for f in
                            ("count", "clipped", "signal", "clip_noise", "round_noise")))  # fmt: skip
        out.append(LayerClipping(layer, parts[0].bits, total, _clip_round(sums)))
    return out


@dataclass(frozen=True, eq=False)
class ChannelGrid:
    """One output channel of a layer's kernel: its float and quantized weights and its grid.

    values / quantized: (N,) the kernel's weights of the channel; levels: (L,) the
    levels of that channel's grid (the layer's grid when it is not per channel).
    """

    layer: str
    channel: int
    values: np.ndarray
    quantized: np.ndarray
    levels: np.ndarray


def channel_grid(
    weights: Mapping[str, np.ndarray],
    config: QuantConfig,
    layer: str,
    channel: int,
    quantized: Mapping[str, np.ndarray] | None = None,
) -> ChannelGrid:
    """The weights and grid levels of one output channel of ``layer``'s kernel (the desktop
    tool's channel picker); quantized: ``quantize_weights(weights, config)`` when already
    computed.  Raises InputError for a float layer or a channel out of range."""
    name = f"{layer}/kernels"
    plan = plan_quantization(weights, config).get(name)
    if plan is None:
        raise InputError(f"layer {layer} is not quantized under this configuration")
    n = plan.values.shape[-1]
    if not 0 <= channel < n:
        raise InputError(f"layer {layer} has {n} output channels; channel {channel} is not one")
    grid = plan.grid.take_channels(np.array([channel])) if plan.grid.per_channel else plan.grid
    levels = np.asarray(grid.levels, np.float64).reshape(-1)
    q = (quantize_weights(weights, config) if quantized is None else quantized)[name]
    return ChannelGrid(layer, channel, plan.values[..., channel].ravel().copy(),
                       np.asarray(q)[..., channel].ravel().copy(), levels)  # fmt: skip


def format_clipping_table(rows: list[LayerClipping]) -> str:
    """The per-layer table: bits, clipped share, SQNR and its clipping and rounding parts."""
    lines = [
        "Clipping vs rounding per quantized layer (dB = 10 log10(signal / error); "
        "inf: none of that error)",
        f"{'layer':<20}{'bits':>5}{'clipped':>10}{'SQNR dB':>9}{'clip dB':>9}{'round dB':>9}"
        f"{'clip MSE':>11}{'round MSE':>11}",
    ]
    for r in rows:
        t = r.total
        lines.append(
            f"{r.layer:<20}{r.bits:>5}{float(t.clipped_fraction):>10.3%}{_cell(t.sqnr_db)}"
            f"{_cell(t.clip_db)}{_cell(t.round_db)}{float(t.clip_mse):>11.3g}{float(t.round_mse):>11.3g}"
        )
    return "\n".join(lines)


CSV_HEADER = ("layer", "channel", "bits", "count", "clipped", "clipped_fraction", "mse",
              "clip_mse", "round_mse", "sqnr_db", "clip_db", "round_db")  # fmt: skip


def _csv_row(layer: str, channel: str, bits: int, part: ClipRound) -> list:
    values = (part.count, part.clipped, part.clipped_fraction, part.mse, part.clip_mse,
              part.round_mse, part.sqnr_db, part.clip_db, part.round_db)  # fmt: skip
    return [layer, channel, bits, *(repr(np.asarray(v).item()) for v in values)]


def write_clipping_csv(path: str | Path, rows: list[LayerClipping]) -> Path:
    """CSV of CSV_HEADER: per layer one row with channel "all", then one per channel."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for r in rows:
            writer.writerow(_csv_row(r.layer, "all", r.bits, r.total))
            for k in range(len(np.atleast_1d(r.channels.count))):
                writer.writerow(_csv_row(r.layer, str(k), r.bits, r.channel(k)))
    return path


def _cell(db: float) -> str:
    return f"{'inf':>9}" if math.isinf(db) and db > 0 else f"{db:>9.1f}"
