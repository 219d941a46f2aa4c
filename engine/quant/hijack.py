"""Range hijacks: one tensor stretching a shared quantization range far beyond the rest.

Tensors in one range unit (every quantized tensor under ``scale="global"``, a
conv/fire group, a layer's kernel and bias, or one output channel and its bias)
share one grid, so a few large values anywhere in the unit coarsen the step for
all of it.  On the real KITTI checkpoint ``fire8/squeeze1x1/biases`` reaches
+7.12 while every other quantized tensor stays within [-1.30, +1.59]: the 8-bit
global step becomes 0.033 instead of 0.011, and mAP falls from 0.51 to 0.0003.

The rule (:func:`find_range_hijacks`): within a range unit, take out the tensor
(or, per channel, the bias element) that holds the unit's minimum or maximum; when
the grid of the remaining tensors would have a step at most ``1/factor`` of the
unit's step (``factor`` = :data:`HIJACK_FACTOR` = 2: every other tensor loses at
least one bit of resolution) and that tensor holds less than half of the unit's
values (it is not the bulk that rightly sets the range), it *hijacks* the range.
:func:`range_hijack_warnings` turns the findings into the one-line hints the CLI
prints and the GUI shows, with the remedies that remove or confine them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.quant.config import QuantConfig
from squeezelens.engine.quant.scales import RangeStats, make_grid, range_unit, split_param_name

HIJACK_FACTOR = 2.0
REMEDIES = (  # (label, command-line flags, config changes)
    ("float biases", "--quantize-biases off", {"quantize_biases": False}),
    ("per-channel scale", "--scale channel", {"scale": "channel"}),
    ("per-layer scale", "--scale layer", {"scale": "layer"}),
)


@dataclass(frozen=True, eq=False)
class TensorRange:
    """Min and max of one parameter tensor, overall and per output channel (last axis)."""

    name: str
    lo: float
    hi: float
    size: int
    channel_lo: np.ndarray  # (C,)
    channel_hi: np.ndarray  # (C,)

    @staticmethod
    def of(name: str, values: np.ndarray) -> TensorRange:
        flat = np.asarray(values, dtype=np.float64)
        flat = flat.reshape(-1, flat.shape[-1]) if flat.ndim else flat.reshape(1, 1)
        lo, hi = flat.min(axis=0), flat.max(axis=0)
        return TensorRange(name, float(lo.min()), float(hi.max()), int(flat.size), lo, hi)


def tensor_ranges(weights: Mapping[str, np.ndarray]) -> dict[str, TensorRange]:
    """The ranges of every non-empty parameter tensor (``.../kernels``, ``.../biases``)."""
    return {
        name: TensorRange.of(name, value)
        for name, value in weights.items()
        if split_param_name(name) is not None and np.size(value)
    }


@dataclass(frozen=True)
class RangeHijack:
    """A tensor whose values stretch its range unit's step ``ratio`` times.

    ``next_tensor`` is the widest of the other tensors in the unit (per channel: the
    channel's kernel).  ``channel`` is the worst channel of a per-channel hijack and
    ``channels`` how many of the tensor's channels are hijacked (0 for whole tensors).
    """

    tensor: str
    unit: str
    bits: int
    lo: float
    hi: float
    next_tensor: str
    next_lo: float
    next_hi: float
    step: float
    step_without: float
    channel: int | None = None
    channels: int = 0

    @property
    def layer(self) -> str:
        return self.tensor.rpartition("/")[0]

    @property
    def ratio(self) -> float:
        return self.step / self.step_without if self.step_without > 0 else float("inf")

    def describe(self) -> str:
        """'fire8/squeeze1x1/biases reaches +7.12 and stretches the 8-bit global grid 2.9x: …'."""
        peak = self.hi if abs(self.hi) >= abs(self.lo) else self.lo
        if self.channel is not None:
            many = f", {self.channels} channels like it" if self.channels > 1 else ""
            who, grid = f"{self.tensor} (channel {self.channel}{many})", "the grid of its channel"
            rest = f"{self.next_tensor} of that channel"
        else:
            who, rest = self.tensor, f"every other tensor (widest: {self.next_tensor}"
            grid = {"global": "the global grid", self.layer: f"the grid of layer {self.layer}"}.get(
                self.unit, f"the grid of the {self.unit!r} group"
            )
        bounds = f"[{self.next_lo:+.2f}, {self.next_hi:+.2f}]"
        rest += f", {bounds})" if self.channel is None else f" {bounds}"
        return (
            f"{who} reaches {peak:+.2f} and stretches {grid} {self.ratio:.1f}x: the {self.bits}-bit "
            f"step is {self.step:.2g} where {rest} needs {self.step_without:.2g}"
        )


@dataclass
class _Member:
    name: str
    stats: RangeStats
    size: int
    bits: int


def _units(ranges: Mapping[str, TensorRange], config: QuantConfig) -> dict[str, list[_Member]]:
    """The quantized tensors of each range unit (whole tensors; channel units are per layer)."""
    units: dict[str, list[_Member]] = {}
    per_channel = config.scale == "channel"
    for name, r in ranges.items():
        layer, kind = split_param_name(name) or ("", "")
        bits = config.layer_bits(layer, is_bias=kind == "biases")
        if bits is None:
            continue
        lo, hi = (r.channel_lo, r.channel_hi) if per_channel else (r.lo, r.hi)
        stats = RangeStats(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
        units.setdefault(range_unit(layer, config.scale), []).append(
            _Member(name, stats, r.size, bits)
        )
    return units


def _merged(members: list[_Member]) -> RangeStats:
    lo = np.min([m.stats.lo for m in members], axis=0)
    hi = np.max([m.stats.hi for m in members], axis=0)
    return RangeStats(lo, hi)


def _step(config: QuantConfig, bits: int, stats: RangeStats) -> np.ndarray:
    return np.asarray(make_grid(config, bits, stats).step, dtype=np.float64)


def _unit_hijack(
    unit: str, members: list[_Member], config: QuantConfig, factor: float
) -> RangeHijack | None:
    """The worst hijacker of one whole-tensor unit, if any."""
    if len(members) < 2:
        return None
    full, total = _merged(members), sum(m.size for m in members)
    best: RangeHijack | None = None
    for m in members:
        ends = m.stats.lo <= full.lo or m.stats.hi >= full.hi
        if not ends or 2 * m.size >= total:
            continue
        rest = [o for o in members if o is not m]
        step, without = _step(config, m.bits, full), _step(config, m.bits, _merged(rest))
        if float(step) < factor * float(without):
            continue
        widest = max(rest, key=lambda o: float(o.stats.hi - o.stats.lo))
        found = RangeHijack(m.name, unit, m.bits, float(m.stats.lo), float(m.stats.hi),
                            widest.name, float(widest.stats.lo), float(widest.stats.hi),
                            float(step), float(without))  # fmt: skip
        if best is None or found.ratio > best.ratio:
            best = found
    return best


def _channel_hijack(
    unit: str, members: list[_Member], config: QuantConfig, factor: float
) -> RangeHijack | None:
    """Per channel: a bias element stretching its channel's grid beyond the kernel's."""
    kernel = next((m for m in members if m.name.endswith("/kernels")), None)
    bias = next((m for m in members if m.name.endswith("/biases")), None)
    if kernel is None or bias is None or kernel.stats.lo.shape != bias.stats.lo.shape:
        return None
    step = _step(config, bias.bits, _merged([kernel, bias]))
    without = _step(config, bias.bits, kernel.stats)
    hit = (without > 0) & (step >= factor * without)
    if not hit.any():
        return None
    ratio = np.where(hit, step / np.where(without > 0, without, 1.0), 0.0)
    c = int(ratio.argmax())
    return RangeHijack(bias.name, unit, bias.bits, float(bias.stats.lo[c]), float(bias.stats.hi[c]),
                       kernel.name, float(kernel.stats.lo[c]), float(kernel.stats.hi[c]),
                       float(step[c]), float(without[c]), c, int(hit.sum()))  # fmt: skip


def find_range_hijacks(
    ranges: Mapping[str, TensorRange], config: QuantConfig | None, factor: float = HIJACK_FACTOR
) -> tuple[RangeHijack, ...]:
    """Every range unit of ``config`` whose step one small tensor stretches ``factor``
    times or more (see the module docstring), worst first; () for the float model."""
    if config is None:
        return ()
    check = _channel_hijack if config.scale == "channel" else _unit_hijack
    found = [check(unit, members, config, factor)
             for unit, members in _units(ranges, config).items()]  # fmt: skip
    return tuple(sorted((h for h in found if h is not None), key=lambda h: -h.ratio))


def hijack_remedies(
    ranges: Mapping[str, TensorRange], config: QuantConfig, hijack: RangeHijack,
    factor: float = HIJACK_FACTOR,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """(remedies that remove ``hijack``, remedies that keep it inside its own layer), each
    as 'label (flags)'; a remedy the config already uses is not offered."""
    removes, confines = [], []
    for label, flags, changes in REMEDIES:
        if all(getattr(config, k) == v for k, v in changes.items()):
            continue
        after = find_range_hijacks(ranges, config.replace(**changes), factor)
        same = [h for h in after if h.tensor == hijack.tensor]
        if not same:
            removes.append(f"{label} ({flags})")
        elif hijack.unit != hijack.layer and all(h.unit == h.layer for h in same):
            confines.append(f"{label} ({flags})")
    return removes, confines


def hijack_warning(
    ranges: Mapping[str, TensorRange], config: QuantConfig, hijack: RangeHijack,
    factor: float = HIJACK_FACTOR,
) -> str:  # fmt: skip
    """One line: what the hijack does and which remedies remove or confine it."""
    removes, confines = hijack_remedies(ranges, config, hijack, factor)
    text = f"range hijacked: {hijack.describe()}."
    if removes:
        text += f" Removed by {' or '.join(removes)}."
    if confines:
        text += f" Kept inside {hijack.layer} by {' or '.join(confines)}."
    return text


def range_hijack_warnings(
    ranges: Mapping[str, TensorRange], config: QuantConfig | None, factor: float = HIJACK_FACTOR
) -> list[str]:
    """The warnings of every hijack of ``config`` (none for the float model), worst first.
    One function for the CLI (stderr) and the GUI (the window's hint)."""
    return [hijack_warning(ranges, config, h, factor)
            for h in find_range_hijacks(ranges, config, factor)]  # fmt: skip
