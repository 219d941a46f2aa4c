"""Remedies computed in a child process equal the in-process ones; filing them in the cache
makes the detector's weights ready at once; reading a search folder back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig


@pytest.fixture
def calibrated(tiny_detector, tmp_path, monkeypatch):
    from squeezelens.engine.quant.remedies import cache

    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_memory", type(cache._memory)())
    rng = np.random.default_rng(3)
    tiny_detector.set_calibration([rng.integers(0, 255, (120, 320, 3), np.uint8) for _ in range(2)])
    return tiny_detector


@pytest.mark.slow
def test_the_child_computes_what_the_process_computes(calibrated, tmp_path):
    from squeezelens.engine.quant.remedies import cache
    from squeezelens.engine.quant.remedies.isolated import remedied_params_isolated

    config = QuantConfig(bits=4, scale="channel", equalize=True, bias_correction=True)
    done: list[tuple[int, int]] = []
    params = remedied_params_isolated(calibrated, config, lambda d, t: done.append((d, t)))
    assert done and done[-1][0] == done[-1][1]  # progress came through, to the end
    assert not cache.is_cached(calibrated, config)
    stored = cache.store(calibrated, config, params)
    assert cache.is_cached(calibrated, config)
    assert cache.detector_weights(calibrated, config) is stored  # filed: no computing
    cache._memory.clear()
    here = cache.detector_weights(calibrated, config, cache_dir=tmp_path / "elsewhere")
    assert here is not stored  # computed again in this process
    for name, value in params.items():
        np.testing.assert_array_equal(here[name], value)
    assert any(not np.array_equal(v, calibrated.float_weights[k]) for k, v in params.items())


def test_store_refuses_weights_of_another_model(calibrated):
    from squeezelens.engine.quant.remedies.cache import store

    config = QuantConfig(bits=4, bias_correction=True)
    params = {
        k: v for k, v in calibrated.float_weights.items() if k.endswith(("kernels", "biases"))
    }
    with pytest.raises(InputError, match="do not match"):
        store(calibrated, config, {**params, "conv1/kernels": np.zeros((1, 1, 1, 1), np.float32)})
    with pytest.raises(InputError, match="do not match"):
        store(calibrated, config, {k: v for k, v in params.items() if k != "conv1/biases"})


def _search_json(folder, **changes) -> None:
    point = {"size_kb": 100.0, "map_r11": 0.7, "drop": 0.05, "noise": 0.1, "predicted_noise": 0.1,
             "config": QuantConfig(bits=4, overrides={"conv12": 8}).to_dict()}  # fmt: skip
    data = {"float_map": 0.75, "float_kb": 800.0, "max_drop": 0.01, "best": None,
            "front": [point], "meta": {"split": "train"}, **changes}  # fmt: skip
    (folder / "search.json").write_text(json.dumps(data))


def test_read_search_known_answer_and_bad_files(tmp_path):
    from squeezelens.engine.search_files import read_search

    _search_json(tmp_path)
    (tmp_path / "front.csv").write_text("size_kb,map_r11,drop,bits,layer_bits\n")
    saved = read_search(tmp_path / "front.csv")
    r = saved.result
    assert (r.float_map, r.float_kb, r.max_drop, r.best) == (0.75, 800.0, 0.01, None)
    assert [(p.size_kb, p.config.bits, p.layer_bits) for p in r.front] == [(100.0, 4, "conv12=8")]
    assert r.points == r.front and saved.meta["split"] == "train"
    _search_json(tmp_path, float_map="high")
    with pytest.raises(InputError, match="float_map must be a number"):
        read_search(tmp_path)
    (tmp_path / "search.json").write_text("{")
    with pytest.raises(InputError, match="search.json"):
        read_search(tmp_path / "search.json")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(InputError, match="notes.txt"):
        read_search(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no search.json"):
        read_search(empty)
