"""Exact rounding by float64 index arithmetic: one rounder per grid.

Each element's lower level index is estimated from the affine grid, its two
neighbouring levels are fetched (from the (n, C) level table when it is small
enough, else from the formula) and the few elements the estimate put one index
off (next to a reserved zero, or at float ties) are moved until
``L(i) <= v < L(i+1)`` holds.  Then nearest and stochastic decisions are the
fork's float64 comparisons.

With numba installed, :class:`ArithRounder` hands whole runs to the compiled
kernels of :mod:`engine.quant.kernels` (same rules, one pass per element; levels
from the table, or from the grid's formula where a table would cost more than
the rounding); otherwise it runs the numpy version below, chunk by chunk.

That index is unique (the largest ``i`` in ``[0, n-2]`` with ``L(i) <= v``,
or 0 below the grid), so the result does not depend on the estimate, only
the number of fix-up rounds does.

Speed: a chunk is handled flat, in per-thread buffers, with the per-channel
parameters tiled to the chunk (numpy's broadcasting over a short last axis
costs a loop call per row); the level formula is evaluated by the grid's own
``level_at`` on a grid whose channels are the chunk's elements
(:meth:`UniformGrid.take_channels`), so its bits are the grid's.

Shapes: values (..., C) for a per-channel grid of C channels (parameters
broadcast on the last axis), any shape for a scalar grid.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from squeezelens.engine.quant import kernels
from squeezelens.engine.quant.grids import UniformGrid

LEVEL_TABLE_MAX = 1 << 21
NUMPY_CHUNK = 16384  # elements per numpy pass: the work buffers stay in cache
KERNEL_CHUNK = 1 << 18  # elements per kernel call (bounds the memory of drawn words)
_tls = threading.local()


class _Buffers:
    """Per-thread work buffers of at least ``size`` elements."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.f64 = [np.empty(size, np.float64) for _ in range(4)]
        self.ints = [np.empty(size, np.intp) for _ in range(2)]
        self.masks = [np.empty(size, bool) for _ in range(3)]


def _buffers(size: int) -> _Buffers:
    buffers = getattr(_tls, "buffers", None)
    if buffers is None or buffers.size < size:
        buffers = _tls.buffers = _Buffers(max(size, 1 << 14))
    return buffers


_rounders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_rounders_lock = threading.Lock()


def arith_rounder(grid: UniformGrid, channels: int, work: int) -> ArithRounder:
    """The grid's :class:`ArithRounder` for ``channels``, shared by every run of the
    grid (a layer's kernel pieces and bias) while the grid lives."""
    channels = channels if grid.per_channel else 1  # a scalar grid has one rounder
    with _rounders_lock:
        mine = _rounders.setdefault(grid, {})
        rounder = mine.get(channels)
    if rounder is None:
        rounder = ArithRounder(grid, channels, work)
        with _rounders_lock:
            rounder = _rounders[grid].setdefault(channels, rounder)
    return rounder


class ArithRounder:
    """Rounds flat runs of whole rows of one grid (C channels on the last axis).

    ``work``: the elements that will be rounded with the grid in all; the
    (n, C) level table is used when it holds at most ``LEVEL_TABLE_MAX``
    levels and is already computed or cheap beside that work, else the level
    formula (numpy only).
    """

    def __init__(self, grid: UniformGrid, channels: int, work: int) -> None:
        self.grid = grid
        self.n = grid.n_levels
        self.top = self.n - 2
        self.channels = channels if grid.per_channel else 1
        step = np.where(grid.step > 0, grid.step, 1.0)
        with np.errstate(over="ignore"):
            inverse = 1.0 / step
        # the estimate (v - origin) * (1 / step); a step whose inverse overflows
        # (subnormal) divides instead: a saturated estimate would leave the
        # bracket fix-up thousands of one-index moves to make
        self.divide = not bool(np.all(np.isfinite(inverse)))
        self.inv_step = step if self.divide else inverse
        self.origin = np.asarray(grid.origin, dtype=np.float64)
        self.active = ~np.asarray(grid.degenerate)
        self.any_degenerate = not bool(np.all(self.active))
        fast = kernels.compiled() is not None
        self.table = self._level_table(work, fast)
        self._table32 = None
        self.kernel_params = None  # origin, inverse step, divide, active, zero region
        self.formula = None  # the grid's level formula, for the kernels without a table
        if fast:
            per = lambda a, dtype: np.array(  # noqa: E731 - writable, contiguous (C,)
                np.broadcast_to(a, (self.channels,)), dtype=dtype
            )
            zlo, zhi, zfix = self._zero_region()
            self.kernel_params = (per(self.origin, np.float64), per(self.inv_step, np.float64),
                                  self.divide, per(self.active, np.bool_), per(zlo, np.float64),
                                  per(zhi, np.float64), per(zfix, np.int64))  # fmt: skip
            if self.table is None:
                kind, a, b, k, m = grid.formula()
                zero = np.where(np.asarray(grid.zero_index) >= 0, grid.zero_index, -1)
                self.formula = (kind, per(a, np.float64), per(b, np.float64), float(k), float(m),
                                per(zero, np.int64))  # fmt: skip
        self._tiles: dict[int, tuple] = {}  # by chunk size (a race only computes one twice)

    def _zero_region(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lo, hi, fix) per channel: the values ``[lo, hi)`` between a reserved zero's
        old (affine) level and 0, which the affine estimate puts one index off, and the
        index they take (an empty region where no level was replaced).  Only a speed
        hint for the kernels: their bracket fix-up is exact whatever it says."""
        z = np.asarray(self.grid.zero_index)
        affine = self.grid._affine_level(np.maximum(z, 0).astype(np.float64))
        below = affine < 0  # old level below zero: [old, 0) belongs to the level before
        lo = np.where(below, affine, 0.0)
        hi = np.where(below, 0.0, affine)
        fix = np.clip(np.where(below, z - 1, z), 0, self.top)
        empty = z < 0
        return np.where(empty, 1.0, lo), np.where(empty, 0.0, hi), np.where(empty, 0, fix)

    def _level_table(self, work: int, fast: bool) -> np.ndarray | None:
        """The flat float64 level table (level i of channel c at i * C + c), or None
        when the formula is cheaper.

        A level costs about as much to tabulate as a quarter of an element's two
        formula evaluations in numpy (measured): tabulate when the table is under 4x
        the work; the kernels compute a level about as fast as numpy tabulates one,
        so for them only a table smaller than the work pays.  Neighbouring elements
        (channels) of similar magnitude read neighbouring entries.
        """
        grid, n = self.grid, self.n
        cached = "levels" in vars(grid)
        levels = self.channels * n
        if levels > LEVEL_TABLE_MAX or not (cached or levels <= (1 if fast else 4) * work):
            return None
        if cached:
            table = np.ascontiguousarray(grid.levels.reshape(-1, n).T)
        else:  # the grid's own level_at on an (n, 1) index: grid.levels, transposed
            index = np.arange(n, dtype=np.float64)[:, None]
            table = np.broadcast_to(grid.level_at(index), (n, self.channels))
        return np.array(table, dtype=np.float64, order="C").reshape(-1)

    @property
    def table32(self) -> np.ndarray:
        """The level table in float32 (the numpy path's results), made when first needed."""
        if self._table32 is None:
            self._table32 = self.table.astype(np.float32)
        return self._table32

    @property
    def chunk_elements(self) -> int:
        """Elements per :meth:`round` call: whole rows, an even number (so that drawn
        words continue one stream from chunk to chunk)."""
        size = KERNEL_CHUNK if self.kernel_params is not None else NUMPY_CHUNK
        return self.channels * max(2, size // self.channels // 2 * 2)

    def _tiled(self, m: int) -> tuple:
        """Per-element parameters of a flat chunk of ``m`` elements (rows of C):
        (origin, inverse step (the step when dividing), active, channel (table path)
        or grid of the elements)."""
        got = self._tiles.get(m)
        if got is not None:
            return got
        if not self.grid.per_channel:
            got = (self.origin, self.inv_step, self.active, 0, self.grid)
        else:
            rows = m // self.channels
            channel = np.tile(np.arange(self.channels, dtype=np.intp), rows)
            grid = self.grid.take_channels(channel) if self.table is None else None
            got = (
                np.tile(self.origin, rows),
                np.tile(self.inv_step, rows),
                np.tile(self.active, rows) if self.any_degenerate else True,
                channel,
                grid,
            )
        self._tiles[m] = got
        return got

    def _levels(self, tiled: tuple, i: np.ndarray, where: np.ndarray | None, out=None):
        """Levels ``i`` of the chunk's elements ``where`` (all when None), float64."""
        channel, grid = tiled[3], tiled[4]
        if self.table is not None:
            if self.channels == 1:
                return np.take(self.table, i, out=out, mode="wrap")
            index = i * self.channels + (channel if where is None else channel[where])
            return np.take(self.table, index, out=out, mode="wrap")
        if where is not None and grid.per_channel:
            grid = grid.take_channels(where)
        levels = grid.level_at(i)
        if out is None:
            return levels
        np.copyto(out, levels)
        return out

    def bracket(self, v: np.ndarray, buffers: _Buffers) -> tuple[np.ndarray, ...]:
        """``(i, low, high)`` for flat float64 ``v``: i in [0, n-2] with
        ``low = L(i) <= v < L(i+1) = high`` (ends open); inactive (degenerate)
        channels stay at the estimate.  The results live in ``buffers``."""
        m, top = v.size, self.top
        tiled = self._tiled(m)
        origin, inv_step, active, channel = tiled[:4]
        C = self.channels
        t, low, high = (x[:m] for x in buffers.f64[1:4])
        i, j = (x[:m] for x in buffers.ints)
        np.subtract(v, origin, out=t)
        with np.errstate(over="ignore"):  # +-inf when huge: clipped below
            (np.divide if self.divide else np.multiply)(t, inv_step, out=t)
        np.clip(t, 0, top, out=t)
        np.copyto(i, t, casting="unsafe")  # truncation: floor of a value in [0, top]
        if self.table is not None:
            np.multiply(i, C, out=j)
            if C > 1:
                np.add(j, channel, out=j)
            np.take(self.table, j, out=low, mode="wrap")
            np.add(j, C, out=j)
            np.take(self.table, j, out=high, mode="wrap")
        else:
            self._levels(tiled, i, None, low)
            self._levels(tiled, i + 1, None, high)
        # outside the bracket (rare: next to a reserved zero, at float ties), not
        # counting the ends (below level 0, at or above level n-1: i stays)
        bad, m2, m3 = (x[:m] for x in buffers.masks)
        np.less(v, low, out=bad)
        np.greater(i, 0, out=m2)
        np.logical_and(bad, m2, out=bad)
        np.greater_equal(v, high, out=m2)
        np.less(i, top, out=m3)
        np.logical_and(m2, m3, out=m2)
        np.logical_or(bad, m2, out=bad)
        if self.any_degenerate:
            np.logical_and(bad, active, out=bad)
        return self._fix_up(v, i, low, high, tiled, np.flatnonzero(bad))

    def _fix_up(self, v, i, low, high, tiled, where) -> tuple[np.ndarray, ...]:
        """Move the elements ``where`` one index at a time until their bracket holds."""
        top = self.top
        for _ in range(self.n + 1):
            if where.size == 0:
                return i, low, high
            vs, iw = v[where], i[where]
            move = ((vs >= high[where]) & (iw < top)).astype(np.intp)
            move -= (vs < low[where]) & (iw > 0)
            keep = move != 0
            where, iw, vs = where[keep], iw[keep] + move[keep], vs[keep]
            lw, hw = self._levels(tiled, iw, where), self._levels(tiled, iw + 1, where)
            i[where], low[where], high[where] = iw, lw, hw
            still = ((vs < lw) & (iw > 0)) | ((vs >= hw) & (iw < top))
            where = where[still]
        raise RuntimeError("bracketing did not converge")  # pragma: no cover

    def round(self, v: np.ndarray, u: np.ndarray | None, out: np.ndarray) -> None:
        """Round flat float32 ``v`` (whole rows) into float32 ``out``: nearest when
        ``u`` is None, else stochastic with draws ``u`` (same length): float ``u`` in
        [0, 1) or uint32 words ``w`` (``u = w * 2**-32``)."""
        params = self.kernel_params
        if params is not None:
            if self.table is not None:
                done = kernels.round_run(v, out, self.table, self.channels, params, u)
            else:
                done = kernels.round_formula_run(
                    v, out, self.n, self.channels, self.formula, params, u
                )
            if done:
                return
        if u is not None and u.dtype.kind == "u":
            u = np.ldexp(u.astype(np.float64), -32)
        m = v.size
        b = _buffers(m)
        v64 = b.f64[0][:m]
        np.copyto(v64, v)
        i, low, high = self.bracket(v64, b)
        up = self._decide(v64, i, low, high, u, b)
        self._select(i, up, low, high, out, b)
        if self.any_degenerate:
            keep = self._tiled(m)[2]  # active channels take the rounded value
            np.copyto(out, v, where=~np.broadcast_to(keep, out.shape))

    def _decide(self, v64, i, low, high, u, b: _Buffers) -> np.ndarray:
        """The bool "round up" of every element (nearest, or stochastic with ``u``);
        overwrites ``v64`` with ``v - low``."""
        m = v64.size
        t = b.f64[1][:m]  # the bracket is done with t, the second index buffer and the masks
        up, m2, m3 = (x[:m] for x in b.masks)
        np.subtract(high, v64, out=t)
        np.subtract(v64, low, out=v64)  # v64 now holds v - low
        np.less(t, v64, out=up)  # nearest: up iff (high - v) < (v - low); a tie stays down
        if u is None:
            return up
        # the closest level is an end (0 or n-1) exactly when i == 0 and not up, or
        # i == n-2 and up; those stay there, the others go up iff u < p
        np.equal(i, 0, out=m2)
        np.greater(m2, up, out=m2)  # and not up
        np.equal(i, self.top, out=m3)
        np.logical_and(m3, up, out=m3)
        np.logical_or(m2, m3, out=m2)  # at an end
        np.subtract(high, low, out=t)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(v64, t, out=t)  # p = (v - low) / (high - low)
        np.less(np.asarray(u, dtype=np.float64).reshape(-1), t, out=m3)  # u < p
        np.bitwise_xor(m3, up, out=up)  # at an end the nearest decision, else u < p:
        np.logical_and(up, m2, out=up)  # m3 ^ ((m3 ^ up) & at_end); no masked copies,
        np.bitwise_xor(m3, up, out=up)  # which numpy runs element by element
        return up

    def _select(self, i, up, low, high, out, b: _Buffers) -> None:
        """``out`` = level i + up, as float32."""
        m = i.size
        if self.table is not None:  # the result is level i + up of the table
            np.add(i, up, out=i)
            if self.channels > 1:
                np.multiply(i, self.channels, out=i)
                np.add(i, self._tiled(m)[3], out=i)
            np.take(self.table32, i, out=out, mode="wrap")
            return
        # high where up, else low, bit for bit: low ^ ((low ^ high) & -up)
        select = b.ints[1][:m].view(np.uint64)
        np.subtract(0, up, out=select.view(np.intp), dtype=np.intp)  # all ones where up
        low_bits, high_bits = low.view(np.uint64), high.view(np.uint64)
        np.bitwise_xor(high_bits, low_bits, out=high_bits)
        np.bitwise_and(high_bits, select, out=high_bits)
        np.bitwise_xor(low_bits, high_bits, out=low_bits)
        np.copyto(out, low, casting="same_kind")


def round_arithmetic(
    v: np.ndarray, grid: UniformGrid, u: np.ndarray | None, work: int | None = None
) -> np.ndarray:
    """Nearest (``u`` None) or stochastic rounding of float32 ``v``; float32 result.

    ``work``: elements rounded with this grid in all (default ``v.size``),
    for the choice of level lookup.  Degenerate channels (all levels equal)
    keep their values.
    """
    v = np.ascontiguousarray(v, dtype=np.float32)
    channels = v.shape[-1] if grid.per_channel else 1
    out = np.empty_like(v)
    rounder = ArithRounder(grid, channels, v.size if work is None else work)
    rounder.round(v.reshape(-1), None if u is None else np.reshape(u, -1), out.reshape(-1))
    return out
