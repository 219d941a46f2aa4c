"""Exact lookup tables that turn float32 rounding into a few gathers.

Why: the fork decides every weight by float64 distances to float64 levels.
For float32 inputs each such decision is a *monotone* predicate of the input,
so it flips at one float32 value, a breakpoint.  We find every breakpoint
exactly once per grid (a search over the float32 order that evaluates the
fork's own float64 predicate: the float32 midpoint and its neighbours settle
almost all, bisection the rest), and then rounding an element only needs
``index = #{breakpoints <= v}``: a float32 comparison, exact by construction.

``index`` is found without a binary search: a monotone float32 affine map
sends ``v`` to a bucket, and buckets are made fine enough to hold at most one
breakpoint each, so ``index = base[bucket] + (v >= split[bucket])``.  This
holds for any monotone bucket map (the float32 rounding of the map does not
matter): a breakpoint in a lower bucket is ``<= v``, one in a higher bucket
is ``> v``.  Building the index fails (returns None) only when two
breakpoints coincide or the range is too narrow for float32 bucket
arithmetic; callers then use the exact arithmetic path of
:mod:`engine.quant.arith`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_F32_INF = np.float32(np.inf)
_RESOLUTIONS = (2, 4, 8, 16, 32, 64)


def _order_key(x: np.ndarray) -> np.ndarray:
    """int64 keys that sort like the float32 values ``x`` (+0 and -0 share key 0)."""
    bits = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def _from_key(key: np.ndarray) -> np.ndarray:
    """float32 values of order keys (inverse of :func:`_order_key`)."""
    bits = np.where(key < 0, (-key) | 0x80000000, key).astype(np.uint32)
    return bits.view(np.float32)


def smallest_float32_where(
    predicate: Callable[[np.ndarray, np.ndarray | slice], np.ndarray],
    below: np.ndarray,
    above: np.ndarray,
    guess: np.ndarray,
) -> np.ndarray:
    """For each element, the smallest float32 ``v`` with ``predicate(v, sel)`` true.

    ``predicate(v, sel)`` tells for candidates ``v`` (float32) of the elements
    ``sel`` (an index array, or ``slice(None)`` for all) whether the condition
    holds; it must be monotone in ``v`` (false then true) for every float32,
    false at ``below`` and true at ``above`` (float32, (m,)).  Checks the
    float32 ``guess`` and its two neighbours first (that settles almost every
    element), then bisects over the float32 order for the rest.
    """
    lo, hi = _order_key(below), _order_key(above)
    g = _order_key(guess)
    everything = slice(None)
    below_true = predicate(_from_key(g - 1), everything)
    at_true = predicate(_from_key(g), everything)
    above_true = predicate(_from_key(g + 1), everything)
    settled = ~below_true & above_true
    hi = np.where(settled, np.where(at_true, g, g + 1), hi)
    lo = np.where(settled, np.where(at_true, g - 1, g), lo)
    for _ in range(40):
        sel = np.flatnonzero(hi - lo > 1)
        if sel.size == 0:
            return _from_key(hi)
        mid = lo[sel] + (hi[sel] - lo[sel]) // 2
        true = predicate(_from_key(mid), sel)
        hi[sel[true]] = mid[true]
        lo[sel[~true]] = mid[~true]
    raise RuntimeError("breakpoint search did not converge")  # pragma: no cover


def nearest_breakpoints(levels: np.ndarray) -> np.ndarray:
    """float32 (n-1,): ``T[j-1]`` = smallest float32 closer to ``levels[j]`` than ``levels[j-1]``.

    Closer means the fork's float64 rule ``levels[j] - v < v - levels[j-1]``
    (a tie goes to the lower level).  ``levels``: float64 (n,), sorted.
    The rule is false at any ``v <= levels[j-1]`` and true at any ``v > levels[j]``.
    """
    below, above = levels[:-1], levels[1:]

    def closer_to_upper(v: np.ndarray, sel: np.ndarray | slice) -> np.ndarray:
        v64 = v.astype(np.float64)
        return (above[sel] - v64) < (v64 - below[sel])

    floor_below = -ceil_float32(-below)
    beyond_above = np.nextafter(ceil_float32(above), _F32_INF)
    guess = ((below + above) / 2).astype(np.float32)
    return smallest_float32_where(closer_to_upper, floor_below, beyond_above, guess)


def ceil_float32(values: np.ndarray) -> np.ndarray:
    """float32: the smallest float32 ``>= values`` (float64), so ``v >= L <=> v >= ceil(L)``."""
    c = values.astype(np.float32)
    low = c.astype(np.float64) < values
    return np.where(low, np.nextafter(c, _F32_INF), c)


def bucket_of(
    values: np.ndarray,
    scale: np.float32,
    offset: np.float32,
    top: float,
    t: np.ndarray,
    out: np.ndarray,
    clip: bool = True,
) -> np.ndarray:
    """Monotone bucket index of float32 ``values`` into ``out`` (intp); ``t`` is float32 scratch.

    The build and the hot path both call this, so a breakpoint and an input
    equal to it land in the same bucket.  ``clip=False`` skips the clip to
    ``[0, top]``: only for values known to lie where it changes nothing
    (:meth:`BreakpointIndex.covers`).
    """
    np.multiply(values, scale, out=t)
    np.add(t, offset, out=t)
    if clip:
        np.clip(t, 0.0, top, out=t)
    np.copyto(out, t, casting="unsafe")
    return out


@dataclass(frozen=True, eq=False)
class BreakpointIndex:
    """Counts the sorted float32 breakpoints ``<= v`` for float32 ``v`` in O(1).

    ``base`` (int32, (nb,), half the cache footprint of intp): breakpoints in
    lower buckets; ``split`` (float32, (nb,)): the one breakpoint in the
    bucket, or +inf.  Gathers use intp indices (numpy converts any other
    index type first) and ``mode="wrap"`` (the fastest numpy gathers measured here);
    every index is in range by construction, so wrapping never happens.
    """

    scale: np.float32
    offset: np.float32
    top: float
    base: np.ndarray
    split: np.ndarray

    @staticmethod
    def build(
        breakpoints: np.ndarray, origin: float, step: float, n: int
    ) -> BreakpointIndex | None:
        """Index for ``breakpoints`` (float32, sorted) spread over ``n`` steps from ``origin``.

        ``origin``/``step`` only shape the buckets (about ``n`` evenly spaced
        breakpoints); exactness never depends on them.  None if breakpoints
        coincide (no resolution separates them).
        """
        b = np.asarray(breakpoints, dtype=np.float32)
        if b.size == 0 or not step > 0:
            return None
        for res in _RESOLUTIONS:
            n_buckets = (n + 3) * res
            with np.errstate(over="ignore"):
                scale = np.float32(res / step)
                offset = np.float32((1.0 - origin / step) * res)
            if not (np.isfinite(scale) and np.isfinite(offset) and scale > 0):
                return None  # a range too narrow for float32 bucket arithmetic
            top = float(n_buckets - 1)
            where = bucket_of(b, scale, offset, top, np.empty_like(b), np.empty(b.size, np.intp))
            counts = np.bincount(where, minlength=n_buckets)
            if counts.max() <= 1:
                split = np.full(n_buckets, _F32_INF, dtype=np.float32)
                split[where] = b
                base = (np.cumsum(counts) - counts).astype(np.int32)
                return BreakpointIndex(scale, offset, top, base, split)
        return None

    def covers(self, lo: float, hi: float) -> bool:
        """True when every float32 in ``[lo, hi]`` maps into ``[0, top]`` unclipped.

        The bucket map is monotone (a float32 multiply by a positive scale,
        then an add, each rounded monotonically), so the two ends, mapped by
        the hot path's own float32 operations, bound every value between
        them: locating such values may skip the clip.
        """
        ends = np.array([lo, hi], dtype=np.float32)
        if not (np.all(np.isfinite(ends)) and ends[0] <= ends[1]):
            return False
        t = np.add(np.multiply(ends, self.scale), self.offset)
        return bool(t[0] >= 0.0 and t[1] <= self.top)

    def locate(self, values: np.ndarray, scratch: Scratch, m: int, clip: bool = True) -> np.ndarray:
        """``#{breakpoints <= v}`` for float32 ``values`` (m,); result in ``scratch.idx[:m]``.

        ``clip=False`` only for values in a range that :meth:`covers` accepts.
        """
        bucket = bucket_of(
            values, self.scale, self.offset, self.top, scratch.f32[:m], scratch.bucket[:m], clip
        )
        g, above, idx = scratch.f32[:m], scratch.mask[:m], scratch.idx[:m]
        np.take(self.split, bucket, out=g, mode="wrap")
        np.greater_equal(values, g, out=above)
        base = scratch.base[:m]
        np.take(self.base, bucket, out=base, mode="wrap")
        np.add(base, above, out=idx)  # widened to intp on the way
        return idx


class Scratch:
    """Per-thread work buffers for chunks of up to ``size`` elements (no allocation per chunk).

    Few and small, so that a chunk's whole working set stays in the core's cache.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.f32 = np.empty(size, np.float32)
        self.bucket = np.empty(size, np.intp)
        self.idx = np.empty(size, np.intp)
        self.base = np.empty(size, np.int32)
        self.mask = np.empty(size, bool)
        self.v64 = np.empty(size, np.float64)
        self.p64 = np.empty(size, np.float64)


@dataclass(frozen=True, eq=False)
class NearestTable:
    """Nearest rounding of float32 values onto a scalar grid: ``out = levels32[index]``."""

    index: BreakpointIndex
    levels32: np.ndarray

    @staticmethod
    def build(levels: np.ndarray, origin: float, step: float) -> NearestTable | None:
        """From sorted float64 ``levels`` (n,); None when the index cannot be built."""
        index = BreakpointIndex.build(nearest_breakpoints(levels), origin, step, levels.size)
        if index is None:
            return None
        return NearestTable(index, levels.astype(np.float32))

    def round_chunk(
        self, values: np.ndarray, out: np.ndarray, scratch: Scratch, clip: bool = True
    ) -> None:
        """Round float32 ``values`` (m,) into float32 ``out`` (m,)."""
        idx = self.index.locate(values, scratch, values.size, clip)
        np.take(self.levels32, idx, out=out, mode="wrap")


@dataclass(frozen=True, eq=False)
class StochasticTable:
    """The fork's stochastic rounding onto a scalar grid of n >= 3 levels.

    Intervals ``j`` = 0..n between the breakpoints ``[T1, C1..C(n-2), T(n-1)]``
    (``T``: nearest breakpoints, ``C``: float32 ceilings of the levels):
    ``j = 0`` holds the values whose closest level is the first (kept there),
    ``j = n`` those whose closest level is the last; interval ``j`` in
    between lies in ``[L(j-1), L(j))``.  Per interval: ``low`` (float64, the
    lower level; +inf / -inf at the two ends so that ``p`` is -inf / +inf),
    ``width_scaled`` (float64, ``(L(j) - L(j-1)) * 2**-32``, positive at the ends) and the output
    level for ``j + up`` in ``out32`` (float32, (n+2,)).
    """

    index: BreakpointIndex
    low: np.ndarray
    width_scaled: np.ndarray
    out32: np.ndarray

    @staticmethod
    def build(levels: np.ndarray, origin: float, step: float) -> StochasticTable | None:
        """From sorted float64 ``levels`` (n,), n >= 3; None when the index cannot be built."""
        n = levels.size
        ends = nearest_breakpoints(levels[[0, 1, n - 2, n - 1]])
        c = ceil_float32(levels)
        breakpoints = np.concatenate([ends[:1], c[1 : n - 1], ends[-1:]])
        index = BreakpointIndex.build(breakpoints, origin, step, n)
        if index is None:
            return None
        low = np.concatenate([[np.inf], levels[:-1], [-np.inf]])
        width = np.concatenate([[1.0], np.diff(levels), [1.0]])
        out32 = np.concatenate([levels[:1], levels, levels[-1:]]).astype(np.float32)
        return StochasticTable(index, low, np.ldexp(width, -32), out32)

    def round_chunk(
        self,
        values: np.ndarray,
        draws: np.ndarray,
        out: np.ndarray,
        scratch: Scratch,
        clip: bool = True,
    ) -> None:
        """Round float32 ``values`` (m,) into float32 ``out`` given ``draws`` (m,).

        ``draws``: uint32 words ``w`` (``u = w * 2**-32``) or float draws ``u``.
        ``up`` iff ``u < (v - lower) / (upper - lower)`` in float64, evaluated
        as ``u * 2**32 < (v - lower) / ((upper - lower) * 2**-32)``: both
        sides are scaled by a power of two, which is exact.
        """
        m = values.size
        idx = self.index.locate(values, scratch, m, clip)
        a, p, up = scratch.v64[:m], scratch.p64[:m], scratch.mask[:m]
        np.copyto(a, values)
        np.take(self.low, idx, out=p, mode="wrap")
        np.subtract(a, p, out=p)
        np.take(self.width_scaled, idx, out=a, mode="wrap")
        np.divide(p, a, out=p)
        np.copyto(a, draws)
        if draws.dtype.kind == "f":
            np.ldexp(a, 32, out=a)
        np.less(a, p, out=up)
        np.add(idx, up, out=idx)
        np.take(self.out32, idx, out=out, mode="wrap")
