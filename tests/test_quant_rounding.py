"""Grids and rounding: property tests against per-element reference loops.

Every quantizer (linear with and without reserved zero, symmetric, pow2; per
tensor and per channel; nearest and stochastic) is checked on random values
plus the awkward ones: levels, midpoints and their float32 neighbours.
"""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import (
    LinearGrid,
    Pow2Grid,
    SymmetricGrid,
    arith,
    kernels,
    pow2_frac_len,
    round_nearest,
    round_stochastic,
)
from squeezelens.engine.quant.arith import round_arithmetic
from squeezelens.engine.quant.rounding import uniform_draws

SETTINGS = settings(max_examples=60, deadline=None)
PATHS = ("kernels", "numpy")  # the compiled kernels and the numpy fallback: the same bits


def numpy_only(path: str):
    """Within the block, round with the numpy passes (path "numpy") or as configured."""
    on = "1" if path == "numpy" else "0"
    return patch.dict("os.environ", {kernels.DISABLE_ENV: on})


def test_the_kernels_are_compiled_here() -> None:
    """numba is a dependency: the fast path must be what runs (else the figures lie)."""
    with numpy_only("kernels"):
        assert kernels.compiled() is not None


@st.composite
def grids(draw: st.DrawFn, max_bits: int = 7) -> LinearGrid | SymmetricGrid | Pow2Grid:
    """A scalar grid whose range contains 0 (as every range the quantizer builds does)."""
    kind = draw(st.sampled_from(["linear", "symmetric", "pow2"]))
    bits = draw(st.integers(1, max_bits))
    if kind == "pow2":
        return Pow2Grid(draw(st.integers(-4, 12)), bits)
    scale = draw(st.floats(1e-3, 1e3))
    if kind == "symmetric":
        return SymmetricGrid(scale, bits, draw(st.booleans()))
    lo = -scale * draw(st.floats(0.0, 1.0))
    hi = scale * draw(st.floats(0.0, 1.0))
    assume(hi > lo)
    grid = LinearGrid(lo, hi, bits, draw(st.booleans()))
    # a range of a few subnormals underflows the step: a degenerate grid (its values are
    # kept, tested on its own) whose levels are not even sorted, unlike the references'
    assume(bool(np.all(np.diff(grid.levels) > 0)))
    return grid


def awkward_values(grid, seed: int, count: int = 200) -> np.ndarray:
    """Random float32 values over (and a little beyond) the grid, plus levels and midpoints."""
    levels = grid.levels
    lo, hi = levels[0], levels[-1]
    rng = np.random.default_rng(seed)
    spread = rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), count)
    mids = (levels[:-1] + levels[1:]) / 2
    special = np.concatenate([levels, mids, [0.0]]).astype(np.float32)
    up, down = np.nextafter(special, np.float32(np.inf)), np.nextafter(special, np.float32(-np.inf))
    return np.concatenate([spread.astype(np.float32), special, up, down])


def reference_nearest(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """The fork's rule element by element: the closest level, the first one on a tie."""
    out = []
    for v in values.ravel().tolist():
        distances = [abs(v - level) for level in levels]
        out.append(levels[distances.index(min(distances))])
    return np.array(out, dtype=np.float32).reshape(values.shape)


def reference_stochastic(values: np.ndarray, levels: list[float], u: np.ndarray) -> np.ndarray:
    """The fork's stochastic rule element by element, with the given draws."""
    n, out = len(levels), []
    for v, draw in zip(
        values.ravel().tolist(), np.asarray(u, np.float64).ravel().tolist(), strict=True
    ):
        distances = [abs(v - level) for level in levels]
        k = distances.index(min(distances))
        if k in (0, n - 1):
            out.append(levels[k])
            continue
        lower = max(i for i in range(n) if levels[i] <= v)
        p = (v - levels[lower]) / (levels[lower + 1] - levels[lower])
        out.append(levels[lower + 1] if draw < p else levels[lower])
    return np.array(out, dtype=np.float32).reshape(values.shape)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(grid=grids(), seed=st.integers(0, 2**32))
def test_nearest_matches_the_reference_loop(path: str, grid, seed: int) -> None:
    values = awkward_values(grid, seed)
    expected = reference_nearest(values, grid.levels.tolist())
    with numpy_only(path):
        assert np.array_equal(round_nearest(values, grid), expected)
        assert np.array_equal(round_arithmetic(values, grid, None), expected)


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(grid=grids(), seed=st.integers(0, 2**32))
def test_stochastic_matches_the_reference_loop_given_the_same_draws(
    path: str, grid, seed: int
) -> None:
    values = awkward_values(grid, seed)
    u = uniform_draws(seed, "t/kernels", values.shape)
    expected = reference_stochastic(values, grid.levels.tolist(), u)
    u32 = np.random.default_rng(seed).random(values.shape, dtype=np.float32)  # any float draws
    with numpy_only(path):
        assert np.array_equal(round_stochastic(values, grid, u), expected)
        assert np.array_equal(round_arithmetic(values, grid, u), expected)
        assert np.array_equal(
            round_stochastic(values, grid, u32),
            reference_stochastic(values, grid.levels.tolist(), u32),
        )


@SETTINGS
@given(grids(), st.integers(0, 2**32), st.sampled_from(["nearest", "stochastic"]))
def test_results_are_on_the_grid(grid, seed: int, rounding: str) -> None:
    values = awkward_values(grid, seed)
    out = (
        round_nearest(values, grid)
        if rounding == "nearest"
        else round_stochastic(values, grid, uniform_draws(seed, "x", values.shape))
    )
    assert out.dtype == np.float32 and out.shape == values.shape
    assert np.isin(out, grid.levels.astype(np.float32)).all()


@SETTINGS
@given(grids(), st.integers(0, 2**32))
def test_nearest_error_is_at_most_half_the_local_gap(grid, seed: int) -> None:
    values = awkward_values(grid, seed)
    levels = grid.levels
    inside = values[(values >= levels[0]) & (values <= levels[-1])].astype(np.float64)
    out = round_nearest(inside, grid).astype(np.float64)
    upper = np.clip(np.searchsorted(levels, inside, side="right"), 1, levels.size - 1)
    gap = levels[upper] - levels[upper - 1]
    slack = np.abs(out) * 2.0**-23 + 2.0**-149  # the result is the float32 of a float64 level
    assert np.all(np.abs(out - inside) <= gap / 2 + slack)
    if grid.exact_zero_index is None or isinstance(grid, (SymmetricGrid, Pow2Grid)):
        assert np.all(np.abs(out - inside) <= float(grid.step) / 2 + slack)


@SETTINGS
@given(grids(), st.integers(0, 2**32), st.sampled_from(["nearest", "stochastic"]))
def test_rounding_is_idempotent_on_levels(grid, seed: int, rounding: str) -> None:
    once = round_nearest(awkward_values(grid, seed), grid)
    if rounding == "nearest":
        assert np.array_equal(round_nearest(once, grid), once)
    elif np.array_equal(
        once.astype(np.float64), round_nearest(once, grid).astype(np.float64)
    ) and np.array_equal(
        grid.levels, grid.levels.astype(np.float32)
    ):  # levels exact in float32 (pow2, many symmetric grids): stochastic keeps them too
        assert np.array_equal(
            round_stochastic(once, grid, uniform_draws(seed, "x", once.shape)), once
        )


@SETTINGS
@given(st.integers(2, 8), st.floats(1e-2, 10.0), st.floats(0.01, 0.99), st.booleans())
def test_reserved_zero_is_exact_and_replaces_the_closest_level(
    bits: int, scale: float, frac: float, rz: bool
) -> None:
    grid = LinearGrid(-scale * frac, scale * (1 - frac), bits, rz)
    levels = grid.levels
    plain = LinearGrid(-scale * frac, scale * (1 - frac), bits, False).levels
    closest = int(np.argmin(np.abs(plain)))
    if rz:
        assert levels[closest] == 0.0 and int(grid.zero_index) == closest
        assert np.array_equal(np.delete(levels, closest), np.delete(plain, closest))
        assert round_nearest(np.zeros(3, np.float32), grid).tolist() == [0.0, 0.0, 0.0]
    else:
        assert np.array_equal(levels, plain)
    assert np.all(np.diff(levels) > 0)


def test_levels_follow_the_documented_formulas() -> None:
    grid = LinearGrid(-0.3, 0.5, 3)
    assert grid.levels.tolist() == [-0.3 + i * (0.5 - -0.3) / 7 for i in range(8)]
    sym = SymmetricGrid(0.7, 4)
    assert sym.n_levels == 15 and sym.levels[7] == 0.0
    assert np.array_equal(sym.levels, -sym.levels[::-1])
    assert SymmetricGrid(0.7, 1).levels.tolist() == [-0.7, 0.7]
    assert SymmetricGrid(0.7, 1, reserve_zero=True).levels.tolist() == [0.0, 0.7]
    fixed = Pow2Grid(3, 4)
    assert fixed.levels.tolist() == [k / 8 for k in range(-8, 8)]


@pytest.mark.parametrize(
    ("max_abs", "bits", "frac_len"),
    [
        (0.7, 8, 7),
        (0.5, 8, 8),
        (0.50001, 8, 7),
        (3.0, 8, 5),
        (4.0, 8, 5),
        (1e-3, 8, 16),
        (100.0, 4, -4),
    ],
)
def test_pow2_fractional_length_is_ristrettos(max_abs: float, bits: int, frac_len: int) -> None:
    fl, degenerate = pow2_frac_len(np.float64(max_abs), bits)
    assert int(fl) == frac_len and not degenerate
    il = int(np.ceil(np.log2(max_abs))) + 1
    assert int(fl) == bits - il


@SETTINGS
@given(st.integers(2, 6), st.floats(0.05, 0.95), st.integers(0, 2**32))
def test_stochastic_is_unbiased_in_the_mean(bits: int, where: float, seed: int) -> None:
    """Inside the grid (closest level not an end) the mean equals the value.

    20000 draws: the standard error is at most step/(2*sqrt(20000)) = 0.0036
    step; the bound is 6 standard errors, so a failure is a bias, not luck.
    """
    grid = LinearGrid(-1.0, 2.0, bits, reserve_zero=bool(seed % 2))
    levels = grid.levels
    v = np.float32(levels[1] + where * (levels[-2] - levels[1]))
    values = np.full(20000, v, dtype=np.float32)
    upper = int(np.searchsorted(levels, float(v), side="right"))
    gap = levels[upper] - levels[upper - 1]
    mean = (
        round_stochastic(values, grid, uniform_draws(seed, "mean", values.shape))
        .astype(np.float64)
        .mean()
    )
    assert abs(mean - float(v)) <= 6 * gap / (2 * np.sqrt(values.size)) + 1e-6


def test_stochastic_rounds_the_ends_deterministically() -> None:
    grid = LinearGrid(-1.0, 2.0, 2)  # levels -1, 0, 1, 2
    values = np.array([-0.9, -0.4, 1.6, 1.9, 0.5], np.float32)
    u = np.zeros(values.shape)  # u = 0 always goes up where the rule is random
    assert round_stochastic(values, grid, u).tolist() == [-1.0, 0.0, 2.0, 2.0, 1.0]
    one_bit = LinearGrid(-1.0, 1.0, 1)
    assert np.array_equal(round_stochastic(values, one_bit, u), round_nearest(values, one_bit))


@SETTINGS
@given(
    st.integers(1, 8),
    st.sampled_from(["linear", "symmetric", "pow2"]),
    st.booleans(),
    st.integers(0, 2**32),
)
def test_per_channel_grids_equal_one_grid_per_channel(
    bits: int, kind: str, rz: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((3, 3, 4, 5)) * rng.uniform(0.01, 2, 5)).astype(np.float32)
    values[..., 2] = 0.0  # a dead channel: degenerate range, kept as is
    lo, hi = (
        values.reshape(-1, 5).min(0).astype(np.float64),
        values.reshape(-1, 5).max(0).astype(np.float64),
    )
    if kind == "linear":
        make = lambda lo, hi: LinearGrid(lo, np.maximum(hi, 0), bits, rz)  # noqa: E731
    elif kind == "symmetric":
        make = lambda lo, hi: SymmetricGrid(np.maximum(-lo, hi), bits, rz)  # noqa: E731
    else:

        def make(lo, hi):
            frac_len, degenerate = pow2_frac_len(np.maximum(-lo, hi), bits)
            return Pow2Grid(frac_len, bits, degenerate)

    grid = make(lo, hi)
    u = uniform_draws(seed, "c", values.shape)
    for table_limit in (arith.LEVEL_TABLE_MAX, 0):  # levels from the (C, n) table, then the formula
        with patch.object(arith, "LEVEL_TABLE_MAX", table_limit):
            near, stoch = round_nearest(values, grid), round_stochastic(values, grid, u)
        for c in range(5):
            one = make(lo[c], hi[c])
            assert np.array_equal(near[..., c], round_nearest(values[..., c], one))
            assert np.array_equal(stoch[..., c], round_stochastic(values[..., c], one, u[..., c]))
        assert np.all(near[..., 2] == 0.0)


@pytest.mark.parametrize("reserve_zero", [False, True])
def test_high_bit_grids_kernels_equal_numpy(reserve_zero: bool) -> None:
    grid = LinearGrid(-0.37, 0.81, 16, reserve_zero=reserve_zero)
    values = awkward_values(grid, 1, 5000)[:6000]
    u = uniform_draws(2, "x", values.shape)
    got = [round_nearest(values, grid), round_stochastic(values, grid, u)]
    with numpy_only("numpy"):
        want = [round_nearest(values, grid), round_stochastic(values, grid, u)]
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "lo, hi, bits",
    [(-1.0, 1.4, 3), (-1.4, 1.0, 3), (-0.3, 5.0, 2), (-5.0, 0.3, 2), (-1e-3, 1.0, 8)],
)
def test_the_reserved_zero_estimate_gives_the_same_bits(lo: float, hi: float, bits: int) -> None:
    """Small weights next to a reserved zero (estimated one index off without the
    kernels' correction, the zero's old level below or above 0, or an end) round as the
    numpy path and the reference loop round them."""
    grid = LinearGrid(lo, hi, bits, reserve_zero=True)
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(20_000) * 0.05 * (hi - lo),
                             awkward_values(grid, 1, 500)]).astype(np.float32)  # fmt: skip
    u = uniform_draws(3, "y", values.shape)
    with numpy_only("numpy"):
        want = [round_nearest(values, grid), round_stochastic(values, grid, u)]
    got = [round_nearest(values, grid), round_stochastic(values, grid, u)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert np.array_equal(got[0][-1000:], reference_nearest(values[-1000:], grid.levels.tolist()))


def test_bad_inputs() -> None:
    grid = LinearGrid(-1.0, 1.0, 4)
    with pytest.raises(InputError, match="non-finite"):
        round_nearest(np.array([0.0, np.nan], np.float32), grid)
    with pytest.raises(InputError, match="draws shape"):
        round_stochastic(np.zeros(3, np.float32), grid, np.zeros(4))
    with pytest.raises(InputError, match="bits must be between 1 and 16"):
        LinearGrid(-1.0, 1.0, 17)
    with pytest.raises(InputError, match="lo must not exceed hi"):
        LinearGrid(1.0, -1.0, 4)


def test_degenerate_grids_keep_the_values() -> None:
    values = np.full(4, 0.25, np.float32)
    grid = LinearGrid(0.25, 0.25, 4, reserve_zero=True)
    assert np.array_equal(round_nearest(values, grid), values)
    assert np.array_equal(round_stochastic(values, grid, np.zeros(4)), values)
    assert np.array_equal(round_nearest(np.zeros(3, np.float32), Pow2Grid(0, 4, True)), np.zeros(3))
