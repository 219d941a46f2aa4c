"""The mixed-precision search (engine.search) with a scorer whose answer is known."""

from __future__ import annotations

import csv

import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.search import Score, SearchPoint, config_of, pareto, propose, run_search

FLOAT_MAP = 0.8
COST = {2: 0.05, 3: 0.01, 4: 0.003, 6: 0.0005, 8: 0.0}  # mAP a layer costs at each width
NOISE = {2: 10.0, 3: 2.0, 4: 0.6, 6: 0.1, 8: 0.006}  # the output noise it adds
FRAGILE = {"conv12": 4.0, "fire2/squeeze1x1": 3.0}  # layers that cost more


def known_score(config: QuantConfig | None) -> Score:
    """The float mAP minus each quantized layer's cost (drops add up exactly), and the sum
    of the layers' noise."""
    if config is None:
        return Score(FLOAT_MAP, 0.0)
    from squeezelens.engine.model.spec import layer_names

    rounded = getattr(config, "rounded", None)
    cost = noise = 0.0
    for layer in layer_names("squeezedet"):
        if rounded is not None and layer not in rounded:
            continue
        bits = config.layer_bits(layer)
        if bits is not None:
            cost += COST[bits] * FRAGILE.get(layer, 1.0)
            noise += NOISE[bits] * FRAGILE.get(layer, 1.0)
    return Score(FLOAT_MAP - cost, noise)


class Scorer:
    """known_score for each config; counts the evaluations."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, configs):
        self.calls += len(configs)
        return [known_score(c) for c in configs]


def test_proposals_run_from_float_to_the_narrowest() -> None:
    sizes = {"a": 100, "b": 1000}
    noise = {("a", 8): 0.0, ("a", 4): 0.01, ("b", 8): 0.001, ("b", 4): 0.002}
    hull = propose(["a", "b"], noise, sizes)
    choices = [c for c, _ in hull]
    assert choices[0] == {"a": 8, "b": "float"}  # a at 8 bits adds no noise
    assert choices[-1] == {"a": 4, "b": 4}
    predicted = [p for _, p in hull]
    assert predicted == sorted(predicted)


def test_config_of_and_pareto() -> None:
    config = config_of(QuantConfig(bits=8, overrides={"conv1": "float"}),
                       {"x/a": 4, "x/b": 4, "x/c": 6, "x/d": "float"})  # fmt: skip
    assert config.bits == 4
    assert dict(config.overrides) == {"conv1": "float", "x/c": 6, "x/d": "float"}
    pts = [SearchPoint(QuantConfig(), s, m, 0, 0, 0)
           for s, m in [(1, 0.5), (2, 0.4), (3, 0.7), (4, 0.6)]]  # fmt: skip
    assert [p.size_kb for p in pareto(pts)] == [1, 3]


@pytest.mark.slow
def test_search_finds_the_smallest_model_within_the_drop_and_resumes(tiny_detector, tmp_path):
    from squeezelens.engine.quant.report import model_size_bytes

    scorer = Scorer()
    base = QuantConfig(scale="channel")
    meta = {"checkpoint_sha256": "tiny", "kitti_root": "none", "split": "val",
            "protocol": "official", "input_size": [256, 96]}  # fmt: skip
    result = run_search(tiny_detector, None, base, (2, 3, 4, 6, 8), 0.01, tmp_path, meta,
                        score=scorer)  # fmt: skip
    assert result.float_map == FLOAT_MAP and result.best is not None
    assert result.best.drop <= 0.01 + 1e-12
    assert result.best.map_r11 == known_score(result.best.config).map_r11
    bits = {layer: result.best.config.layer_bits(layer) for layer in FRAGILE}
    assert bits["conv12"] >= 6 and bits["fire2/squeeze1x1"] >= 4  # the fragile layers kept wide
    params = {
        k: v for k, v in tiny_detector.float_weights.items() if k.endswith(("kernels", "biases"))
    }
    assert result.best.size_kb == model_size_bytes(params, result.best.config) / 1024
    assert result.best.size_kb < 0.25 * result.float_kb
    assert result.best in result.front and len(result.front) >= 3
    with open(tmp_path / "search.csv", newline="") as f:
        keys = [row["key"] for row in csv.DictReader(f)]
    assert keys[0] == "float" and len(keys) == len(set(keys))
    again = Scorer()
    resumed = run_search(tiny_detector, None, base, (2, 3, 4, 6, 8), 0.01, tmp_path, meta,
                         score=again)  # fmt: skip
    assert again.calls == 0 and resumed.best.config == result.best.config
    with pytest.raises(InputError, match="another search bits"):
        run_search(tiny_detector, None, base, (4, 8), 0.01, tmp_path, meta, score=again)


@pytest.mark.slow
def test_output_noise_is_the_same_whatever_the_shards(tiny_detector, tmp_path) -> None:
    """Shards' errors merged equal the whole set's to the last bit, and the noise is the mean
    squared difference from the float outputs (0 for the float model)."""
    import numpy as np

    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.output_noise import OutputError, detect_with_error, float_outputs
    from squeezelens.engine.sweep import PreparedInputs
    from tests.test_sweep import write_tiny_kitti

    records = open_dataset(write_tiny_kitti(tmp_path / "kitti", n_images=7), "val").records
    quant = QuantConfig(bits=3, scale="channel")

    def error_on(part):
        prepared = PreparedInputs(tiny_detector, part)
        return detect_with_error(
            tiny_detector, prepared, quant, float_outputs(tiny_detector, prepared)
        )

    dets, whole = error_on(records)
    parts = [error_on(records[i : i + 4])[1] for i in range(0, 7, 4)]  # shards of 4 and 3
    merged = OutputError.merge(parts)
    assert merged == whole and merged.noise() == whole.noise() > 0
    assert list(whole.sums) == [r.stem for r in records] == list(dets)
    prepared = PreparedInputs(tiny_detector, records)
    reference = float_outputs(tiny_detector, prepared)
    raw = np.concatenate([tiny_detector.forward(prepared.inputs[i : i + 4], quant)
                          for i in range(0, 7, 4)])  # fmt: skip
    want = np.mean((raw.astype(np.float64) - reference) ** 2)
    assert whole.noise() == pytest.approx(want, rel=1e-12)
    assert detect_with_error(tiny_detector, prepared, None, reference)[1].noise() == 0.0
