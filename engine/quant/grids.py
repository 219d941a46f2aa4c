"""Quantization grids: small immutable value objects that produce levels.

A grid is the sorted set of values a quantized weight may take.  Every grid
here is *uniform* (level ``i`` is an affine function of ``i``), except that a
reserved zero may replace one level.  All arithmetic is float64 and every
level is computed by :meth:`UniformGrid.level_at` with the same operations in
the same order, so the vectorized rounding kernels and any per-element
reference implementation see bit-identical levels.

Parameters are scalars (one grid for a whole tensor or a group of tensors) or
1-D arrays of length C (one grid per output channel; the rounding kernels then
broadcast them along the *last* axis of an HWIO kernel or of a bias).

* :class:`LinearGrid` -- the low-precision SqueezeDet fork's grid:
  ``2**bits`` levels ``lo + i*(hi-lo)/(2**bits-1)``, optionally with the level
  closest to zero replaced by exactly 0.
* :class:`SymmetricGrid` -- ``k*step`` for ``k`` in ``[-(2**(bits-1)-1),
  2**(bits-1)-1]`` ("narrow range" signed integers, exact zero, exact symmetry);
  ``step = max_abs/(2**(bits-1)-1)``.  With one bit it is ``{-max_abs, +max_abs}``.
* :class:`Pow2Grid` -- Ristretto dynamic fixed point: ``k * 2**-frac_len`` for
  ``k`` in ``[-2**(bits-1), 2**(bits-1)-1]`` (two's complement).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from squeezelens.engine.errors import InputError

MAX_BITS = 16


def _as_param(value: float | np.ndarray, name: str) -> np.ndarray:
    """A 0-d or 1-d float64 copy of a grid parameter, read-only, finite."""
    arr = np.array(value, dtype=np.float64)
    if arr.ndim > 1:
        raise InputError(f"grid parameter {name} must be a scalar or 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"grid parameter {name} must be finite")
    arr.setflags(write=False)
    return arr


def _check_bits(bits: int, low: int = 1) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise InputError(f"bits must be an integer, got {bits!r}")
    if not low <= bits <= MAX_BITS:
        raise InputError(f"bits must be between {low} and {MAX_BITS}, got {bits}")


class UniformGrid:
    """Shared machinery of the grids: ``n_levels`` levels ``level_at(i)``.

    Subclasses define ``n_levels``, ``_affine_level(i)`` (float64, exact
    formula), ``origin``/``step`` (float64 arrays, scalar or (C,)) and
    ``zero_index`` (int array, -1 where no level is replaced by zero).
    """

    bits: int
    _channel_fields: tuple[str, ...] = ()  # the (C,) parameters, for take_channels

    @property
    def n_levels(self) -> int:
        """Number of indices ``i`` in ``[0, n_levels)``."""
        raise NotImplementedError

    @property
    def origin(self) -> np.ndarray:
        """Level 0 before any zero replacement (scalar or (C,))."""
        raise NotImplementedError

    @property
    def step(self) -> np.ndarray:
        """Distance between neighbouring levels (scalar or (C,)); 0 if degenerate."""
        raise NotImplementedError

    @property
    def zero_index(self) -> np.ndarray:
        """Index replaced by an exact 0 (scalar or (C,) int64), -1 for none."""
        return np.full(np.shape(self.step), -1, dtype=np.int64)

    def _affine_level(self, i: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def per_channel(self) -> bool:
        """True when the parameters are (C,) arrays broadcast on the last axis."""
        return np.ndim(self.step) == 1

    @cached_property
    def degenerate(self) -> np.ndarray:
        """Bool (scalar or (C,)): all levels coincide, so every value is kept as is."""
        return np.asarray(self.step) == 0.0

    def formula(self) -> tuple[int, np.ndarray, np.ndarray, float, float]:
        """``(kind, a, b, k, m)`` such that ``_affine_level(i)`` is, in float64 and with
        the same operations, ``a + (i * b) / m`` (kind 0) or ``(i - k) * b`` (kind 1);
        ``a`` and ``b`` scalars or (C,).  For compiled kernels that compute levels
        instead of reading them from a table."""
        raise NotImplementedError

    def level_at(self, i: np.ndarray) -> np.ndarray:
        """Level of integer index array ``i`` (float64, broadcast with (C,) params)."""
        i = np.asarray(i, dtype=np.float64)
        levels = self._affine_level(i)
        z = self.zero_index
        if np.any(z >= 0):
            levels = np.where(i == z, 0.0, levels)
        return levels

    def take_channels(self, channels: np.ndarray) -> UniformGrid:
        """The grid of the given channels (an index array) of a per-channel grid; self if scalar.

        The picked parameters come from this (validated) grid, so they are not
        checked again, and the per-channel values already derived from them
        (step, zero index, degenerate) are picked too: the same numbers a
        fresh grid would compute, elementwise, without the cost (the rounding
        kernels call this for a few elements at a time).
        """
        if not self.per_channel:
            return self
        out = copy.copy(self)
        for name in self._channel_fields:
            picked = np.asarray(getattr(self, name))[channels]
            picked.setflags(write=False)
            object.__setattr__(out, name, picked)
        derived = vars(out)
        derived.pop("levels", None)
        for name in ("step", "zero_index", "degenerate"):
            if name in derived:
                picked = np.asarray(derived[name])[channels]
                picked.setflags(write=False)
                derived[name] = picked
        return out

    @cached_property
    def levels(self) -> np.ndarray:
        """All levels, float64, shape (n,) or (C, n) for per-channel grids; sorted."""
        i = np.arange(self.n_levels, dtype=np.float64)
        if self.per_channel:
            return np.ascontiguousarray(self.level_at(i[:, None]).T)
        return self.level_at(i)

    @property
    def min_level(self) -> np.ndarray:
        """Smallest level (scalar or (C,))."""
        return self.level_at(np.zeros(np.shape(self.step)))

    @property
    def max_level(self) -> np.ndarray:
        """Largest level (scalar or (C,))."""
        return self.level_at(np.full(np.shape(self.step), self.n_levels - 1))

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The range the grid spans, (low, high), before any zero replacement."""
        return self.origin, self._affine_level(np.asarray(float(self.n_levels - 1)))

    @property
    def exact_zero_index(self) -> np.ndarray | None:
        """Index of the level that is exactly 0 by construction, None if there is none."""
        z = self.zero_index
        return None if np.all(z < 0) else z

    def describe(self) -> str:
        """Short human-readable summary, e.g. for logs."""
        return f"{type(self).__name__}(bits={self.bits}, n={self.n_levels})"


@dataclass(frozen=True, eq=False)
class LinearGrid(UniformGrid):
    """The fork's grid: ``2**bits`` levels from ``lo`` to ``hi`` inclusive.

    Level ``i`` is ``lo + (i*(hi-lo))/(2**bits-1)`` in float64 (the fork's
    formula, evaluated left to right).  With ``reserve_zero`` the level closest
    to zero (the lower one on a tie) is replaced by exactly 0, which keeps the
    levels sorted but makes the spacing uneven next to zero.
    ``lo``/``hi``: scalars or (C,) arrays with ``lo <= hi``.
    """

    lo: float | np.ndarray
    hi: float | np.ndarray
    bits: int
    reserve_zero: bool = False
    _channel_fields = ("lo", "hi")

    def __post_init__(self) -> None:
        _check_bits(self.bits)
        lo, hi = _as_param(self.lo, "lo"), _as_param(self.hi, "hi")
        if lo.shape != hi.shape:
            raise InputError(f"lo and hi shapes differ: {lo.shape} vs {hi.shape}")
        if np.any(lo > hi):
            raise InputError("grid lo must not exceed hi")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def n_levels(self) -> int:
        return 2**self.bits

    @property
    def origin(self) -> np.ndarray:
        return self.lo

    @cached_property
    def step(self) -> np.ndarray:
        return (self.hi - self.lo) / (self.n_levels - 1)

    def _affine_level(self, i: np.ndarray) -> np.ndarray:
        return self.lo + (i * (self.hi - self.lo)) / (self.n_levels - 1)

    def formula(self) -> tuple[int, np.ndarray, np.ndarray, float, float]:
        return 0, self.lo, self.hi - self.lo, 0.0, float(self.n_levels - 1)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo, self.hi

    @cached_property
    def zero_index(self) -> np.ndarray:
        """Index of the level closest to 0 (lower on a tie), -1 without reserve_zero."""
        shape = np.shape(self.step)
        if not self.reserve_zero:
            return np.full(shape, -1, dtype=np.int64)
        # |level(i)| is V-shaped in i: the exact minimum is within one index of
        # the estimate, so compare three candidates exactly (lowest first).
        span = np.where(self.step > 0, self.step, 1.0)
        guess = np.clip(np.rint(-self.lo / span), 0, self.n_levels - 1)
        cand = np.clip(
            guess + np.array([-1.0, 0.0, 1.0]).reshape((3,) + (1,) * len(shape)),
            0,
            self.n_levels - 1,
        )
        best = np.argmin(np.abs(self._affine_level(cand)), axis=0)
        z = np.take_along_axis(cand, best[None], axis=0)[0].astype(np.int64)
        z.setflags(write=False)
        return z

    def describe(self) -> str:
        zero = ", zero reserved" if self.reserve_zero else ""
        if self.per_channel:
            return f"linear {self.bits}-bit grid per channel ({self.step.size} channels){zero}"
        return f"linear {self.bits}-bit grid [{float(self.lo):.6g}, {float(self.hi):.6g}]{zero}"


@dataclass(frozen=True, eq=False)
class SymmetricGrid(UniformGrid):
    """Levels ``k*step``, ``|k| <= 2**(bits-1)-1``, ``step = max_abs/(2**(bits-1)-1)``.

    ``2**bits - 1`` levels with an exact zero and exact symmetry (the usual
    "narrow range" signed grid).  One bit gives ``{-max_abs, +max_abs}``; only
    there does ``reserve_zero`` change anything (it replaces ``-max_abs``, the
    lower of the two levels equally close to zero).  ``max_abs``: scalar or (C,).
    """

    max_abs: float | np.ndarray
    bits: int
    reserve_zero: bool = False
    _channel_fields = ("max_abs",)

    def __post_init__(self) -> None:
        _check_bits(self.bits)
        m = _as_param(self.max_abs, "max_abs")
        if np.any(m < 0):
            raise InputError("grid max_abs must be >= 0")
        object.__setattr__(self, "max_abs", m)

    @property
    def _half(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.bits > 1 else 1

    @property
    def n_levels(self) -> int:
        return 2**self.bits - 1 if self.bits > 1 else 2

    @cached_property
    def step(self) -> np.ndarray:
        return self.max_abs / self._half if self.bits > 1 else 2.0 * self.max_abs

    @property
    def origin(self) -> np.ndarray:
        return -self.max_abs

    def _affine_level(self, i: np.ndarray) -> np.ndarray:
        if self.bits == 1:
            return (2.0 * i - 1.0) * self.max_abs
        return (i - self._half) * self.step

    def formula(self) -> tuple[int, np.ndarray, np.ndarray, float, float]:
        if self.bits == 1:  # (i - 0.5) * (2 m) is (2 i - 1) * m exactly: both are +-m
            return 1, np.zeros_like(self.max_abs), 2.0 * self.max_abs, 0.5, 1.0
        return 1, np.zeros_like(self.step), self.step, float(self._half), 1.0

    @property
    def zero_index(self) -> np.ndarray:
        z = 0 if (self.bits == 1 and self.reserve_zero) else -1
        return np.full(np.shape(self.step), z, dtype=np.int64)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return -self.max_abs, self.max_abs

    @property
    def exact_zero_index(self) -> np.ndarray | None:
        if self.bits == 1:
            return None if not self.reserve_zero else self.zero_index
        return np.full(np.shape(self.step), self._half, dtype=np.int64)

    def describe(self) -> str:
        if self.per_channel:
            return f"symmetric {self.bits}-bit grid per channel ({self.step.size} channels)"
        return f"symmetric {self.bits}-bit grid +-{float(self.max_abs):.6g}"


@dataclass(frozen=True, eq=False)
class Pow2Grid(UniformGrid):
    """Dynamic fixed point: ``k * 2**-frac_len``, ``k`` in ``[-2**(bits-1), 2**(bits-1)-1]``.

    Values beyond the ends are clipped to them by rounding.  Zero is always a
    level.  ``frac_len``: int scalar or (C,) int array (may be negative).
    ``degenerate`` marks channels whose weights are all zero (no finite
    ``frac_len``); they are kept as they are.
    """

    frac_len: int | np.ndarray
    bits: int
    degenerate_mask: bool | np.ndarray = False
    _channel_fields = ("frac_len", "degenerate_mask")

    def __post_init__(self) -> None:
        _check_bits(self.bits)
        fl = np.array(self.frac_len, dtype=np.int64)
        if fl.ndim > 1:
            raise InputError("frac_len must be a scalar or 1-D")
        fl.setflags(write=False)
        object.__setattr__(self, "frac_len", fl)
        deg = np.broadcast_to(np.array(self.degenerate_mask, dtype=bool), fl.shape).copy()
        deg.setflags(write=False)
        object.__setattr__(self, "degenerate_mask", deg)

    @property
    def n_levels(self) -> int:
        return 2**self.bits

    @cached_property
    def step(self) -> np.ndarray:
        return np.where(self.degenerate_mask, 0.0, np.ldexp(1.0, -self.frac_len))

    @property
    def origin(self) -> np.ndarray:
        return -(2.0 ** (self.bits - 1)) * self.step

    def _affine_level(self, i: np.ndarray) -> np.ndarray:
        return (i - 2.0 ** (self.bits - 1)) * self.step

    def formula(self) -> tuple[int, np.ndarray, np.ndarray, float, float]:
        return 1, np.zeros_like(self.step), self.step, 2.0 ** (self.bits - 1), 1.0

    @property
    def exact_zero_index(self) -> np.ndarray | None:
        return np.full(np.shape(self.step), 2 ** (self.bits - 1), dtype=np.int64)

    def describe(self) -> str:
        if self.per_channel:
            return f"pow2 {self.bits}-bit fixed point per channel ({self.step.size} channels)"
        return f"pow2 {self.bits}-bit fixed point, fractional length {int(self.frac_len)}"


def pow2_frac_len(max_abs: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Ristretto's fractional length for magnitudes ``max_abs`` (scalar or (C,)).

    ``il = ceil(log2(max_abs)) + 1`` (sign bit included), ``fl = bits - il``;
    computed exactly with frexp (``max_abs = f * 2**e``, ``f`` in [0.5, 1):
    ``ceil(log2) = e - 1`` when ``f == 0.5``, else ``e``).  As in Ristretto, a
    positive maximum that is an exact power of two ends one step above the top
    level and is clipped.  Returns ``(frac_len, degenerate)`` where degenerate
    marks ``max_abs == 0``.
    """
    m = np.asarray(max_abs, dtype=np.float64)
    frac, exp = np.frexp(m)
    ceil_log2 = np.where(frac == 0.5, exp - 1, exp)
    degenerate = m == 0.0
    frac_len = np.where(degenerate, 0, bits - (ceil_log2 + 1)).astype(np.int64)
    return frac_len, degenerate
