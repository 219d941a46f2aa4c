"""The numba kernels of :mod:`engine.quant.remedies.ranges` (imported only through it, lazily).

Module-level functions so that numba can cache their machine code on disk.  Both add,
per channel ``c`` and candidate grid ``j``, the squared nearest-rounding error of the
channel's values on the affine grid ``origin[c, j] + i * step[c, j]`` (i in
[0, top]); ``inv`` is ``1 / step`` (0 for a degenerate grid, whose values all equal
its origin).  ``v``: a flat float32 run of whole rows of ``channels`` values.
The candidate loop is innermost and branch-free, so it runs as SIMD lanes.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(nogil=True, cache=True, error_model="numpy")


@_jit
def sse(v, channels, origin, inv, step, top, out):
    """Squared errors into ``out`` (C, K) for the candidates (C, K) of each channel."""
    cands = origin.shape[1]
    hi = np.float64(top)
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            x = np.float64(v[k])
            for j in range(cands):
                t = min(max(np.floor((x - origin[c, j]) * inv[c, j] + 0.5), 0.0), hi)
                e = x - (origin[c, j] + t * step[c, j])
                out[c, j] += e * e
            k += 1


@_jit
def sse_zero(v, channels, origin, inv, step, top, zero, out):
    """:func:`sse` on grids whose level ``zero[c, j]`` is replaced by exactly 0."""
    cands = origin.shape[1]
    hi = np.float64(top)
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            x = np.float64(v[k])
            for j in range(cands):
                o, s, z = origin[c, j], step[c, j], zero[c, j]
                t = min(max(np.floor((x - o) * inv[c, j] + 0.5), 0.0), hi)
                e = abs(x - (o + t * s))
                if abs(t - z) <= 1.0:  # the nearest is 0 or a neighbour of the zero
                    e = abs(x)
                    for i in range(max(z - 1, 0), min(z + 1, top) + 1):
                        if i != z:
                            e = min(e, abs(x - (o + i * s)))
                out[c, j] += e * e
            k += 1


@_jit
def sse32(v, channels, origin, inv, step, top, out):
    """:func:`sse` in float32 arithmetic (twice the SIMD lanes), for scanning candidates;
    ``origin``, ``inv``, ``step`` and ``out`` are float32."""
    cands = origin.shape[1]
    hi = np.float32(top)
    half, zero = np.float32(0.5), np.float32(0.0)
    k = 0
    for _ in range(v.size // channels):
        for c in range(channels):
            x = v[k]
            for j in range(cands):
                t = min(max(np.floor((x - origin[c, j]) * inv[c, j] + half), zero), hi)
                e = x - (origin[c, j] + t * step[c, j])
                out[c, j] += e * e
            k += 1
