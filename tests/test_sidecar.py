"""JSON sidecar values are checked, not only their syntax; errors name the sidecar file."""

from __future__ import annotations

import json
import math

import pytest

from squeezelens.engine.checkpoint import load_checkpoint, save_npz
from squeezelens.engine.checkpoint.loader import read_sidecar
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec, expected_shapes, infer_spec, validate_sidecar
from tests.conftest import random_weights


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """A random-weight official-layout .npz checkpoint without a sidecar."""
    folder = tmp_path_factory.mktemp("sidecar")
    return save_npz(folder / "m.npz", random_weights(ArchSpec()))


def load_with(npz, sidecar) -> object:
    side = npz.with_suffix(".json")
    side.write_text(json.dumps(sidecar))
    try:
        return load_checkpoint(npz)
    finally:
        side.unlink()


BAD = [
    ({"input_size": [1248]}, "input_size must be [W, H]"),
    ({"input_size": "1248x384"}, "input_size must be [W, H]"),
    ({"input_size": [1248.5, 384]}, "input_size must be [W, H]"),
    ({"input_size": [True, 384]}, "input_size must be [W, H]"),
    ({"input_size": [0, 384]}, "out of range"),
    ({"input_size": [-1248, 384]}, "out of range"),
    ({"input_size": [16, 384]}, "out of range (32..8192"),
    ({"input_size": [1248, 9000]}, "out of range"),
    ({"input_size": [16, 16], "anchor_shapes": [[1, 1]] * 9}, "out of range"),
    ({"classes": "car"}, "classes must be a non-empty list"),
    ({"classes": []}, "classes must be a non-empty list"),
    ({"classes": ["car", 3, "cyclist"]}, "classes must be non-empty strings"),
    ({"classes": ["car", "", "cyclist"]}, "classes must be non-empty strings"),
    ({"classes": ["car", "Car", "cyclist"]}, "name 'Car' twice"),
    ({"anchor_shapes": "big"}, "anchor_shapes must be a non-empty list"),
    ({"anchor_shapes": []}, "anchor_shapes must be a non-empty list"),
    ({"anchor_shapes": [[10, 10]] * 8 + [[10]]}, "anchor_shapes[8] must be [w, h]"),
    ({"anchor_shapes": [[10, 10]] * 8 + [[10, -1]]}, "anchor_shapes[8]"),
    ({"anchor_shapes": [[10, 0]] + [[10, 10]] * 8}, "anchor_shapes[0]"),
    ({"anchor_shapes": [[10, "10"]] * 9}, "anchor_shapes[0]"),
    ({"anchor_shapes": [[10, True]] * 9}, "anchor_shapes[0]"),
    ({"anchor_shapes": [[10, math.inf]] * 9}, "anchor_shapes[0]"),
    ({"anchor_shapes": [[10, 10]] * 7}, "not a multiple of 7 anchors"),
    ({"anchor_shapes": [[10, 10]] * 4, "classes": ["a", "b", "c"]}, "sidecar's 4 anchors"),
    ({"classes": ["a", "b"]}, "not a multiple of 2 classes + 5"),
]


@pytest.mark.parametrize("sidecar, problem", BAD)
def test_bad_sidecar_values_name_the_sidecar(npz, sidecar, problem):
    with pytest.raises(InputError) as info:
        load_with(npz, sidecar)
    message = str(info.value)
    assert problem in message, message
    assert message.startswith(str(npz.with_suffix(".json")) + ": "), message
    assert "\n" not in message


def test_nan_anchor_is_rejected_when_read(npz):
    side = npz.with_suffix(".json")
    side.write_text('{"anchor_shapes": [[NaN, 10]]}')  # Python's json reads NaN
    try:
        with pytest.raises(InputError, match=r"anchor_shapes\[0\]") as info:
            read_sidecar(npz)
    finally:
        side.unlink()
    assert str(side) in str(info.value)


def test_good_sidecar_and_nulls(npz):
    ck = load_with(npz, {"input_size": [624, 192], "classes": None, "variant": "squeezedet"})
    assert ck.spec.input_size == (624, 192) and ck.spec.class_names == (
        "car",
        "pedestrian",
        "cyclist",
    )
    anchors = [[float(i + 1), 2.5] for i in range(9)]
    ck = load_with(npz, {"input_size": [640, 200], "anchor_shapes": anchors})
    assert ck.spec.anchor_shapes[3] == (4.0, 2.5) and ck.spec.input_size == (640, 200)


def test_validate_sidecar_normalises_values():
    got = validate_sidecar(
        {"input_size": [96, 64], "classes": ["a"], "anchor_shapes": [[1, 2]], "x": 1}
    )
    assert got == {"input_size": (96, 64), "classes": ("a",), "anchor_shapes": ((1.0, 2.0),)}


def test_infer_spec_names_the_sidecar_source_or_the_checkpoint():
    shapes = expected_shapes(ArchSpec())
    with pytest.raises(InputError, match=r"^side\.json: sidecar classes"):
        infer_spec(shapes, {"classes": "car"}, source="ck.npz", sidecar_source="side.json")
    with pytest.raises(InputError, match=r"^ck\.npz: sidecar input_size"):
        infer_spec(shapes, {"input_size": [10, 10]}, source="ck.npz")
