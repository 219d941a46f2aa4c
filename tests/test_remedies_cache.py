"""The remedies' cache (memory and disk) and the Detector's door to it."""

from __future__ import annotations

import numpy as np
import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.quant.remedies import cache


@pytest.fixture()
def fresh(monkeypatch, tmp_path):
    """An empty memory cache and a disk cache under tmp_path."""
    monkeypatch.setattr(cache, "_memory", type(cache._memory)())
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path))
    return tmp_path / "remedies"


def test_the_key_follows_what_shapes_the_weights() -> None:
    base = QuantConfig(bits=4, bias_correction=True)
    key = cache.cache_key("w", base, "calib")
    assert key == cache.cache_key("w", base.replace(activation_bits=6), "calib")
    assert key == cache.cache_key("w", base.replace(seed=7), "calib")  # nearest draws nothing
    assert key != cache.cache_key("w", base.replace(bits=5), "calib")
    assert key != cache.cache_key("other", base, "calib")
    assert key != cache.cache_key("w", base, "other images")
    plain = QuantConfig(bits=4, equalize=True)  # uses no images: they are not in its key
    assert cache.cache_key("w", plain, "a") == cache.cache_key("w", plain, "b")
    ada = QuantConfig(rounding="adaround")
    assert cache.cache_key("w", ada, "c") != cache.cache_key("w", ada.replace(seed=1), "c")
    assert cache.cache_key("w", ada, "c") != cache.cache_key(
        "w", ada.replace(adaround_iterations=9), "c"
    )


@pytest.mark.slow
def test_detector_weights_are_cached_in_memory_and_on_disk(tiny_detector, fresh, monkeypatch):
    from squeezelens.engine.quant.remedies import pipeline

    rng = np.random.default_rng(2)
    saved = tiny_detector.calibration
    tiny_detector.set_calibration([rng.integers(0, 255, (96, 256, 3), dtype=np.uint8)])
    try:
        config = QuantConfig(bits=4, scale="channel", bias_correction=True)
        first = tiny_detector.quantized_weights(config)
        assert tiny_detector.quantized_weights(config) is first  # memory
        files = list(fresh.glob("*.npz"))
        assert len(files) == 1
        calls = []
        monkeypatch.setattr(pipeline, "remedied_weights", lambda *a, **k: calls.append(1))
        monkeypatch.setattr(cache, "_memory", type(cache._memory)())
        again = tiny_detector.quantized_weights(config)  # from disk, nothing recomputed
        assert not calls and all(np.array_equal(again[n], first[n]) for n in first)
        files[0].write_bytes(b"damaged")
        monkeypatch.undo()
        monkeypatch.setattr(cache, "_memory", type(cache._memory)())
        monkeypatch.setenv("SQUEEZELENS_CACHE", str(fresh.parent))
        rebuilt = tiny_detector.quantized_weights(config)  # a damaged file is a miss
        assert all(np.array_equal(rebuilt[n], first[n]) for n in first)
        equalized = QuantConfig(bits=4, equalize=True)
        tiny_detector.quantized_weights(equalized)
        assert len(list(fresh.glob("*.npz"))) == 1  # cheap remedies stay in memory only
    finally:
        tiny_detector.calibration = saved


def test_calibration_is_required_where_it_is_used(tiny_detector, monkeypatch) -> None:
    monkeypatch.setattr(tiny_detector, "calibration", None)
    with pytest.raises(InputError, match="need calibration images"):
        tiny_detector.quantized_weights(QuantConfig(bias_correction=True))
    with pytest.raises(InputError, match="need the model and calibration images"):
        from squeezelens.engine.quant import quantize_weights

        quantize_weights(tiny_detector.float_weights, QuantConfig(equalize=True))
