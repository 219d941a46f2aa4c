"""The quantization panel's remedy controls and the remedies that run as long jobs.

The tiny model and the generated KITTI folder (val shown, train calibrates).  Bias
correction and AdaRound need the train split's images: the first time they run as a
``remedies`` job while the previous boxes stay shown; cancelling restores the previous
config; switching a computed one back on starts no job.
"""

from __future__ import annotations

import pytest

from squeezelens.engine.quant import QuantConfig
from squeezelens.gui.panels.remedy_controls import (
    ACT_RANGE_OFF_TIP,
    INT8_RANGE_TIP,
    INT8_REMEDY_TIP,
)
from tests.gui.conftest import wait_idle
from tests.gui.test_window import _find

pytestmark = pytest.mark.gui


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh remedies cache (disk) and an empty memory cache."""
    from squeezelens.engine.quant.remedies import cache as remedies_cache

    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(remedies_cache, "_memory", type(remedies_cache._memory)())
    return tmp_path / "cache"


def _percentile(spin, value: float) -> None:
    spin.setValue(value)
    spin.editingFinished.emit()


def test_remedy_controls_set_the_config_fields(window, qtbot):
    win = window
    _find(win, "bitsSlider").setValue(4)
    _find(win, "rangeCombo").setCurrentText("percentile")
    spin = _find(win, "rangePercentileSpin")
    assert spin.isVisibleTo(win) and spin.isEnabled()
    _percentile(spin, 99.5)
    assert win.state.quant.range == "percentile:99.5"
    _find(win, "rangeCombo").setCurrentText("mse")
    assert win.state.quant.range == "mse" and not spin.isVisibleTo(win)
    _find(win, "equalizeCheck").setChecked(True)
    _find(win, "roundingCombo").setCurrentText("adaround")
    iterations = _find(win, "adaroundIterationsSpin")
    assert iterations.isEnabled()
    iterations.setValue(37)
    iterations.editingFinished.emit()
    q = win.state.quant
    assert (q.equalize, q.rounding, q.adaround_iterations, q.bias_correction) == (
        True,
        "adaround",
        37,
        False,
    )
    _find(win, "roundingCombo").setCurrentText("nearest")
    assert not iterations.isEnabled()  # AdaRound's iterations only with AdaRound


def test_activation_range_only_with_activation_bits(window, qtbot):
    win = window
    _find(win, "bitsSlider").setValue(6)
    combo = _find(win, "activationRangeCombo")
    assert not combo.isEnabled() and combo.toolTip() == ACT_RANGE_OFF_TIP
    _find(win, "activationBitsSpin").setValue(8)
    assert combo.isEnabled() and combo.toolTip() != ACT_RANGE_OFF_TIP
    combo.setCurrentText("entropy")
    assert win.state.quant.activation_range == "entropy" and win.state.quant.activation_bits == 8
    combo.setCurrentText("percentile")
    _percentile(_find(win, "activationRangePercentileSpin"), 99.99)
    assert win.state.quant.activation_range == "percentile:99.99"


def test_int8_disables_the_remedies_with_why(window, qtbot):
    win = window  # no model: switching INT8 on converts nothing
    _find(win, "bitsSlider").setValue(6)
    win.state.set_int8(True)
    assert _find(win, "rangeCombo").toolTip() == INT8_RANGE_TIP
    assert _find(win, "activationRangeCombo").toolTip() == INT8_RANGE_TIP
    for name in ("equalizeCheck", "biasCorrectionCheck", "adaroundIterationsSpin"):
        assert not _find(win, name).isEnabled() and _find(win, name).toolTip() == INT8_REMEDY_TIP
    win.state.set_int8(False)
    assert _find(win, "equalizeCheck").isEnabled() and _find(win, "rangeCombo").isEnabled()


def test_a_config_with_remedies_shows_in_the_panel(window, qtbot):
    config = QuantConfig(bits=3, range="percentile:99.25", equalize=True, bias_correction=True,
                         rounding="adaround", adaround_iterations=250, activation_bits=8,
                         activation_range="mse")  # fmt: skip
    window.state.set_quant(config)
    assert window.quant_panel.widget_config() == config
    assert _find(window, "rangePercentileSpin").value() == pytest.approx(99.25)
    assert _find(window, "biasCorrectionCheck").isChecked()


def _job_texts(win) -> list[str]:
    texts: list[str] = []
    win.state.job_progress.connect(lambda text, _d, total: texts.append(text) if total else None)
    return texts


def _calibrated_copy(detector, tiny_kitti):
    """The engine's own answer: the detector calibrated on the folder's train split."""
    from squeezelens.engine.calibration import default_calibration

    calibration = default_calibration(str(tiny_kitti))
    assert all("/image_2/" in p for p in calibration.paths)
    detector.set_calibration(calibration.images(), record=calibration.record())
    return calibration


def test_bias_correction_runs_as_a_long_job_then_is_instant(loaded, qtbot, cache, tiny_detector,
                                                           tiny_kitti):  # fmt: skip
    win = loaded
    _find(win, "bitsSlider").setValue(4)
    wait_idle(qtbot, win)
    before = win.state.result
    texts = _job_texts(win)
    _find(win, "biasCorrectionCheck").setChecked(True)
    assert win.state.quant.bias_correction  # the panel shows the new setting at once
    assert win.controller.long.running() == "remedies"
    assert win.state.result is before  # the previous boxes stay, labelled
    assert (
        win.canvas.pending_label.isVisibleTo(win) and "bias correction" in win.state.remedy_pending
    )
    qtbot.waitUntil(lambda: not win.state.remedy_pending, timeout=120000)
    wait_idle(qtbot, win, timeout=60000)
    assert any("bias correction" in t for t in texts)
    assert win.state.result is not before and not win.canvas.pending_label.isVisibleTo(win)
    corrected = win.state.result.other.to_records()
    _calibrated_copy(tiny_detector, tiny_kitti)
    record = win.state.record
    assert tiny_detector.detect(record.path, win.state.quant).to_records() == corrected
    assert (
        tiny_detector.detect(
            record.path, win.state.quant.replace(bias_correction=False)
        ).to_records()
        != corrected
    )
    # off, then on again: cached, no job
    _find(win, "biasCorrectionCheck").setChecked(False)
    wait_idle(qtbot, win)
    texts.clear()
    _find(win, "biasCorrectionCheck").setChecked(True)
    assert win.controller.long.running() == "" and not win.state.remedy_pending
    wait_idle(qtbot, win)
    assert not [t for t in texts if "Computing" in t]
    assert win.state.result.other.to_records() == corrected


def test_cancelling_a_remedy_restores_the_previous_config(loaded, qtbot, cache):
    from squeezelens.engine.quant.remedies.cache import is_cached

    win = loaded
    _find(win, "bitsSlider").setValue(4)
    wait_idle(qtbot, win)
    before, previous = win.state.result, win.state.quant
    iterations = _find(win, "adaroundIterationsSpin")
    iterations.setValue(20000)
    iterations.editingFinished.emit()  # no job: nearest rounding does not use it
    assert win.controller.long.running() == ""
    previous = win.state.quant
    _find(win, "roundingCombo").setCurrentText("adaround")
    assert win.controller.long.running() == "remedies"
    qtbot.wait(300)  # under way (checked between optimisation steps)
    win.actions_.cancel.trigger()
    qtbot.waitUntil(lambda: not win.state.remedy_pending, timeout=30000)
    wait_idle(qtbot, win)
    assert win.state.quant == previous and _find(win, "roundingCombo").currentText() == "nearest"
    assert (
        win.state.result is before
        or win.state.result.other.to_records() == before.other.to_records()
    )
    assert not is_cached(win.controller.handle.detector, previous.replace(rounding="adaround"))


@pytest.mark.slow
def test_copied_command_reproduces_bias_correction(loaded, qtbot, capsys, cache, tmp_path,
                                                   monkeypatch, tiny_kitti):  # fmt: skip
    """The CLI, with its own (empty) cache, recomputes the same corrected weights from the
    same train split: the detections equal the window's exactly."""
    from tests.gui.test_copy_command import _copied, _run_detect

    win = loaded
    _find(win, "bitsSlider").setValue(4)
    _find(win, "rangeCombo").setCurrentText("mse")
    _find(win, "equalizeCheck").setChecked(True)
    _find(win, "biasCorrectionCheck").setChecked(True)
    qtbot.waitUntil(lambda: not win.state.remedy_pending, timeout=120000)
    wait_idle(qtbot, win, timeout=60000)
    detect = _copied(win, qtbot)["detect"]
    for flag in ("--equalize", "--bias-correction"):
        assert detect[detect.index(flag) + 1] == "on"
    assert detect[detect.index("--range") + 1] == "mse"
    assert detect[detect.index("--kitti-root") + 1] == str(tiny_kitti)  # its train split
    from squeezelens.engine.quant.remedies import cache as remedies_cache

    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path / "cli-cache"))
    monkeypatch.setattr(remedies_cache, "_memory", type(remedies_cache._memory)())
    shown = win.state.result.other.to_records()
    assert shown and _run_detect(detect, capsys) == shown
    assert list((tmp_path / "cli-cache").rglob("*.npz"))  # the CLI computed them itself


def test_sessions_keep_the_remedies_and_old_sessions_still_load(tmp_path):
    import json

    from squeezelens.engine.errors import InputError
    from squeezelens.gui.session import load_session

    config = QuantConfig(bits=4, range="percentile:99.9", equalize=True, bias_correction=True,
                         rounding="adaround", adaround_iterations=300)  # fmt: skip
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"squeezelens_session": 1, "quant": config.to_dict()}))
    assert load_session(path).quant == config
    old = {"bits": 4, "rounding": "nearest", "reserve_zero": False, "scale": "channel",
           "range": "minmax", "grid": "linear", "seed": 0, "quantize_biases": True,
           "quantize_first_layer": False, "activation_bits": None, "overrides": {}}  # fmt: skip
    path.write_text(json.dumps({"squeezelens_session": 1, "quant": old}))
    loaded = load_session(path).quant
    assert loaded == QuantConfig(bits=4, scale="channel") and not loaded.needs_model
    path.write_text(
        json.dumps({"squeezelens_session": 1, "quant": {**old, "range": "percentile:20"}})
    )
    with pytest.raises(InputError, match="percentile"):
        load_session(path)
