"""Compiled rounding kernels: the fork's rules in one pass per element (numba).

Why: in numpy one element's rounding is spread over a dozen array passes
(estimate, gathers, fix-up masks, comparisons), each a trip through memory and,
with several threads, through the interpreter lock; compiled, it is a few
nanoseconds per element and a whole run of a tensor releases the lock once.

The rules are those of :mod:`engine.quant.arith` (which stays the fallback when
numba is missing):

* bracket: ``i`` is the largest index in ``[0, n-2]`` with ``L(i) <= v`` (0
  below the grid), found from the affine estimate ``(v - origin) * inv_step``
  (or ``/ step`` when the inverse overflows), corrected for a reserved zero and
  moved one index at a time;
* nearest: up iff ``(L(i+1) - v) < (v - L(i))`` in float64 (a tie stays down;
  beyond the ends this picks the end level);
* stochastic: a value whose closest level is the first or the last stays
  there; any other goes up iff ``draw * scale < (v - L(i)) / (L(i+1) - L(i))``
  in float64, ``draw`` a uint32 word with ``scale = 2**-32`` or a float draw
  ``u`` with ``scale = 1`` (both products are exact);
* the result is the float32 cast of the level picked; a degenerate channel
  (all levels equal) keeps its values.

Data layout: a run is a flat float32 slice of whole rows of ``C`` channels
(``C == 1`` for a scalar grid); level ``i`` of channel ``c`` is
``table[i * C + c]`` (float64), or computed by the grid's own formula when
such a table would cost more than the rounding; ``origin``, ``inv_step``,
``active`` are (C,) arrays.  The selections are arithmetic (an index ``i + up``), not
branches: the up/down decisions are coin flips that a branch would mispredict.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

_NO_DRAWS = np.zeros(0, np.uint32)
DISABLE_ENV = "SQUEEZELENS_NO_JIT"  # set to 1: always take the numpy path (tests, debugging)
_lock = threading.Lock()
_compiled: SimpleNamespace | None = None
_failed = False


def _build() -> SimpleNamespace:
    from squeezelens.engine.quant import _jit  # imports numba: ImportError when it is not installed

    return SimpleNamespace(
        nearest=_jit.nearest,
        stochastic=_jit.stochastic,
        nearest_scalar=_jit.nearest_scalar,
        stochastic_scalar=_jit.stochastic_scalar,
        min_max=_jit.min_max,
        round_formula=_jit.round_formula,
    )


def compiled() -> SimpleNamespace | None:
    """The kernels (compiled on first use, cached on disk by numba), or None when numba
    is not installed or :data:`DISABLE_ENV` is set."""
    global _compiled, _failed
    if os.environ.get(DISABLE_ENV) == "1":
        return None
    if _compiled is not None or _failed:
        return _compiled
    with _lock:
        if _compiled is None and not _failed:
            try:
                _compiled = _build()
            except ImportError:
                _failed = True
    return _compiled


def _draw_scale(draws: np.ndarray | None) -> float:
    """What a draw is multiplied by to compare with p: 2**-32 for uint32 words, else 1."""
    return 2.0**-32 if draws is not None and draws.dtype.kind == "u" else 1.0


def round_run(
    v: np.ndarray,
    out: np.ndarray,
    table: np.ndarray,
    channels: int,
    params: tuple,
    draws: np.ndarray | None,
) -> bool:
    """Round the flat float32 run ``v`` (whole rows) into ``out``; False when no kernel
    is available (the caller then takes the numpy path).

    params: (origin (C,) float64, inverse step (C,) float64, divide, active (C,) bool,
    and the reserved zero's region [lo, hi) (C,) float64 with its index (C,) int64:
    see :mod:`engine.quant._jit`).
    draws: None (nearest), uint32 words or float64 draws in [0, 1), one per element.
    """
    kernels = compiled()
    if kernels is None:
        return False
    origin, inv, divide, active, zlo, zhi, zfix = params
    scale = _draw_scale(draws)
    if channels == 1 and active[0]:  # a scalar grid: the simpler loop is ~30 % faster
        o, i, region = origin[0], inv[0], (zlo[0], zhi[0], zfix[0])
        if draws is None:
            kernels.nearest_scalar(v, out, table, o, i, divide, region)
        else:
            kernels.stochastic_scalar(v, out, table, o, i, divide, region, draws, scale)
    elif draws is None:
        kernels.nearest(v, out, table, channels, origin, inv, divide, active, zlo, zhi, zfix)
    else:
        kernels.stochastic(
            v, out, table, channels, origin, inv, divide, active, zlo, zhi, zfix, draws, scale
        )
    return True


def round_formula_run(
    v: np.ndarray,
    out: np.ndarray,
    n_levels: int,
    channels: int,
    grid: tuple,
    params: tuple,
    draws: np.ndarray | None,
) -> bool:
    """:func:`round_run` with each level computed by the grid's formula instead of read
    from a table; ``grid``: (kind, a (C,), b (C,), k, m, zero (C,) int64), see
    :meth:`engine.quant.grids.UniformGrid.formula`."""
    kernels = compiled()
    if kernels is None:
        return False
    origin, inv, divide, active, zlo, zhi, zfix = params
    scale = _draw_scale(draws)
    words = _NO_DRAWS if draws is None else draws
    kernels.round_formula(v, out, n_levels - 2, channels, grid, origin, inv, divide, active,
                          zlo, zhi, zfix, words, scale)  # fmt: skip
    return True


def min_max(values: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of a float32 array in one compiled pass, NaN if it holds one; None
    when no kernel is available."""
    kernels = compiled()
    if kernels is None:
        return None
    lo, hi, nan = kernels.min_max(values.reshape(-1))
    return (np.nan, np.nan) if nan else (lo, hi)


def compiled_on_disk() -> bool:
    """Whether numba's disk cache holds the kernels already (loading them then takes ~0.3 s,
    compiling them on a fresh install far longer): a GUI loads them before its first paint
    only then.  Looks where numba caches them (``NUMBA_CACHE_DIR`` when set, else beside
    the source); never imports numba."""
    source = Path(__file__).with_name("_jit.py")
    folder = os.environ.get("NUMBA_CACHE_DIR")
    places = [Path(folder)] if folder else [source.parent / "__pycache__"]
    return any(any(place.rglob(f"{source.stem}.*.nbi")) for place in places if place.is_dir())


def warm_up() -> bool:
    """Compile (or load from numba's disk cache) every kernel on a few elements, so that
    the first quantization a user asks for does not wait for it; False without numba."""
    kernels = compiled()
    if kernels is None:
        return False
    v = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
    out = np.empty_like(v)
    table = np.linspace(-1.0, 1.0, 4)
    one = (np.array([-1.0]), np.array([1.5]), False, np.array([True]),
           np.array([-0.2]), np.array([0.0]), np.array([1]))  # fmt: skip
    two = tuple(np.repeat(p, 2) if isinstance(p, np.ndarray) else p for p in one)
    frozen = v.copy()
    frozen.setflags(write=False)  # read-only inputs are another type to numba
    for values in (v, frozen):
        min_max(values)
        for draws in (None, np.arange(8, dtype=np.uint32), np.full(8, 0.5)):
            round_run(values, out, table, 1, one, draws)
            round_run(values, out, np.repeat(table, 2), 2, two, draws)
            grid = (0, np.array([-1.0, -1.0]), np.array([2.0, 2.0]), 0.0, 3.0, np.array([-1, -1]))
            round_formula_run(values, out, 4, 2, grid, two, draws)
    return True
