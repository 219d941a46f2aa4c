"""Range search: each range unit's clipping range, chosen to minimise quantization error.

Weights (``QuantConfig.range``):

* ``mse``: the unit's minmax range (see :mod:`engine.quant.scales`) clipped by the
  ratio ``alpha`` in (0, 1] that minimises the squared error of nearest rounding over
  the unit's tensors (kernels and biases): both ends scaled by ``alpha``, or the range
  clipped to ``[-alpha m, alpha m]`` (``m`` its largest magnitude; better when one
  outlier sets one end), whichever is better.  The search is 1-D per unit: a
  log-spaced scan of :data:`COARSE` ratios both ways, then a finer scan around the
  best, with ratio 1 (min/max) in it; the best wins, and one below 1 only when it
  lowers the error (by more than the scan's float32 precision, :data:`MARGIN`, up to
  :data:`FAST_BITS` bits), so the range is never worse than min/max.  Per channel, every
  channel searches its own ratio at once (one pass over the layer per trial).
  On a pow2 grid the candidates are the minmax fractional length and up to
  :data:`POW2_EXTRA` more fractional bits (a finer step, clipping the largest weights).
* ``percentile:P``: the unit's (100-P)-th and P-th percentiles (on a pow2 grid the
  fractional length that fits the P-th percentile of |w|), with 0 kept in the range
  as minmax does.

The squared errors come from one compiled pass per trial (numba, :mod:`._jit`), or
numpy passes when numba is missing.  Activations: :func:`activation_clip` chooses
each layer output's clipping magnitude from its calibration histogram
(``QuantConfig.activation_range``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from squeezelens.engine.quant.config import QuantConfig, percentile_of
from squeezelens.engine.quant.grids import LinearGrid, Pow2Grid, UniformGrid, pow2_frac_len
from squeezelens.engine.quant.scales import RangeStats, minmax_bounds

COARSE = np.geomspace(1 / 32, 1.0, 16)  # clip ratios of the first pass (x1.26 apart), 1 last
REFINE = 32  # ratios of the second scan (1.5 % apart) and 1
FAST_BITS = 8  # up to here, scans run in float32 (a pass over the model in a third of the time)
MARGIN = 1e-3  # a float32 scan's clip must beat min/max by this much (its error is < 1e-4)
POW2_EXTRA = 3
_EPS = 1e-4
_lock = threading.Lock()
_kernel: list[ModuleType | None] = []


def _jit() -> ModuleType | None:
    """The compiled kernel module, None without numba (or with SQUEEZELENS_NO_JIT=1)."""
    from squeezelens.engine.quant.kernels import DISABLE_ENV

    if os.environ.get(DISABLE_ENV) == "1":
        return None
    with _lock:
        if not _kernel:
            try:
                from squeezelens.engine.quant.remedies import _jit as module
            except ImportError:
                module = None
            _kernel.append(module)
    return _kernel[0]


# ------------------------------------------------------------------ squared error
class Unit:
    """The float32 tensors of one range unit at one bit width, as flat runs of rows.

    ``channels``: the per-channel grid's channel count, 1 for a scalar grid.
    """

    def __init__(self, tensors: Sequence[np.ndarray], per_channel: bool) -> None:
        self.channels = int(tensors[0].shape[-1]) if per_channel and tensors[0].ndim else 1
        self.runs = [np.ascontiguousarray(t, dtype=np.float32).reshape(-1) for t in tensors]

    def sse(self, origin, step, n_levels: int, zero=None, fast: bool = False) -> np.ndarray:
        """Squared error of nearest rounding, (C, K) float64, for K candidate grids per
        channel: ``origin + i * step`` (i in [0, n_levels)), each (C, K), level ``zero``
        ((C, K) int, -1: none; None: no zero anywhere) replaced by exactly 0.  ``fast``:
        float32 arithmetic (for scans; relative error below 1e-4 up to 8 bits)."""
        shape = (self.channels, np.shape(origin)[-1])
        if zero is not None and np.all(np.asarray(zero) < 0):
            zero = None
        jit = _jit()
        fast = fast and zero is None and jit is not None
        dtype = np.float32 if fast else np.float64
        origin = np.ascontiguousarray(np.broadcast_to(origin, shape), dtype)
        step = np.ascontiguousarray(np.broadcast_to(step, shape), dtype)
        inv = np.divide(1.0, step, out=np.zeros(shape, dtype), where=step > 0)
        out = np.zeros(shape, dtype)
        for run in self.runs:
            if jit is None:
                out += _sse_numpy(run.reshape(-1, self.channels), origin, inv, step, n_levels, zero)
            elif fast:
                jit.sse32(run, self.channels, origin, inv, step, n_levels - 1, out)
            elif zero is None:
                jit.sse(run, self.channels, origin, inv, step, n_levels - 1, out)
            else:
                z = np.ascontiguousarray(np.broadcast_to(zero, shape), np.int64)
                jit.sse_zero(run, self.channels, origin, inv, step, n_levels - 1, z, out)
        return out.astype(np.float64)


def _sse_numpy(v: np.ndarray, origin, inv, step, n_levels: int, zero) -> np.ndarray:
    """The numpy form of the kernels for rows ``v`` (R, C) and candidates (C, K)."""
    x = v.astype(np.float64)[:, :, None]
    t = np.clip(np.floor((x - origin) * inv + 0.5), 0, n_levels - 1)
    err = np.abs(x - (origin + t * step))
    if zero is not None:
        near = (zero >= 0) & (np.abs(t - zero) <= 1)
        best = np.abs(x)
        for shift in (-1, 1):
            j = np.clip(zero + shift, 0, n_levels - 1)
            other = np.where(j != zero, np.abs(x - (origin + j * step)), np.inf)
            best = np.minimum(best, other)
        err = np.where(near, best, err)
    return (err * err).sum(axis=0)


# ------------------------------------------------------------------ linear grids
def clip_range(lo, hi, alpha, symmetric) -> tuple[np.ndarray, np.ndarray]:
    """The range ``[lo, hi]`` at clip ratio ``alpha``: both ends scaled (``[alpha lo,
    alpha hi]``), or where ``symmetric``, clipped to ``[-alpha m, alpha m]`` with
    ``m = max(-lo, hi)`` (arguments broadcast together)."""
    m = np.maximum(-np.asarray(lo), np.asarray(hi)) * alpha
    return (
        np.where(symmetric, np.maximum(lo, -m), lo * alpha),
        np.where(symmetric, np.minimum(hi, m), hi * alpha),
    )


def _linear_sse(unit: Unit, lo, hi, alphas, symmetric, bits: int, zero: bool) -> np.ndarray:
    """(C, K) squared errors of the linear grids of ``[lo, hi]`` at the (C, K) clips."""
    glo, ghi = clip_range(np.reshape(lo, (-1, 1)), np.reshape(hi, (-1, 1)), alphas, symmetric)
    glo, ghi = np.broadcast_arrays(glo, ghi)
    grid = LinearGrid(glo.reshape(-1), ghi.reshape(-1), bits, zero)
    shape = glo.shape
    zeros = grid.zero_index.reshape(shape) if zero else None
    return unit.sse(glo, grid.step.reshape(shape), grid.n_levels, zeros, _fast(bits))


def _fast(bits: int) -> bool:
    """Whether float32 scans resolve the error differences at ``bits`` (see :data:`MARGIN`)."""
    return bits <= FAST_BITS


def _improves(err: np.ndarray, than: np.ndarray, bits: int) -> np.ndarray:
    """Where ``err`` is really below ``than``: by more than the scan's precision."""
    return err < than * (1.0 - (MARGIN if _fast(bits) else 1e-9))


def search_clip(unit: Unit, lo, hi, bits: int, reserve_zero: bool):
    """Per channel (or scalar) the clip ratio in (0, 1] and the clipping (scaled ends, or
    symmetric: see :func:`clip_range`) of least squared error; ratio 1 (min/max) unless
    a clip really lowers the error.  A first scan tries :data:`COARSE` both ways, a
    second :data:`REFINE` ratios between the best one's neighbours and 1."""
    c, k = unit.channels, COARSE.size
    alphas = np.broadcast_to(np.concatenate([COARSE, COARSE]), (c, 2 * k))
    symmetric = np.broadcast_to(np.arange(2 * k) >= k, (c, 2 * k))
    pick = np.argmin(_linear_sse(unit, lo, hi, alphas, symmetric, bits, reserve_zero), axis=1)
    rows = np.arange(c)
    best, best_sym = alphas[rows, pick], symmetric[rows, pick]
    ratio = COARSE[1] / COARSE[0]
    low, high = best / ratio, np.minimum(best * ratio, 1.0)
    alphas = low[:, None] + (high - low)[:, None] * np.linspace(0, 1, REFINE)
    alphas[:, -1] = 1.0  # min/max itself, the same either way
    err = _linear_sse(unit, lo, hi, alphas, best_sym[:, None], bits, reserve_zero)
    pick = np.argmin(err[:, :-1], axis=1)
    better = _improves(err[rows, pick], err[:, -1], bits)
    best = np.where(better, alphas[rows, pick], 1.0)
    return best.reshape(np.shape(lo)), (best_sym & better).reshape(np.shape(lo))


def _percentiles(unit: Unit, p: float) -> tuple[np.ndarray, np.ndarray]:
    rows = np.concatenate([r.reshape(-1, unit.channels) for r in unit.runs])
    lo, hi = np.percentile(rows, [100.0 - p, p], axis=0)
    return (lo, hi) if unit.channels > 1 else (lo[0], hi[0])


def fitted_grid(
    config: QuantConfig, bits: int, stats: RangeStats, tensors: Sequence[np.ndarray]
) -> UniformGrid:
    """The grid of one range unit at ``bits`` under a searched range (``mse`` or
    ``percentile:P``): ``tensors`` are the unit's tensors quantized at ``bits``."""
    unit = Unit(tensors, config.scale == "channel")
    p = percentile_of(config.range)
    if config.grid == "pow2":
        return _pow2_grid(unit, bits, stats, p)
    lo, hi = minmax_bounds(config, stats)
    if p is not None:
        plo, phi = _percentiles(unit, p)
        plo, phi = minmax_bounds(config, RangeStats(np.asarray(plo), np.asarray(phi)))
        return LinearGrid(np.maximum(lo, plo), np.minimum(hi, phi), bits, config.reserve_zero)
    alpha, symmetric = search_clip(unit, lo, hi, bits, config.reserve_zero)
    return LinearGrid(*clip_range(lo, hi, alpha, symmetric), bits, config.reserve_zero)


def _pow2_grid(unit: Unit, bits: int, stats: RangeStats, p: float | None) -> Pow2Grid:
    max_abs = np.maximum(-stats.lo, stats.hi)
    frac_len, degenerate = pow2_frac_len(max_abs, bits)
    if p is not None:
        rows = np.concatenate([np.abs(r).reshape(-1, unit.channels) for r in unit.runs])
        clip = np.percentile(rows, p, axis=0).reshape(np.shape(max_abs))
        fitted, _ = pow2_frac_len(clip, bits)
        return Pow2Grid(np.where(degenerate | (clip == 0), frac_len, fitted), bits, degenerate)
    extra = np.arange(POW2_EXTRA + 1)
    fls = np.reshape(frac_len, (-1, 1)) + extra
    step = np.where(np.reshape(degenerate, (-1, 1)), 0.0, np.ldexp(1.0, -fls))
    err = unit.sse(-(2.0 ** (bits - 1)) * step, step, 2**bits, None, _fast(bits))
    pick = np.argmin(err, axis=1)
    rows = np.arange(err.shape[0])
    better = _improves(err[rows, pick], err[:, 0], bits)
    best = np.where(better, fls[rows, pick], fls[:, 0]).reshape(np.shape(frac_len))
    return Pow2Grid(best, bits, degenerate)


# ------------------------------------------------------------------ activations
def activation_clip(method: str, bits: int, hist: np.ndarray, top: float) -> float:
    """The clipping magnitude of one layer output under ``method``
    (``QuantConfig.activation_range``): ``hist`` counts |a| in equal bins over [0, top]."""
    if method == "minmax" or top <= 0 or hist.sum() == 0:
        return top
    edges = np.linspace(0.0, top, hist.size + 1)
    p = percentile_of(method)
    if p is not None:
        cum = np.cumsum(hist) / hist.sum()
        k = int(np.searchsorted(cum, p / 100.0))
        return float(edges[min(k + 1, hist.size)])
    if method == "mse":
        return _mse_clip(hist, edges, bits)
    return _entropy_clip(hist, edges, bits)


def _mse_clip(hist: np.ndarray, edges: np.ndarray, bits: int) -> float:
    """The candidate clip of least expected squared error on the dynamic fixed-point
    grid (step 2^-fl, fl from the clip), errors taken at bin centres."""
    from squeezelens.engine.activations import dynamic_fixed_point

    centres = (edges[:-1] + edges[1:]) / 2
    top = float(edges[-1])
    best, best_err = top, np.inf
    for shift in range(POW2_EXTRA + 1):
        clip = top / 2.0**shift
        step, lo, hi = dynamic_fixed_point(clip, bits)
        q = np.clip(np.floor(centres / step + 0.5), lo, hi) * step
        err = float(np.sum(hist * (centres - q) ** 2))
        if err < best_err * (1.0 - 1e-9):
            best, best_err = clip, err
    return best


def _entropy_clip(hist: np.ndarray, edges: np.ndarray, bits: int) -> float:
    """TensorRT's entropy calibration: the threshold whose quantized distribution
    (``2**(bits-1)`` levels over [0, threshold], the outliers folded into the last bin)
    has the least KL divergence from the clipped reference distribution."""
    levels = 2 ** (bits - 1)
    n = hist.size
    hist = hist.astype(np.float64)
    best_i, best_kl = n, np.inf
    for i in range(levels, n + 1, max(1, (n - levels) // 256)):
        ref = hist[:i].copy()
        ref[-1] += hist[i:].sum()
        kl = _quantized_kl(ref, hist[:i], levels)
        if kl < best_kl:
            best_i, best_kl = i, kl
    return float(edges[best_i])


def _quantized_kl(ref: np.ndarray, clipped: np.ndarray, levels: int) -> float:
    """KL(ref || q): q spreads each of ``levels`` merged bins of ``clipped`` evenly over
    its non-empty bins."""
    i = ref.size
    group = np.minimum((np.arange(i) * levels) // i, levels - 1)
    live = ref > 0
    mass = np.bincount(group, weights=clipped, minlength=levels)
    count = np.bincount(group, weights=live, minlength=levels)
    q = np.where(live, mass[group] / np.maximum(count[group], 1), 0.0)
    if q.sum() <= 0:
        return np.inf
    p, q = ref / ref.sum(), q / q.sum()
    q = np.where(live & (q <= 0), _EPS, q)  # smoothed as TensorRT does: no infinite terms
    return float(np.sum(p[live] * np.log(p[live] / q[live])))
