"""Small facts for the display, computed on the workers: model summary, browser rows, layers.

Each function only gathers or forwards: detection matching is the engine's
``compare_detections``; the model facts are read from the engine's Detector.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from squeezelens.engine.compare import compare_detections
from squeezelens.engine.types import Detections
from squeezelens.gui.state import ImageCounts, ModelInfo


def model_info(detector: Any) -> ModelInfo:
    """The display facts of a detector (called on the worker)."""
    from squeezelens.engine.model.spec import layer_names

    ckpt = detector.checkpoint
    return ModelInfo(
        summary=detector.summary(),
        variant=detector.spec.variant,
        num_parameters=int(detector.num_parameters),
        class_names=tuple(detector.class_names),
        input_size=tuple(detector.spec.input_size),
        checkpoint_path=str(ckpt.path) if ckpt else "",
        sha256=str(ckpt.sha256) if ckpt else "",
        layer_names=tuple(layer_names(detector.spec.variant)),
        tensor_sizes={k: int(v.size) for k, v in detector.float_weights.items()},
    )


def gt_count(record: Any, class_names: tuple[str, ...]) -> int:
    """Ground-truth objects of the detector's classes in one image record."""
    if record is None:
        return 0
    names = {c.lower() for c in class_names}
    return sum(1 for o in record.objects if o.type.lower() in names)


def image_counts(record: Any, class_names: tuple[str, ...], ref: Detections, other: Detections,
                 threshold: float) -> ImageCounts:  # fmt: skip
    """One browser row at ``threshold`` (the engine compares and, for a labelled image,
    scores both models with the devkit's matching; runs on either thread)."""
    from squeezelens.engine.eval.hurt import image_hurt

    r, o = ref.above(threshold), other.above(threshold)
    counts = (gt_count(record, class_names), len(r), len(o), compare_detections(r, o).change_count)
    if record is None or not record.has_labels:
        return ImageCounts(*counts)
    hurt = image_hurt(record, ref, other, threshold)
    return ImageCounts(*counts, True, hurt.tp_lost, hurt.recall_drop, hurt.fp_gained)


def shown_bits(result: Any, config: Any, layer: str) -> int | None:
    """The width whose drop the layer table shows for ``layer``: its override when that
    width was tested, else ``config.bits``; None when the analysis did not test it."""
    own = config.layer_bits(layer)
    bits = own if own in result.bits else config.bits
    return bits if bits in result.bits else None


def sensitivity_columns(result: Any, config: Any) -> tuple[dict[str, float], dict[str, dict]]:
    """The layer table's sensitivity: per tested layer the drop at the bits the config gives it
    (:func:`shown_bits`), and every tested width's."""
    drops, by_bits = {}, {}
    for layer in result.layers:
        bits = shown_bits(result, config, layer)
        if bits is not None:  # a width the analysis did not test has no drop to show
            drops[layer] = result.drop(layer, bits)
        by_bits[layer] = {b: result.drop(layer, b) for b in result.bits}
    return drops, by_bits


def noise_column(result: Any, config: Any) -> dict[str, float]:
    """Per tested layer, the bootstrap spread of the drop the table shows (engine.bootstrap)."""
    out = {}
    for layer in result.layers:
        bits = shown_bits(result, config, layer)
        if bits is not None and (layer, bits) in result.noise:
            out[layer] = result.noise[(layer, bits)]
    return out


def same_grids(config: Any, measured: Any) -> bool:
    """True when ``config`` differs from ``measured`` at most in bits and per-layer bits, so a
    sensitivity measured under ``measured`` (every tested width) still describes it."""
    import dataclasses

    return dataclasses.replace(config, bits=measured.bits, overrides=measured.overrides) == measured


def first_quantized(rows: list, report: dict | None) -> str:
    """The layer to show first: the first one the config quantizes (conv1 often stays float)."""
    for row in rows:
        info = (report or {}).get(f"{row.name}/kernels")
        if info is not None and info.quantized:
            return row.name
    return rows[0].name


def quant_report(weights: dict, config: Any) -> dict | None:
    """squeezelens.engine.quant's per-tensor report (None for the float model)."""
    if config is None:
        return None
    from squeezelens.engine.quant import quantization_report

    return quantization_report(weights, config)


def layer_clipping(weights: dict, qweights: dict, config: Any, order: list[str]) -> dict:
    """Per quantized layer its clipping vs rounding (engine.quant.clipping.clipping_report,
    what ``quantize --report`` prints); {} for the float model."""
    if config is None:
        return {}
    from squeezelens.engine.quant.clipping import clipping_report

    return {r.layer: r for r in clipping_report(weights, config, qweights, order=order)}


def grid_of(weights: dict, config: Any, tensor: str) -> Any:
    """The grid of one tensor (None when it stays float)."""
    if config is None:
        return None
    from squeezelens.engine.quant import plan_quantization

    plan = plan_quantization(weights, config).get(tensor)
    return None if plan is None else plan.grid


def grid_ends(grid: Any) -> tuple[float, float]:
    """The lowest and highest level of a (shared or one channel's) grid: beyond them, clipping."""
    return float(np.min(grid.min_level)), float(np.max(grid.max_level))


def layer_histogram(weights: dict, qweights: dict, config: Any, layer: str, channel: int | None):
    """(histogram with the grid's levels, channel, grid ends) of a layer.

    For a per-channel grid: the histogram of one output channel's kernel weights and its
    grid (engine.quant.clipping.channel_grid, the one channel mechanism), with
    ``channel`` = (shown, channels, widest channel); else of the whole layer (kernel and
    bias) and None.  Grid ends: (lowest, highest level), None for a float layer.
    ``channel`` None (or out of range) picks the channel with the widest weight range.
    """
    from squeezelens.engine.diagnostics import values_histogram, weight_histogram
    from squeezelens.engine.quant.clipping import channel_grid

    grid = grid_of(weights, config, f"{layer}/kernels")
    if grid is None:
        return weight_histogram(weights, qweights, layer), None, None
    if not grid.per_channel:
        return weight_histogram(weights, qweights, layer, levels=grid.levels), None, grid_ends(grid)
    kernel = weights[f"{layer}/kernels"]
    n = kernel.shape[-1]
    widest = int(np.ptp(kernel.reshape(-1, n), axis=0).argmax())
    c = widest if channel is None or not 0 <= channel < n else int(channel)
    picked = channel_grid(weights, config, layer, c, qweights)
    hist = values_histogram(picked.values, picked.quantized, picked.levels)
    return hist, (c, n, widest), (float(picked.levels.min()), float(picked.levels.max()))
