"""AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization").

Per layer, each quantized weight ``w`` goes to one of its two neighbouring levels
``lo <= w < hi`` on its grid (any grid of :mod:`engine.quant.grids`: linear or pow2,
any scale, a reserved zero included; a weight beyond the grid's ends goes to the
end).  The choice is learned: the soft weight is ``lo + h(V) (hi - lo)`` with the
rectified sigmoid ``h(V) = clip(sigmoid(V) (ZETA - GAMMA) + GAMMA, 0, 1)``, ``V``
initialised so that the soft weight starts at ``w``, and ``V`` minimises

    mean over sampled positions of sum over channels (f(W~ x^) - f(W x))^2
    + LAMBDA * sum over weights (1 - |2 h(V) - 1|^beta)

with Adam (learning rate :data:`LEARNING_RATE`): ``x`` the layer's input on the float path, ``x^`` its input from the
already quantized earlier layers (the paper's asymmetric reconstruction), ``f``
the layer's ReLU (ConvDet has none).  The regulariser is off for the first
:data:`WARM_UP` of the iterations, then ``beta`` falls linearly from 20 to 2,
driving every ``h`` to 0 or 1; at the end ``h >= 0.5`` rounds up.  A quantized
bias is learned the same way (as a kernel row on a constant input of 1).

The rows are :data:`ROWS` output positions drawn once per layer from all images
and positions (seeded by the config's seed and the layer name), each step a batch
of :data:`BATCH` of them; gradients are written out in numpy (the step is two
matrix products and a few passes over the kernel), which on two CPU cores is
faster than a TensorFlow graph of the same step (measured, see benchmarks/).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.model.topology import ConvLayer
from squeezelens.engine.quant.grids import UniformGrid
from squeezelens.engine.quant.remedies.layerwise import LayerInputs, conv_extent

ZETA, GAMMA = 1.1, -0.1
LAMBDA = 0.01
BETA = (20.0, 2.0)
WARM_UP = 0.2
LEARNING_RATE = 1e-2
ROWS = 4096
BATCH = 256
BLAS_THREADS = 1  # the steps' products are small: one thread beat two (measured, benchmarks/)
_ADAM = (0.9, 0.999, 1e-8)


def bracket(values: np.ndarray, grid: UniformGrid) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) float64: the levels with ``lo <= v < hi`` (both the end level beyond the
    grid's ends, both ``v`` where the grid is degenerate), exact as ``level_at``."""
    v = values.astype(np.float64)
    top = grid.n_levels - 2
    step = np.where(grid.step > 0, grid.step, 1.0)
    i = np.clip(np.floor((v - grid.origin) / step), 0, top)
    for _ in range(4):  # the estimate is off by one next to a reserved zero or at ties
        lo, hi = grid.level_at(i), grid.level_at(i + 1)
        move = np.where((v < lo) & (i > 0), -1, np.where((v >= hi) & (i < top), 1, 0))
        if not move.any():
            break
        i = i + move
    lo, hi = grid.level_at(i), grid.level_at(i + 1)
    below, above = v < lo, v >= hi
    lo, hi = np.where(above, hi, lo), np.where(below, lo, hi)
    dead = np.broadcast_to(grid.degenerate, v.shape)
    return np.where(dead, v, lo), np.where(dead, v, hi)


@dataclass
class Problem:
    """One layer's AdaRound problem: rows of inputs (quantized path), targets, the
    float kernel as a (K, C) matrix with its levels, and the layer's float bias when
    the bias is not learned."""

    inputs: np.ndarray  # (R, K) float32, a column of ones last when the bias is learned
    targets: np.ndarray  # (R, C) float32
    weights: np.ndarray  # (K, C) float64
    lo: np.ndarray
    hi: np.ndarray
    bias: np.ndarray | None  # (C,) float32 fixed bias, None when learned
    relu: bool

    def __post_init__(self) -> None:
        self.base = self.lo.astype(np.float32)
        self.span = (self.hi - self.lo).astype(np.float32)


def sample_rows(x: np.ndarray, layer: ConvLayer, kernel: int, rows: np.ndarray) -> np.ndarray:
    """The input windows (R, k*k*Cin) at flat output positions ``rows`` (image-major),
    zero in the padding, in the HWI order of a reshaped HWIO kernel."""
    n, height, width, channels = x.shape
    oh, top = conv_extent(height, kernel, layer.stride, layer.padding)
    ow, left = conv_extent(width, kernel, layer.stride, layer.padding)
    image, rest = np.divmod(rows, oh * ow)
    oy, ox = np.divmod(rest, ow)
    out = np.zeros((rows.size, kernel, kernel, channels), np.float32)
    for h in range(kernel):
        iy = oy * layer.stride + h - top
        for w in range(kernel):
            ix = ox * layer.stride + w - left
            ok = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
            out[ok, h, w] = x[image[ok], iy[ok], ix[ok]]
    return out.reshape(rows.size, -1)


def row_count(x: np.ndarray, layer: ConvLayer, kernel: int) -> int:
    """Output positions of the layer over every image."""
    oh, _ = conv_extent(x.shape[1], kernel, layer.stride, layer.padding)
    ow, _ = conv_extent(x.shape[2], kernel, layer.stride, layer.padding)
    return x.shape[0] * oh * ow


def layer_rng(seed: int, layer: str) -> np.random.Generator:
    """The layer's own random stream (row sampling, batches)."""
    return np.random.default_rng([int(seed), zlib.crc32(layer.encode("utf-8"))])


def _soft(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h(V), dh/dV)."""
    s = 1.0 / (1.0 + np.exp(-v))
    h = s * (ZETA - GAMMA) + GAMMA
    inside = (h > 0.0) & (h < 1.0)
    return np.clip(h, 0.0, 1.0), np.where(inside, (ZETA - GAMMA) * s * (1.0 - s), 0.0)


def initial_v(problem: Problem) -> np.ndarray:
    """V with h(V) = the weight's position between its levels (soft weight = w)."""
    span = problem.hi - problem.lo
    rest = np.where(span > 0, (problem.weights - problem.lo) / np.where(span > 0, span, 1), 0.5)
    s = np.clip((rest - GAMMA) / (ZETA - GAMMA), 1e-6, 1 - 1e-6)
    return np.log(s / (1.0 - s)).astype(np.float32)


def beta_at(step: int, steps: int) -> float | None:
    """The regulariser's beta at ``step`` (None during the warm-up)."""
    start = WARM_UP * steps
    if step < start:
        return None
    rel = (step - start) / max(steps - start, 1)
    return BETA[1] + (BETA[0] - BETA[1]) * max(0.0, 1.0 - rel)


def _gradient(problem: Problem, v: np.ndarray, batch: np.ndarray, beta: float | None):
    """dLoss/dV on one batch of rows."""
    h, dh = _soft(v)
    span = problem.span
    soft = problem.base + h * span
    x, t = problem.inputs[batch], problem.targets[batch]
    z = x @ soft
    if problem.bias is not None:
        z += problem.bias
    y = np.maximum(z, 0.0) if problem.relu else z
    dz = (2.0 / len(batch)) * (y - t)
    if problem.relu:
        dz *= z > 0
    grad_h = (x.T @ dz) * span
    if beta is not None:
        d = 2.0 * h - 1.0
        grad_h -= LAMBDA * beta * 2.0 * np.sign(d) * np.abs(d) ** (beta - 1.0)
    return grad_h * dh


def optimize(problem: Problem, steps: int, rng: np.random.Generator, cancel=None) -> np.ndarray:
    """The learned rounding: (K, C) float64 levels, each weight's lo or hi."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(BLAS_THREADS, user_api="blas"):
        return _optimize(problem, steps, rng, cancel)


def _optimize(problem: Problem, steps: int, rng: np.random.Generator, cancel) -> np.ndarray:
    v = initial_v(problem)
    m, s = np.zeros_like(v), np.zeros_like(v)
    b1, b2, eps = _ADAM
    rows = problem.inputs.shape[0]
    for step in range(steps):
        if step % 100 == 0:
            check(cancel)
        batch = rng.integers(0, rows, min(BATCH, rows))
        g = _gradient(problem, v, batch, beta_at(step, steps))
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        mhat = m / (1 - b1 ** (step + 1))
        shat = s / (1 - b2 ** (step + 1))
        v -= (LEARNING_RATE * mhat / (np.sqrt(shat) + eps)).astype(np.float32)
    return np.where(v >= 0.0, problem.hi, problem.lo)


def build_problem(
    inputs: LayerInputs,
    float_params: tuple[np.ndarray, np.ndarray],
    grids: tuple[UniformGrid, UniformGrid | None],
    rng: np.random.Generator,
) -> Problem:
    """Sample the rows and bracket the weights of one layer (bias grid None: float bias)."""
    kernel, bias = float_params
    layer, k = inputs.layer, kernel.shape[0]
    total = row_count(inputs.x_float, layer, k)
    rows = np.sort(rng.choice(total, min(ROWS, total), replace=False))
    xq = sample_rows(inputs.x_quant, layer, k, rows)
    same = inputs.x_quant is inputs.x_float
    xf = xq if same else sample_rows(inputs.x_float, layer, k, rows)
    target = xf @ kernel.reshape(-1, kernel.shape[-1]) + bias
    target = np.maximum(target, 0.0) if layer.relu else target
    weights = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    lo, hi = bracket(weights, grids[0])
    fixed_bias = bias.astype(np.float32)
    if grids[1] is not None:
        blo, bhi = bracket(bias[None].astype(np.float64), grids[1])
        weights = np.vstack([weights, bias[None]])
        lo, hi = np.vstack([lo, blo]), np.vstack([hi, bhi])
        xq = np.hstack([xq, np.ones((xq.shape[0], 1), np.float32)])
        fixed_bias = None
    return Problem(xq, target.astype(np.float32), weights, lo, hi, fixed_bias, layer.relu)


def adaround_layer(
    inputs: LayerInputs,
    float_params: tuple[np.ndarray, np.ndarray],
    grids: tuple[UniformGrid, UniformGrid | None],
    steps: int,
    seed: int,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of one layer rounded by AdaRound, float32 (the bias stays float
    when its grid is None)."""
    kernel, bias = float_params
    rng = layer_rng(seed, inputs.layer.name)
    problem = build_problem(inputs, float_params, grids, rng)
    levels = optimize(problem, steps, rng, cancel).astype(np.float32)
    rounded_kernel = levels[: kernel[..., 0].size].reshape(kernel.shape)
    rounded_bias = levels[-1] if grids[1] is not None else bias.astype(np.float32)
    return rounded_kernel, rounded_bias
