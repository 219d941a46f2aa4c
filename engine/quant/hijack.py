"""Range hijacks: one tensor stretching a shared quantization range far beyond what the rest needs.

Tensors that share a range unit (see :mod:`engine.quant.scales`: the whole model under
``global``, the conv or the fire layers under ``groups``, a layer's kernel and bias under
``layer``) share one grid: its step is fixed by the widest value any of them holds.  One tensor with a few large values (typically a bias vector,
on the kernels' grid since the low-precision fork) then coarsens the grid of every
weight it shares the range with.

**The rule.**  A quantized tensor T *hijacks* its range unit U at ``b`` bits when all
three hold, where "the rest" are U's other tensors quantized at ``b`` bits:

1. T alone widens the grid: U's ``b``-bit step is at least :data:`MIN_STRETCH` (2) times
   the step U would have without T (T costs the rest at least one bit);
2. the widened step is coarse for the rest: the median magnitude ``median |w|`` of the
   rest's values is below :data:`COARSE_STEPS` (4) steps;
3. the rest is a sizable part of the model: it holds at least :data:`MIN_SHARE` (5 %)
   of all the values the config quantizes.

The steps are those of the real grids (:func:`engine.quant.scales.make_grid`, so the
``range`` and ``grid`` settings count).  A unit with one tensor, or whose rest is all
zeros, has nothing to hijack.  Under ``channel`` scale no range is shared by tensors (one
holds an output channel's kernel slice and bias value) and the rule does not apply.

Measured on the KITTI checkpoint used in the tests (mAP R11 on 50 val frames, float
0.507): at 8 bits ``global``, ``fire8/squeeze1x1/biases`` (+7.12, the rest within
[-1.30, +1.59]) stretches the step 2.9x to 0.033 for weights of median magnitude 0.0125:
mAP 0.0003.  Float biases give 0.442, per-layer ranges 0.491 (the bias still stretches
its own layer's grid, but that layer is 1.5 % of the model: condition 3), per-channel
ranges 0.501.  At 10 bits the hijacked grid still gives 0.214, at 11 bits (3 steps per
typical weight) 0.498 against 0.510 with float biases, at 12 bits no loss: condition 2.
On the bundled model at 8 bits, ``conv12/biases`` hijacks the ``conv`` group and the
``conv12`` layer range (mAP 0.669 / 0.662 against 0.788 / 0.796 with float biases, float
0.803); under ``channel`` scale the same biases cost nothing (0.802 vs 0.803).

Each :class:`Hijack` lists :class:`Remedy` configs (per-channel or per-layer ranges,
float biases, the layer in float), each re-checked with this very rule.

:func:`hijack_warnings` is what the clients show: one :class:`HijackWarning` per tensor
and range unit over several configs (a sweep's widths, or the GUI's configs A and B),
its text the line the CLI prints on stderr and the GUI's hint shows above the canvas.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce

import numpy as np

from squeezelens.engine.quant.apply import TensorPlan, range_members
from squeezelens.engine.quant.config import FLOAT, QuantConfig
from squeezelens.engine.quant.scales import RangeStats, make_grid

MIN_STRETCH = 2.0
COARSE_STEPS = 4.0
MIN_SHARE = 0.05


@dataclass(frozen=True)
class Remedy:
    """A change of the config that may undo a hijack.

    description: a few words ("per-layer ranges"); config: the changed config;
    flags: the command-line flags that make the change (``("--scale", "layer")``);
    clears: whether the tensor no longer hijacks any range under ``config``.
    """

    description: str
    config: QuantConfig
    flags: tuple[str, ...]
    clears: bool


@dataclass(frozen=True)
class Hijack:
    """One tensor that hijacks the range it shares (see the module docstring for the rule).

    tensor: official tensor name; unit: its range unit ("global", "fire", a layer name);
    bits: the bits of the grid it coarsens.  tensor_range / rest_range: (min, max) of the
    tensor and of the rest of its unit.  step / step_without: that grid's step with and
    without the tensor; typical_magnitude: the rest's median ``|w|``.  affected: how many
    values the rest holds; share: their fraction of all the values the config quantizes.
    remedies: config changes, each re-checked with the rule (``Remedy.clears``).
    """

    tensor: str
    unit: str
    bits: int
    tensor_range: tuple[float, float]
    rest_range: tuple[float, float]
    step: float
    step_without: float
    typical_magnitude: float
    affected: int
    share: float
    remedies: tuple[Remedy, ...] = ()

    @property
    def stretch(self) -> float:
        """How many times wider the step is because of the tensor."""
        return self.step / self.step_without

    @property
    def layer(self) -> str:
        return self.tensor.rpartition("/")[0]

    def describe(self) -> str:
        """One line: what stretches which range, how much, and what fixes it."""
        (lo, hi), (rest_lo, rest_hi) = self.tensor_range, self.rest_range
        text = (f"{self.tensor} hijacks the {self.unit} range: it spans [{lo:+.3g}, {hi:+.3g}], "
                f"the rest [{rest_lo:+.3g}, {rest_hi:+.3g}], so the {self.bits}-bit step is "
                f"{self.step:.3g} ({self.stretch:.1f}x the {self.step_without:.3g} it would be) "
                f"for {self.affected:,} weights ({self.share:.0%} of the quantized values) of "
                f"median magnitude {self.typical_magnitude:.3g}")  # fmt: skip
        fixes = [f"{r.description} ({' '.join(r.flags)})" for r in self.remedies if r.clears]
        return text + (f"; remedies: {', '.join(fixes)}" if fixes else "")

    def summary(self) -> str:
        """A shorter line for a window's hint (:meth:`describe` holds every number and the
        remedies' flags): the tensor and its extreme value, the step, the remedies by name."""
        lo, hi = self.tensor_range
        peak = hi if abs(hi) >= abs(lo) else lo
        text = (f"{self.tensor} (reaching {peak:+.3g}) stretches the {self.unit} range: the "
                f"{self.bits}-bit step is {self.step:.2g}, {self.stretch:.1f}x what the rest "
                f"needs, for weights of median magnitude {self.typical_magnitude:.2g}")  # fmt: skip
        fixes = [r.description for r in self.remedies if r.clears]
        return text + (f". Remedies: {', '.join(fixes)}" if fixes else "")


def find_range_hijacks(
    weights: Mapping[str, np.ndarray], config: QuantConfig, remedies: bool = True
) -> list[Hijack]:
    """The hijacks of ``config`` on ``weights`` (official names), largest stretch first.

    remedies: also list the remedies of each hijack, re-checked with the rule.
    Raises InputError for what :func:`engine.quant.plan_quantization` refuses.
    """
    if config.scale == "channel":
        return []
    units: dict[str, list[_Member]] = {}
    for member in _members(weights, config):
        units.setdefault(member.plan.unit, []).append(member)
    total = sum(m.plan.values.size for group in units.values() for m in group)
    found = []
    for group in units.values():
        for member in group:
            rest = [m for m in group if m is not member]
            hijack = _hijack(member, rest, config, total) if rest else None
            if hijack is not None:
                found.append(hijack)
    found.sort(key=lambda h: (-h.stretch, h.tensor))
    if remedies:
        found = [_with_remedies(h, weights, config) for h in found]
    return found


@dataclass(frozen=True)
class _Member:
    """A tensor taking part in a range, with its min and max."""

    plan: TensorPlan
    stats: RangeStats


def _members(weights: Mapping[str, np.ndarray], config: QuantConfig) -> list[_Member]:
    """Every tensor taking part in a range (as in plan_quantization), with its stats."""
    plans = range_members(weights, config)
    return [_Member(p, RangeStats.of(p.name, p.values, per_channel=False)) for p in plans]


def _hijack(member: _Member, rest: list[_Member], config: QuantConfig, total: int) -> Hijack | None:
    """The hijack ``member`` commits on its unit (the coarsest of its rest's bit widths), or None."""
    unit = member.plan.unit
    without = reduce(lambda a, b: a.merge(b, unit), (m.stats for m in rest))
    if max(-without.lo, without.hi) <= 0:  # a rest of zeros has nothing to lose
        return None
    with_it = without.merge(member.stats, unit)
    found = []
    for bits in sorted({m.plan.bits for m in rest}):
        step = float(make_grid(config, bits, with_it).step)
        step_without = float(make_grid(config, bits, without).step)
        victims = [m.plan.values for m in rest if m.plan.bits == bits]
        affected = sum(v.size for v in victims)
        if step < MIN_STRETCH * step_without or affected < MIN_SHARE * total:
            continue
        typical = float(np.median(np.abs(np.concatenate([v.ravel() for v in victims]))))
        if typical < COARSE_STEPS * step:
            found.append(Hijack(
                member.plan.name, unit, bits,
                (float(member.stats.lo), float(member.stats.hi)),
                (float(without.lo), float(without.hi)),
                step, step_without, typical, affected, affected / total,
            ))  # fmt: skip
    return max(found, key=lambda h: h.step / max(h.typical_magnitude, 1e-300), default=None)


def _remedy_configs(hijack: Hijack, config: QuantConfig) -> list[tuple[str, QuantConfig]]:
    """The candidate remedies of a hijack under ``config`` (each a changed config)."""
    out = [("per-channel ranges", config.replace(scale="channel"))]
    if config.scale in ("global", "groups"):
        out.append(("per-layer ranges", config.replace(scale="layer")))
    if hijack.tensor.endswith("/biases") and config.quantize_biases:
        out.append(("float biases", config.replace(quantize_biases=False)))
    overrides = {**dict(config.overrides), hijack.layer: FLOAT}
    out.append((f"{hijack.layer} in float", config.replace(overrides=tuple(overrides.items()))))
    return out


def _flag_changes(before: QuantConfig, after: QuantConfig) -> tuple[str, ...]:
    """The command-line flags (as ``to_cli_args`` writes them) that differ between two configs."""
    old, new = before.to_cli_args(), after.to_cli_args()
    old_values = dict(zip(old[::2], old[1::2]))
    changed: list[str] = []
    for flag, value in zip(new[::2], new[1::2]):
        if old_values.get(flag) != value:
            changed += [flag, value]
    return tuple(changed)


def _with_remedies(
    hijack: Hijack, weights: Mapping[str, np.ndarray], config: QuantConfig
) -> Hijack:
    remedies = []
    for description, changed in _remedy_configs(hijack, config):
        left = find_range_hijacks(weights, changed, remedies=False)
        clears = not any(h.tensor == hijack.tensor for h in left)
        remedies.append(Remedy(description, changed, _flag_changes(config, changed), clears))
    return dataclasses.replace(hijack, remedies=tuple(remedies))


@dataclass(frozen=True)
class HijackWarning:
    """One tensor hijacking one range unit under some of the configs checked together.

    hijack: the finding (with its remedies) under the first config that has it;
    bits: every width it hijacks at among those configs (a sweep's widths).
    """

    hijack: Hijack
    bits: tuple[int, ...]

    @property
    def layer(self) -> str:
        return self.hijack.layer

    def text(self) -> str:
        """:meth:`Hijack.describe`, plus the widths when more than one config has it."""
        also = (
            f" (at {', '.join(map(str, self.bits))} bits in this run)" if len(self.bits) > 1 else ""
        )
        return self.hijack.describe() + also


def _range_config(config: QuantConfig) -> QuantConfig:
    """``config`` with the fields that change no range or step at their defaults (so a
    sweep's rounding x zero x seed points are checked once per distinct grid)."""
    return config.replace(rounding="nearest", seed=0, reserve_zero=False, activation_bits=None)


def hijack_warnings(
    weights: Mapping[str, np.ndarray], configs: Iterable[QuantConfig | None]
) -> list[HijackWarning]:
    """The hijacks of any of ``configs`` (None entries, float models, are skipped), one per
    tensor and range unit, in the order first found (each config's largest stretch first)."""
    distinct = list(dict.fromkeys(_range_config(c) for c in configs if c is not None))
    found: dict[tuple[str, str], list[tuple[QuantConfig, Hijack]]] = {}
    for config in distinct:
        for hijack in find_range_hijacks(weights, config, remedies=False):
            found.setdefault((hijack.tensor, hijack.unit), []).append((config, hijack))
    out = []
    for pairs in found.values():
        config, first = pairs[0]
        full = _with_remedies(first, weights, config)
        out.append(HijackWarning(full, tuple(sorted({h.bits for _, h in pairs}))))
    return out
