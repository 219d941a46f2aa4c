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
one grid per (range unit, bits) and its rounder (level table and kernel
parameters; several at once on the thread pool).  Rounding runs on a small
thread pool (the compiled kernels and numpy release the GIL) in runs of at
most about ``_PIECE`` elements, largest first: a big tensor is shared out
between the workers, its stochastic draws taken from the same per-tensor
stream, jumped ahead to each run's first element, so the result does not
depend on how the work is split.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.arith import arith_rounder
from squeezelens.engine.quant.config import QuantConfig
from squeezelens.engine.quant.grids import UniformGrid
from squeezelens.engine.quant.report import TensorQuantInfo, info_of
from squeezelens.engine.quant.rounding import aligned_empty, draw_generator, round_into
from squeezelens.engine.quant.scales import RangeStats, make_grid, range_unit, split_param_name

_WORKERS = max(1, min(4, os.cpu_count() or 1))
_BUNDLE = 1 << 17
_PIECE = 1 << 17
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


def _tensor_stats(plans: list[TensorPlan], per_channel: bool) -> list[RangeStats | InputError]:
    """Each plan's :meth:`RangeStats.of` (or the InputError it raised), read on the pool
    in about _BUNDLE-element tasks; errors are raised by the caller in tensor order."""

    def of(plan: TensorPlan) -> RangeStats | InputError:
        try:
            return RangeStats.of(plan.name, plan.values, per_channel)
        except InputError as exc:
            return exc

    groups: list[list[int]] = [[]]
    size = 0
    for i, plan in enumerate(plans):
        if size >= _BUNDLE:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += plan.values.size

    def task(group: list[int]) -> Callable[[], list[RangeStats | InputError]]:
        return lambda: [of(plans[i]) for i in group]

    return [one for part in _run([task(g) for g in groups]) for one in part]


def _tensors_to_quantize(
    weights: Mapping[str, np.ndarray], config: QuantConfig
) -> tuple[list[TensorPlan], InputError | None]:
    """Grid-less plans of every tensor the config quantizes, in order, and the error of
    the first tensor that is not floating point (raised after the range errors of the
    tensors before it)."""
    plans: list[TensorPlan] = []
    for name, value in weights.items():
        parsed = split_param_name(name)
        if parsed is None:
            continue
        layer, kind = parsed
        bits = config.layer_bits(layer, is_bias=kind == "biases")
        if bits is None:
            continue
        try:
            values = _as_float32(name, value)
        except InputError as exc:
            return plans, exc
        plans.append(TensorPlan(name, layer, values, range_unit(layer, config.scale), bits))
    return plans, None


def range_members(weights: Mapping[str, np.ndarray], config: QuantConfig) -> list[TensorPlan]:
    """Grid-less plans of every tensor the config quantizes, in order: the tensors that take
    part in the ranges (InputError for unknown override layers or a non-float tensor)."""
    _check_overrides(weights, config)
    plans, not_float = _tensors_to_quantize(weights, config)
    if not_float is not None:
        raise not_float
    return plans


def plan_quantization(
    weights: Mapping[str, np.ndarray], config: QuantConfig
) -> dict[str, TensorPlan]:
    """Plans of the tensors to quantize, by name (float and non-parameter tensors absent).

    Every tensor the config quantizes takes part in its unit's range; only the
    layers the config ``rounds`` (all, unless it is a :class:`PartialConfig`)
    get a plan.
    """
    _check_overrides(weights, config)
    plans, not_float = _tensors_to_quantize(weights, config)
    stats: dict[str, RangeStats] = {}
    for plan, tensor_stats in zip(
        plans, _tensor_stats(plans, config.scale == "channel"), strict=True
    ):
        if isinstance(tensor_stats, InputError):
            raise tensor_stats
        unit = plan.unit
        stats[unit] = stats[unit].merge(tensor_stats, unit) if unit in stats else tensor_stats
    if not_float is not None:
        raise not_float
    grids = _unit_grids(config, plans, stats)
    result: dict[str, TensorPlan] = {}
    for plan in (p for p in plans if config.rounds(p.layer)):
        key = (plan.unit, plan.bits)
        result[plan.name] = TensorPlan(
            plan.name, plan.layer, plan.values, plan.unit, plan.bits, grids[key]
        )
    return result


def _unit_grids(
    config: QuantConfig, plans: list[TensorPlan], stats: dict[str, RangeStats]
) -> dict[tuple[str, int], UniformGrid]:
    """The grid of each (range unit, bits) that a rounded tensor uses: from the unit's
    min and max, or searched (``mse``, ``percentile:P``: :mod:`engine.quant.remedies.ranges`)
    over every tensor of the unit at those bits (searches run on the pool)."""
    members: dict[tuple[str, int], list[np.ndarray]] = {}
    for plan in plans:
        members.setdefault((plan.unit, plan.bits), []).append(plan.values)
    keys = list(dict.fromkeys((p.unit, p.bits) for p in plans if config.rounds(p.layer)))
    if config.range in ("minmax", "symmetric"):
        return {key: make_grid(config, key[1], stats[key[0]]) for key in keys}
    from squeezelens.engine.quant.remedies.ranges import fitted_grid

    def task(key: tuple[str, int]) -> Callable[[], UniformGrid]:
        return lambda: fitted_grid(config, key[1], stats[key[0]], members[key])

    keys.sort(key=lambda k: -sum(v.size for v in members[k]))  # largest first
    return dict(zip(keys, _run([task(key) for key in keys]), strict=True))


@dataclass(frozen=True, eq=False)
class _Run:
    """Elements [start, stop) of one plan's flat tensor, rounded into ``out``;
    ``work``: the elements of all the plans on the same grid."""

    plan: TensorPlan
    out: np.ndarray
    start: int
    stop: int
    work: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def _channels(plan: TensorPlan) -> int:
    return plan.values.shape[-1] if plan.values.ndim else 1


def _runs(plan: TensorPlan, out: np.ndarray, work: int) -> list[_Run]:
    """The plan's tensor cut into runs of whole rows (an even number of elements),
    about _PIECE each."""
    row = _channels(plan) if plan.grid.per_channel else 1  # elements of a grid row
    step = 2 * row
    piece = max(step, _PIECE // step * step)
    size = plan.values.size
    return [
        _Run(plan, out, start, min(start + piece, size), work) for start in range(0, size, piece)
    ]


def _round_run(run: _Run, config: QuantConfig) -> None:
    """Round one run; draws as :func:`uniform_draws` gives them (the tensor's own stream)."""
    plan = run.plan
    draws = None
    if config.rounding == "stochastic":
        draws = draw_generator(config.seed, plan.name, run.start)
    flat_v, flat_out = plan.values.reshape(-1), run.out.reshape(-1)
    round_into(
        flat_v[run.start : run.stop],
        flat_out[run.start : run.stop],
        plan.grid,
        draws,
        _channels(plan),
        run.work,
    )


def _bundles(runs: list[_Run]) -> list[list[_Run]]:
    """Largest first; small runs bundled to about _BUNDLE elements per task."""
    bundles: list[list[_Run]] = []
    size = _BUNDLE
    for run in sorted(runs, key=lambda r: -r.size):
        if size >= _BUNDLE:
            bundles.append([])
            size = 0
        bundles[-1].append(run)
        size += run.size
    return bundles


def _run(tasks: list[Callable[[], object]]) -> list[object]:
    """Run the tasks, results in order: the calling thread and up to ``_WORKERS - 1``
    helpers of the shared pool each take the next task until none is left (one
    hand-off per helper, not one per task: each hand-off costs a GIL switch).
    Inline when there is one core or one task; a task's exception propagates
    once every helper has stopped."""
    global _pool
    helpers = min(_WORKERS, len(tasks)) - 1
    if helpers < 1:
        return [task() for task in tasks]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS - 1, thread_name_prefix="quant")
    results: list[object] = [None] * len(tasks)
    counter = itertools.count()  # next() is atomic under the GIL
    failed: list[BaseException] = []

    def drain() -> None:
        while not failed:
            i = next(counter)
            if i >= len(tasks):
                return
            try:
                results[i] = tasks[i]()
            except BaseException as exc:
                failed.append(exc)
                raise

    futures = [_pool.submit(drain) for _ in range(helpers)]
    try:
        drain()
    finally:
        for future in futures:
            future.result()
    return results


def _prepare_rounders(plans: dict[str, TensorPlan]) -> dict[int, int]:
    """Build every grid's rounder (its level table) on the pool, largest grids first;
    returns the number of elements rounded with each grid, by the grid's ``id``."""
    first: dict[int, TensorPlan] = {}
    work: dict[int, int] = {}
    for plan in plans.values():
        first.setdefault(id(plan.grid), plan)
        work[id(plan.grid)] = work.get(id(plan.grid), 0) + plan.values.size
    order = sorted(first, key=lambda k: -first[k].grid.n_levels)

    def task(key: int) -> Callable[[], object]:
        plan = first[key]
        return lambda: arith_rounder(plan.grid, _channels(plan), work[key])

    _run([task(key) for key in order])
    return work


def quantize_weights(
    weights: Mapping[str, np.ndarray], config: QuantConfig
) -> dict[str, np.ndarray]:
    """Quantized copy of ``weights``: same keys and order, float32 values on the grids.

    Tensors that stay float (and non-parameter entries) are the input objects
    themselves.  Deterministic: stochastic draws depend only on seed and name.
    The remedies that need the model (equalization, bias correction, AdaRound:
    ``config.needs_model``) are refused here: see
    :func:`engine.quant.remedies.remedied_weights`.
    """
    if config.needs_model:
        raise InputError(
            "equalization, bias correction and AdaRound need the model and calibration "
            "images: use Detector.quantized_weights or engine.quant.remedies.remedied_weights"
        )
    return quantize_planned(weights, plan_quantization(weights, config), config)


def quantize_planned(
    weights: Mapping[str, np.ndarray], plans: dict[str, TensorPlan], config: QuantConfig
) -> dict[str, np.ndarray]:
    """:func:`quantize_weights` on grids already planned (``plan_quantization(weights,
    config)``): for a caller that needs the plans too, so the ranges are not searched twice."""
    work = _prepare_rounders(plans)
    done: dict[str, np.ndarray] = {}
    runs: list[_Run] = []
    for plan in plans.values():
        done[plan.name] = aligned_empty(plan.values.shape)  # 64-byte aligned: see aligned_empty
        runs.extend(_runs(plan, done[plan.name], work[id(plan.grid)]))

    def task(bundle: list[_Run]) -> Callable[[], None]:
        return lambda: [_round_run(run, config) for run in bundle]

    _run([task(bundle) for bundle in _bundles(runs)])
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
