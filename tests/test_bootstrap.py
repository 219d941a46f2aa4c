"""Evaluation noise (engine.bootstrap) and the sensitivity's noise column."""

from __future__ import annotations

import pytest

from squeezelens.engine.bootstrap import paired_bootstrap, resample
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.quant.labels import short_label
from squeezelens.engine.sensitivity import SensitivityResult, with_noise
from tests.test_devkit import dets, obj, record


def scene(n: int = 12):
    """n images of two easy cars each; the reference finds both, 'weak' one per image,
    'odd' differs from the reference on one image only."""
    records, ref, weak, odd = [], {}, {}, {}
    for i in range(n):
        a, b = (100.0, 100.0, 200.0, 160.0), (300.0, 100.0, 400.0, 160.0)
        stem = f"{i:06d}"
        records.append(record(stem, [obj("Car", a), obj("Car", b)]))
        ref[stem] = dets([("car", a, 0.9), ("car", b, 0.5 + 0.03 * i)])
        weak[stem] = dets([("car", a, 0.9)])
        odd[stem] = weak[stem] if i == 0 else ref[stem]
    return records, ref, weak, odd


def test_resample_renames_repeated_images():
    records, *_ = scene(3)
    out, stems = resample(records, [2, 2, 0])
    assert [r.stem for r in out] == ["000002#0", "000002#1", "000000#2"]
    assert stems == ["000002", "000002", "000000"]
    assert out[0].objects == records[2].objects


def test_identical_models_have_no_noise_and_differences_do():
    records, ref, weak, odd = scene()
    noise = paired_bootstrap(records, ref, {"same": ref, "weak": weak, "odd": odd}, samples=8)
    assert noise["same"] == 0.0
    assert noise["odd"] > 0.0  # one image decides: the draws that miss it see no drop
    assert noise["weak"] >= 0.0


def test_the_spread_is_reproducible_and_needs_two_draws():
    records, ref, weak, odd = scene()
    a = paired_bootstrap(records, ref, {"odd": odd}, samples=6, seed=3)
    assert a == paired_bootstrap(records, ref, {"odd": odd}, samples=6, seed=3)
    assert paired_bootstrap(records, ref, {"odd": odd}, samples=1) == {"odd": 0.0}


def test_with_noise_keys_the_sensitivity_drops():
    records, ref, weak, odd = scene()
    result = SensitivityResult(0.9, {("fire2", 4): 0.3, ("fire3", 4): 0.01}, (4,),
                               ("fire2", "fire3"), QuantConfig(bits=4), images=len(records))  # fmt: skip
    out = with_noise(result, records, {None: ref, ("fire2", 4): weak, ("fire3", 4): odd})
    assert set(out.noise) == {("fire2", 4), ("fire3", 4)}
    assert out.noise[("fire3", 4)] > 0.0
    assert out.to_dict()["noise"]["fire3"]["4"] == pytest.approx(out.noise[("fire3", 4)])
    assert out.to_dict()["images"] == 12


@pytest.mark.parametrize(
    ("config", "label"),
    [
        (None, "float"),
        (QuantConfig(bits=4, scale="channel"), "4 bits · channel · nearest"),
        (QuantConfig(bits=6, scale="groups", rounding="stochastic", seed=3, reserve_zero=True,
                     activation_bits=8), "6 bits · groups · stochastic seed 3 · zero · act 8"),
        (QuantConfig(grid="pow2", quantize_biases=False, overrides={"conv12": 4}),
         "8 bits · global · nearest · pow2 · float biases · 1 layer override"),
    ],
)  # fmt: skip
def test_short_labels(config, label):
    assert short_label(config) == label
    assert short_label(config, int8=True) == "TFLite INT8"
