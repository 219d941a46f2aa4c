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

Two exact implementations: scalar grids use the breakpoint tables of
:mod:`engine.quant.tables` (float32 gathers, in chunks that stay in cache);
per-channel grids (parameters of shape (C,) broadcast on the last axis) and
any grid whose table cannot be built use float64 index arithmetic with an
exact bracketing fix-up.  Both give the same bits as a per-element loop.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections import OrderedDict

import numpy as np

from engine.errors import InputError
from engine.quant.arith import arith_rounder
from engine.quant.grids import UniformGrid
from engine.quant.tables import NearestTable, Scratch, StochasticTable

CHUNK = 32768
ARITH_CHUNK = 16384
TABLE_CACHE_SIZE = 128
_tls = threading.local()
_tables: OrderedDict[tuple[str, bytes], NearestTable | StochasticTable | None] = OrderedDict()
_tables_lock = threading.Lock()
_by_grid: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MISSING = object()
Table = NearestTable | StochasticTable


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


def _scratch() -> Scratch:
    scratch = getattr(_tls, "scratch", None)
    if scratch is None or scratch.size != CHUNK:
        scratch = _tls.scratch = Scratch(CHUNK)
    return scratch


def clear_table_cache() -> None:
    """Forget the cached lookup tables (for cold-start benchmarks)."""
    with _tables_lock:
        _tables.clear()
        _by_grid.clear()


def worth_building(n_levels: int, work: int, stochastic: bool) -> bool:
    """Whether building a table of ``n_levels`` levels pays off for rounding ``work``
    elements with it, rather than taking the (exact, slower) arithmetic path.

    Measured here: a build costs about 60 us + 90 ns (nearest) or 60 ns
    (stochastic) per level; a table saves about 16 ns (nearest) or 22 ns
    (stochastic) per element over the arithmetic path.  Either way the bits
    are the same: this only picks the faster exact path.
    """
    if stochastic:
        return work > 3000 + 3 * n_levels
    return work > 4000 + 6 * n_levels


def prepare(grid: UniformGrid, stochastic: bool, work: int | None = None) -> Table | None:
    """The lookup table of a scalar grid; None means: use the arithmetic path.

    Tables depend only on the levels, so they are cached by value (LRU):
    requantizing at settings seen before skips the build.  The grid object
    also remembers its table, so the many tensors of one grid skip even the
    cache look-up (whose key holds all the levels).  ``work``: how many
    elements will be rounded with the grid; a table that is not cached yet is
    then built only when :func:`worth_building` says it pays off (a 16-bit
    grid for one small layer takes the arithmetic path).
    """
    if grid.per_channel or bool(grid.degenerate):
        return None
    kind = "stochastic" if stochastic and grid.n_levels > 2 else "nearest"
    with _tables_lock:
        mine = _by_grid.setdefault(grid, {})
        if kind in mine:
            return mine[kind]
    key = (kind, grid.levels.tobytes())
    with _tables_lock:
        table = _tables.get(key, _MISSING)
        if table is not _MISSING:
            _tables.move_to_end(key)
    if table is _MISSING:
        if work is not None and not worth_building(grid.n_levels, work, kind == "stochastic"):
            return None
        builder = StochasticTable if kind == "stochastic" else NearestTable
        table = builder.build(grid.levels, float(grid.origin), float(grid.step))
    with _tables_lock:
        _tables[key] = table
        while len(_tables) > TABLE_CACHE_SIZE:
            _tables.popitem(last=False)
        _by_grid.setdefault(grid, {})[kind] = table
    return table


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


def chunk_elements(grid: UniformGrid, table: Table | None, channels: int) -> int:
    """Elements per chunk: ``CHUNK`` with a table; with the arithmetic path whole rows
    of ``channels`` (per-channel grids), about ``ARITH_CHUNK``.  Always even."""
    if table is not None:
        return CHUNK
    rows = channels if grid.per_channel else 1
    return rows * max(2, ARITH_CHUNK // rows // 2 * 2)


def round_tensor(
    v: np.ndarray, grid: UniformGrid, draws: np.ndarray | np.random.PCG64 | None
) -> np.ndarray:
    """Round finite, C-contiguous float32 ``v``: nearest when ``draws`` is None, else
    stochastic with an array ``u`` or a bit generator (its words drawn chunk by chunk).

    Works in chunks of the flat tensor that stay in cache; for a per-channel
    grid a chunk is whole rows of C channels.  Chunks hold an even number of
    elements (but the last), so generator draws continue one stream.
    """
    table = prepare(grid, stochastic=draws is not None)
    out = np.empty_like(v)
    flat = None if draws is None or isinstance(draws, np.random.PCG64) else draws.reshape(-1)
    round_into(
        v.reshape(-1),
        out.reshape(-1),
        grid,
        table,
        draws if flat is None else flat,
        v.shape[-1] if v.ndim else 1,
    )
    return out


def round_into(
    flat_v: np.ndarray,
    flat_out: np.ndarray,
    grid: UniformGrid,
    table: Table | None,
    draws: np.ndarray | np.random.PCG64 | None,
    channels: int,
    clip: bool = True,
    work: int | None = None,
) -> None:
    """Round the 1-D float32 ``flat_v`` into ``flat_out`` (same length) with ``table``
    (:func:`prepare`'s, None: the arithmetic path).

    ``flat_v`` is a run of a C-order tensor whose last axis has ``channels``
    entries, starting on a row (per-channel grids) at an even element.
    ``draws``: None (nearest), the run's own draws (``u`` or uint32 words,
    same length) or a bit generator positioned at the run's first element
    (:func:`draw_generator` with ``start``).  ``clip=False`` (table path
    only) when the run's values lie in a range ``table.index.covers``.
    ``work``: elements rounded with this grid in all, for the arithmetic
    path's choice of level lookup (default: the run's).
    """
    scratch = _scratch()
    step = chunk_elements(grid, table, channels)
    arith = None if table is not None else arith_rounder(grid, channels, work or flat_v.size)
    stochastic = draws is not None
    generator = draws if isinstance(draws, np.random.PCG64) else None
    for start in range(0, flat_v.size, step):
        stop = min(start + step, flat_v.size)
        v, out = flat_v[start:stop], flat_out[start:stop]
        u = None
        if stochastic:
            u = draw_words(generator, stop - start) if generator is not None else draws[start:stop]
        if arith is not None:
            if u is not None and u.dtype.kind == "u":
                u = np.ldexp(u.astype(np.float64), -32)
            arith.round(v, u, out)
        elif isinstance(table, NearestTable):
            table.round_chunk(v, out, scratch, clip)
        else:
            table.round_chunk(v, u, out, scratch, clip)
