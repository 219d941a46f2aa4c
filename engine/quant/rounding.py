"""Rounding float32 values onto a grid: nearest and the fork's stochastic rule.

Rules (shared by every grid; ``L`` are the grid's float64 levels):

* nearest: the closest level by float64 distance ``|v - L|``; a tie goes to
  the lower level.  Values beyond the ends go to the end levels (clipping).
* stochastic: a value whose closest level is the first or the last goes
  there deterministically; any other value between neighbouring levels
  ``lower <= v < upper`` goes up iff ``u < (v - lower) / (upper - lower)``
  (float64), where ``u`` is its uniform draw in [0, 1).  With 2 levels every
  value is at an end, so stochastic equals nearest.

Draws: ``u`` has the values' shape and is compared as float64.  The quantizer
draws it per tensor with :func:`uniform_draws` (32 random bits each, C order).

One exact implementation, :class:`engine.quant.arith.ArithRounder`: each
element's bracketing levels from the affine estimate with an exact fix-up,
then the float64 decisions.  It runs as a compiled kernel
(:mod:`engine.quant.kernels`) over whole runs of a tensor, or, when numba is
missing, as numpy passes over chunks that stay in cache.  Either gives the same
bits as a per-element loop.
"""

from __future__ import annotations

import zlib

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.arith import arith_rounder
from squeezelens.engine.quant.grids import UniformGrid


def draw_generator(seed: int, name: str, start: int = 0) -> np.random.PCG64:
    """The bit generator of tensor ``name``'s draws (see :func:`uniform_draws`),
    positioned at element ``start`` (even: each 64-bit output holds two draws)."""
    if start % 2:
        raise ValueError(f"draw streams start at even elements, not {start}")
    seq = np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))])
    bits = np.random.PCG64(seq)
    if start:
        bits.advance(start // 2)
    return bits


def draw_words(bits: np.random.PCG64, count: int) -> np.ndarray:
    """The next ``count`` uint32 words of a stream: the 64-bit outputs of
    ``random_raw`` split low word first (little-endian), the last half
    dropped when ``count`` is odd.  Chunks of even size continue one stream.
    """
    raw = bits.random_raw((count + 1) // 2)
    return raw.astype("<u8", copy=False).view("<u4")[:count]


def uniform_draws(seed: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The stochastic draws of tensor ``name``: float64 ``u = word * 2**-32`` in [0, 1).

    ``word``: :func:`draw_words` of ``PCG64(SeedSequence([seed, crc32(name)]))``
    in C order of the tensor.  One stream per tensor, so a tensor's draws
    depend only on the seed and its name (not on the other tensors, nor on
    thread timing).  ``u`` is exact in float64 and the rule ``u < p`` is the
    same as ``word < p * 2**32``, which the kernels use.
    """
    count = int(np.prod(shape, dtype=np.int64))
    words = draw_words(draw_generator(seed, name), count)
    return np.ldexp(words.astype(np.float64), -32).reshape(shape)


def aligned_empty(shape: tuple[int, ...], align: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous float32 array whose data start on an ``align``-byte
    boundary (TensorFlow wraps such buffers without a copy, see ``Detector._assign``)."""
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * 4 + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + count * 4].view(np.float32).reshape(shape)


def check_finite(values: np.ndarray) -> np.ndarray:
    """Contiguous float32 copy/view of ``values``; InputError on NaN or infinity."""
    v = np.ascontiguousarray(values, dtype=np.float32)
    if v.size and not (np.isfinite(v.min()) and np.isfinite(v.max())):
        raise InputError("cannot quantize non-finite values (NaN or infinity)")
    return v


def round_nearest(values: np.ndarray, grid: UniformGrid) -> np.ndarray:
    """Nearest rounding of ``values`` onto ``grid``: float32, same shape.

    values: any shape (scalar grid) or (..., C) (per-channel grid of C channels).
    """
    return round_tensor(check_finite(values), grid, None)


def round_stochastic(values: np.ndarray, grid: UniformGrid, u: np.ndarray) -> np.ndarray:
    """The fork's stochastic rounding of ``values`` onto ``grid`` given draws ``u``.

    values, u: same shape (any, or (..., C) for a per-channel grid); u in [0, 1).
    Returns float32 of that shape.
    """
    v = check_finite(values)
    draws = np.ascontiguousarray(u)
    if draws.shape != v.shape:
        raise InputError(f"draws shape {draws.shape} differs from values shape {v.shape}")
    return round_tensor(v, grid, draws)


def round_tensor(
    v: np.ndarray, grid: UniformGrid, draws: np.ndarray | np.random.PCG64 | None
) -> np.ndarray:
    """Round finite, C-contiguous float32 ``v``: nearest when ``draws`` is None, else
    stochastic with an array ``u`` or a bit generator (its words drawn run by run)."""
    out = np.empty_like(v)
    flat = None if draws is None or isinstance(draws, np.random.PCG64) else draws.reshape(-1)
    round_into(
        v.reshape(-1),
        out.reshape(-1),
        grid,
        draws if flat is None else flat,
        v.shape[-1] if v.ndim else 1,
    )
    return out


def round_into(
    flat_v: np.ndarray,
    flat_out: np.ndarray,
    grid: UniformGrid,
    draws: np.ndarray | np.random.PCG64 | None,
    channels: int,
    work: int | None = None,
) -> None:
    """Round the 1-D float32 ``flat_v`` into ``flat_out`` (same length).

    ``flat_v`` is a run of a C-order tensor whose last axis has ``channels``
    entries, starting on a row (per-channel grids) at an even element.
    ``draws``: None (nearest), the run's own draws (``u`` or uint32 words,
    same length) or a bit generator positioned at the run's first element
    (:func:`draw_generator` with ``start``).  ``work``: elements rounded with
    this grid in all, for the rounder's choice of level lookup (default: the
    run's).
    """
    rounder = arith_rounder(grid, channels, work or flat_v.size)
    step = rounder.chunk_elements
    generator = draws if isinstance(draws, np.random.PCG64) else None
    for start in range(0, flat_v.size, step):
        stop = min(start + step, flat_v.size)
        u = None
        if generator is not None:
            u = draw_words(generator, stop - start)
        elif draws is not None:
            u = draws[start:stop]
        rounder.round(flat_v[start:stop], u, flat_out[start:stop])
