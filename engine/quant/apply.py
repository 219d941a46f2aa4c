"""Quantize a SqueezeDet weight dict: plan the grids, then round every tensor.

``weights`` maps TF1 tensor names (``conv1/kernels`` HWIO, ``conv1/biases``,
``fire2/squeeze1x1/kernels``, ...) to arrays.  A *layer* is the name before the
last ``/``.  Only ``.../kernels`` and ``.../biases`` are parameters; anything
else (optimizer slots, ``global_step``) is returned untouched, as are the
tensors that stay float (conv1 unless ``quantize_first_layer``, biases unless
``quantize_biases``, layers overridden to "float").  Float tensors take no part
in any range.  A :class:`~engine.quant.config.PartialConfig` rounds only some
layers, on the grids the full config gives them.

Planning reads every quantized tensor once for its min and max, then builds
one grid per (range unit, bits).  Rounding runs per tensor on a small thread
pool (numpy releases the GIL), largest tensors first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.quant.config import QuantConfig
from engine.quant.grids import UniformGrid
from engine.quant.report import TensorQuantInfo, info_of
from engine.quant.rounding import draw_generator, prepare, round_tensor
from engine.quant.scales import RangeStats, make_grid, range_unit, split_param_name

_WORKERS = max(1, min(4, os.cpu_count() or 1))
_BUNDLE = 1 << 17
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class TensorPlan:
    """How one quantized tensor is rounded: its float32 values, layer, unit and grid."""

    name: str
    layer: str
    values: np.ndarray
    unit: str
    bits: int
    grid: UniformGrid | None = None


def _as_float32(name: str, value: object) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise InputError(f"tensor {name} is not floating point (dtype {arr.dtype})")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_overrides(weights: Mapping[str, object], config: QuantConfig) -> None:
    layers = {p[0] for p in map(split_param_name, weights) if p is not None}
    named = [layer for layer, _ in config.overrides] + list(getattr(config, "rounded", ()))
    unknown = sorted({layer for layer in named if layer not in layers})
    if unknown:
        raise InputError(
            f"unknown layer(s) in layer bits: {', '.join(unknown)} (layers: {', '.join(sorted(layers))})"
        )


def plan_quantization(
    weights: Mapping[str, np.ndarray], config: QuantConfig
) -> dict[str, TensorPlan]:
    """Plans of the tensors to quantize, by name (float and non-parameter tensors absent).

    Every tensor the config quantizes takes part in its unit's range; only the
    layers the config ``rounds`` (all, unless it is a :class:`PartialConfig`)
    get a plan.
    """
    _check_overrides(weights, config)
    per_channel = config.scale == "channel"
    plans: list[TensorPlan] = []
    stats: dict[str, RangeStats] = {}
    for name, value in weights.items():
        parsed = split_param_name(name)
        if parsed is None:
            continue
        layer, kind = parsed
        bits = config.layer_bits(layer, is_bias=kind == "biases")
        if bits is None:
            continue
        values = _as_float32(name, value)
        unit = range_unit(layer, config.scale)
        tensor_stats = RangeStats.of(name, values, per_channel)
        stats[unit] = stats[unit].merge(tensor_stats, unit) if unit in stats else tensor_stats
        plans.append(TensorPlan(name, layer, values, unit, bits))
    grids: dict[tuple[str, int], UniformGrid] = {}
    result: dict[str, TensorPlan] = {}
    for plan in (p for p in plans if config.rounds(p.layer)):
        key = (plan.unit, plan.bits)
        if key not in grids:
            grids[key] = make_grid(config, plan.bits, stats[plan.unit])
        result[plan.name] = TensorPlan(
            plan.name, plan.layer, plan.values, plan.unit, plan.bits, grids[key]
        )
    return result


def _round_plan(plan: TensorPlan, config: QuantConfig) -> np.ndarray:
    """Values were checked finite by planning; draws as :func:`uniform_draws` gives them."""
    if config.rounding == "nearest":
        return round_tensor(plan.values, plan.grid, None)
    return round_tensor(plan.values, plan.grid, draw_generator(config.seed, plan.name))


def _bundles(plans: list[TensorPlan]) -> list[list[TensorPlan]]:
    """Largest first; small tensors bundled to about _BUNDLE elements per task."""
    bundles: list[list[TensorPlan]] = []
    size = _BUNDLE
    for plan in sorted(plans, key=lambda p: -p.values.size):
        if size >= _BUNDLE:
            bundles.append([])
            size = 0
        bundles[-1].append(plan)
        size += plan.values.size
    return bundles


def _run(tasks: list[Callable[[], dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Run the tasks on the shared pool (inline when there is one core or one task)."""
    global _pool
    if _WORKERS == 1 or len(tasks) < 2:
        parts = [task() for task in tasks]
    else:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="quant")
        parts = list(_pool.map(lambda task: task(), tasks))
    return {name: out for part in parts for name, out in part.items()}


def quantize_weights(
    weights: Mapping[str, np.ndarray], config: QuantConfig
) -> dict[str, np.ndarray]:
    """Quantized copy of ``weights``: same keys and order, float32 values on the grids.

    Tensors that stay float (and non-parameter entries) are the input objects
    themselves.  Deterministic: stochastic draws depend only on seed and name.
    """
    plans = plan_quantization(weights, config)
    for grid in {id(p.grid): p.grid for p in plans.values()}.values():
        prepare(grid, stochastic=config.rounding == "stochastic")

    def task(bundle: list[TensorPlan]) -> Callable[[], dict[str, np.ndarray]]:
        return lambda: {p.name: _round_plan(p, config) for p in bundle}

    done = _run([task(bundle) for bundle in _bundles(list(plans.values()))])
    return {name: done.get(name, value) for name, value in weights.items()}


def quantization_report(
    weights: Mapping[str, np.ndarray], config: QuantConfig
) -> dict[str, TensorQuantInfo]:
    """Per parameter tensor (quantized or not): its range, step, levels and zero / fl."""
    plans = plan_quantization(weights, config)
    report: dict[str, TensorQuantInfo] = {}
    for name, value in weights.items():
        parsed = split_param_name(name)
        if parsed is not None:
            report[name] = info_of(name, parsed[0], np.asarray(value), plans.get(name))
    return report
