"""Sessions are validated as a whole before anything is applied: every bad session names
its first bad field and value, changes nothing, and never says "Session restored"."""

from __future__ import annotations

import json

import pytest

from tests.gui.conftest import wait_idle
from tests.gui.test_window_ui import _drop

pytestmark = pytest.mark.gui

BAD_FIELDS = [  # (field, value, words the message must hold)
    ("quant", {"bits": "many"}, ["'quant'", "many"]),
    ("quant", {"bits": 4, "colour": "red"}, ["'quant'", "colour"]),
    ("threshold", "abc", ["'threshold'", "'abc'", "number"]),
    ("threshold", 3.5, ["'threshold'", "3.5", "between 0 and 1"]),
    ("visible", ["gt"], ["'visible'", '["gt"]', "object"]),
    ("visible", {"gt": "yes"}, ["'visible'", "gt must be true or false"]),
    ("mode", "sideways", ["'mode'", "'sideways'", "float, ab"]),
    ("view_mode", 1, ["'view_mode'", "overlay, side"]),
    ("int8", "no", ["'int8'", "true or false"]),
    ("tab", "plots", ["'tab'", "layers, metrics, sweep"]),
    ("selected_layer", 7, ["'selected_layer'", "7", "string"]),
    ("zoom", 2, ["unknown field 'zoom'"]),
]


def _session(*good: tuple[str, object], **fields) -> dict:
    """A session document: the good fields first (where they would be applied first), then
    the fields under test, which replace a good one of the same name."""
    return {"squeezelens_session": 1, **dict(good), **fields}


@pytest.mark.parametrize(("name", "value", "words"), BAD_FIELDS)
def test_a_bad_field_is_named_with_its_value(tmp_path, name, value, words):
    from squeezelens.engine.errors import InputError
    from squeezelens.gui.session import load_session

    path = tmp_path / "s.json"
    path.write_text(json.dumps(_session(("threshold", 0.5), **{name: value})))
    with pytest.raises(InputError) as info:
        load_session(path)
    message = str(info.value)
    assert str(path) in message and all(w in message for w in words), message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"squeezelens_session": 2, "threshold": 0.5}', ["newer SqueezeLens (format 2)"]),
        ('{"threshold": 0.5}', ["not a SqueezeLens session"]),
        ('{"squeezelens_session": "1"}', ["not a SqueezeLens session", "'1'"]),
        ('{"squeezelens_session": true}', ["not a SqueezeLens session"]),
        ("[1, 2]", ["not a SqueezeLens session"]),
        (
            '{"squeezelens_session": 1, "image": ' + "[" * 100000 + "]" * 100000 + "}",
            ["nested too deeply"],
        ),  # fmt: skip
        ('{"squeezelens_session": 1, ', ["not a readable session file"]),
        ("", ["not a readable session file"]),
    ],
    ids=[
        "future",
        "no-version",
        "string-version",
        "bool-version",
        "array",
        "nested",
        "cut",
        "empty",
    ],
)
def test_files_that_are_no_session_of_this_version_say_what_they_are(tmp_path, text, words):
    from squeezelens.engine.errors import InputError
    from squeezelens.gui.session import load_session

    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_session(path)
    assert all(w in str(info.value) for w in words), str(info.value)


def _open_and_collect(win, qtbot, path) -> tuple[list[str], list[str]]:
    errors, messages = [], []
    win.state.error.connect(errors.append)
    win.state.message.connect(messages.append)
    win.sessions.open(str(path))
    wait_idle(qtbot, win)
    return errors, messages


@pytest.mark.parametrize(("name", "value", "words"), BAD_FIELDS[:6])
def test_a_bad_session_changes_nothing_in_the_window(loaded, qtbot, tmp_path, name, value, words):
    win = loaded
    before = (win.state.quant, win.state.mode, dict(win.state.visible), win.state.view_mode)
    path = tmp_path / "s.json"
    # the good fields come first: a half-applied session would have changed them
    path.write_text(json.dumps(_session(("view_mode", "side"), ("mode", "ab"), **{name: value})))
    errors, messages = _open_and_collect(win, qtbot, path)
    assert len(errors) == 1 and all(w in errors[0] for w in words)
    assert "Session restored" not in messages and win.sessions.pending is None
    after = (win.state.quant, win.state.mode, dict(win.state.visible), win.state.view_mode)
    assert after == before
    assert "internal error" not in win.banner.text and words[0] in win.banner.text


def test_a_layer_or_image_the_model_lacks_is_refused_before_anything_applies(loaded, qtbot,
                                                                             tmp_path):  # fmt: skip
    win = loaded
    threshold, layer = win.state.threshold, win.state.selected_layer
    for name, value in (("selected_layer", "nope"), ("image", "999999"), ("metrics_class", "tram")):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(_session(threshold=0.9, **{name: value})))
        errors, messages = _open_and_collect(win, qtbot, path)
        assert errors and f"'{name}'" in errors[-1] and value in errors[-1]
        assert "Session restored" not in messages
        assert win.state.threshold == threshold and win.state.selected_layer == layer


def test_a_good_session_applies_everything(loaded, qtbot, tmp_path):
    win = loaded
    path = tmp_path / "good.json"
    stem = win.state.dataset.stems[2]
    path.write_text(json.dumps(_session(
        threshold=0.25, view_mode="side", visible={"gt": False}, mode="ab",
        quant={"bits": 6}, quant_b={"bits": 3, "rounding": "stochastic"},
        selected_layer="fire4/expand3x3", image=stem, tab="metrics")))  # fmt: skip
    errors, messages = _open_and_collect(win, qtbot, path)
    s = win.state
    assert errors == [] and "Session restored" in messages
    assert (s.threshold, s.view_mode, s.visible["gt"], s.mode) == (0.25, "side", False, "ab")
    assert (s.quant.bits, s.quant_b.bits, s.quant_b.rounding) == (6, 3, "stochastic")
    assert s.selected_layer == "fire4/expand3x3" and s.record.stem == stem
    assert win.tabs.currentWidget() is win.metrics_panel


def test_dropped_and_recent_json_files_go_to_the_session_loader(loaded, qtbot, tmp_path,
                                                               tiny_checkpoint):  # fmt: skip
    win = loaded
    model = win.state.model
    corrupt = tmp_path / "view.json"
    corrupt.write_text('{"squeezelens_session": 1, "threshold": ')
    with qtbot.waitSignal(win.state.error, timeout=5000) as blocker:
        _drop(win, corrupt)
    assert "not a readable session file" in blocker.args[0] and "checkpoint" not in blocker.args[0]
    win.settings.add_recent("session", str(corrupt))
    win.recent_menu.aboutToShow.emit()
    entry = next(a for a in win.recent_menu.actions() if a.text().endswith("view.json"))
    with qtbot.waitSignal(win.state.error, timeout=5000) as blocker:
        entry.trigger()
    assert "not a readable session file" in blocker.args[0]
    wait_idle(qtbot, win)
    assert win.state.model is model
    sidecar = tiny_checkpoint.with_suffix(".json")  # a checkpoint's sidecar opens its checkpoint
    assert sidecar.exists()
    calls = []
    win.controller.open_checkpoint = lambda p: calls.append(str(p))
    _drop(win, sidecar)
    assert calls == [str(tiny_checkpoint.with_suffix(""))]
