"""Architecture inference from tensor shapes, checkpoint formats and their bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from squeezelens.engine.checkpoint import load_checkpoint, save_npz
from squeezelens.engine.checkpoint.loader import identify
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec, expected_shapes, infer_spec
from tests.conftest import REAL_CKPT, need_shared, random_weights


def shapes_of(spec):
    return expected_shapes(spec)


@pytest.mark.parametrize(
    "variant,kernel", [("squeezedet", 3), ("squeezedet", 1), ("squeezedet+", 3)]
)
def test_infer_spec_from_shapes_alone(variant, kernel):
    spec = ArchSpec(variant=variant, convdet_kernel=kernel)
    got = infer_spec(shapes_of(spec))
    assert (got.variant, got.convdet_kernel, got.num_classes, got.anchors_per_cell) == (
        variant,
        kernel,
        3,
        9,
    )
    assert got.input_size == (1248, 384)


def test_infer_spec_other_class_count_and_sidecar():
    spec = ArchSpec(class_names=("a", "b"), anchor_shapes=((10.0, 10.0),) * 4)
    sidecar = {"classes": ["a", "b"], "anchor_shapes": [[10, 10]] * 4, "input_size": [640, 192]}
    got = infer_spec(shapes_of(spec), sidecar)
    assert got.class_names == ("a", "b") and got.anchors_per_cell == 4
    assert got.input_size == (640, 192) and got.grid_size == (40, 12)
    assert got.anchor_shapes[0] == (10.0, 10.0)  # given anchors are not rescaled


def test_input_size_without_anchor_shapes_scales_official_anchors():
    got = infer_spec(shapes_of(ArchSpec()), {"input_size": [624, 192]})
    assert got.anchor_shapes[0] == pytest.approx((18.0, 18.5))
    assert got.grid_size == (39, 12)


def test_inconsistent_sidecar_is_rejected():
    with pytest.raises(InputError, match="conv12 has 72 outputs"):
        infer_spec(shapes_of(ArchSpec()), {"classes": ["a", "b"], "anchor_shapes": [[1, 1]] * 9})


def test_wrong_and_missing_tensors_are_named():
    shapes = dict(shapes_of(ArchSpec()))
    shapes["fire5/expand3x3/kernels"] = (3, 3, 32, 127)
    with pytest.raises(InputError, match="fire5/expand3x3/kernels has shape"):
        infer_spec(shapes, source="x.npz")
    del shapes["fire5/expand3x3/kernels"]
    with pytest.raises(InputError, match="fire5/expand3x3/kernels is missing"):
        infer_spec(shapes)
    shapes = dict(shapes_of(ArchSpec()))
    shapes["conv1/kernels"] = (5, 5, 3, 64)
    with pytest.raises(InputError, match="neither SqueezeDet nor SqueezeDet"):
        infer_spec(shapes)


def test_npz_round_trip_with_sidecar(tmp_path):
    spec = ArchSpec().with_input_size((624, 192))
    w = random_weights(spec)
    save_npz(tmp_path / "m.npz", w, spec)
    ck = load_checkpoint(tmp_path / "m.npz")
    assert ck.format == "npz" and ck.spec == spec
    assert all(np.array_equal(ck.weights[k], w[k]) for k in w)
    assert len(ck.sha256) == 64


@pytest.mark.slow
def test_tf1_export_round_trip_and_any_path_form(tmp_path):
    from squeezelens.engine.checkpoint import save_tf1

    spec = ArchSpec(convdet_kernel=1)
    w = random_weights(spec, seed=3)
    prefix = save_tf1(tmp_path / "model.ckpt-5", w)
    for form in (
        prefix,
        Path(str(prefix) + ".index"),
        Path(str(prefix) + ".data-00000-of-00001"),
        tmp_path,
    ):
        ck = load_checkpoint(form)
        assert ck.format == "tf1" and ck.spec.convdet_kernel == 1
        assert all(np.array_equal(ck.weights[k], w[k]) for k in w)


def _write_keras2_h5(path: Path, weights: dict, sep: str = "/") -> None:
    """A Keras-2 style weight file: group per layer, datasets '<layer>/kernel:0'."""
    import h5py

    layers = sorted({k.rsplit("/", 1)[0] for k in weights})
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.replace("/", sep).encode() for name in layers]
        for layer in layers:
            name = layer.replace("/", sep)
            g = f.create_group(name)
            g.create_dataset(f"{name}/kernel:0", data=weights[f"{layer}/kernels"])
            g.create_dataset(f"{name}/bias:0", data=weights[f"{layer}/biases"])
        f.create_dataset("optimizer_weights/conv1/kernel:0", data=np.zeros(3))


@pytest.mark.parametrize("sep", ["/", "_"])
def test_keras_h5_import(tmp_path, sep):
    spec = ArchSpec()
    w = random_weights(spec, seed=1)
    _write_keras2_h5(tmp_path / "squeezedet.h5", w, sep)
    ck = load_checkpoint(tmp_path / "squeezedet.h5")
    assert ck.format == "h5"
    assert all(np.array_equal(ck.weights[k], w[k]) for k in w)


def test_keras3_weights_h5_vars_layout(tmp_path):
    import h5py

    spec = ArchSpec()
    w = random_weights(spec, seed=2)
    with h5py.File(tmp_path / "m.weights.h5", "w") as f:
        for layer in sorted({k.rsplit("/", 1)[0] for k in w}):
            g = f.create_group(f"layers/{layer.replace('/', '_')}/vars")
            g.create_dataset("0", data=w[f"{layer}/kernels"])
            g.create_dataset("1", data=w[f"{layer}/biases"])
    ck = load_checkpoint(tmp_path / "m.weights.h5")
    assert np.array_equal(ck.weights["fire9/expand3x3/kernels"], w["fire9/expand3x3/kernels"])


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"hello, not a checkpoint", "not a checkpoint"),
        (b"PK\x03\x04truncated zip", "cannot read .npz"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 20, "cannot read HDF5"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, content, match):
    p = tmp_path / "bad.bin"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as exc:
        load_checkpoint(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(InputError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)


def test_npz_with_nan_or_bad_sidecar(tmp_path):
    spec = ArchSpec()
    w = random_weights(spec)
    w["fire3/squeeze1x1/biases"][0] = np.nan
    save_npz(tmp_path / "m.npz", w)
    with pytest.raises(InputError, match="NaN"):
        load_checkpoint(tmp_path / "m.npz")
    w["fire3/squeeze1x1/biases"][0] = 0
    save_npz(tmp_path / "m.npz", w)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(InputError, match="sidecar is not valid JSON"):
        load_checkpoint(tmp_path / "m.npz")


@pytest.mark.slow
def test_truncated_tf1_data_file(tmp_path):
    need_shared(REAL_CKPT.parent)
    src = REAL_CKPT.parent
    (tmp_path / "model.ckpt-87000.index").write_bytes((src / "model.ckpt-87000.index").read_bytes())
    data = (src / "model.ckpt-87000.data-00000-of-00001").read_bytes()
    (tmp_path / "model.ckpt-87000.data-00000-of-00001").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="cannot read TF1 checkpoint"):
        load_checkpoint(tmp_path / "model.ckpt-87000")
    (tmp_path / "model.ckpt-87000.data-00000-of-00001").unlink()
    with pytest.raises(InputError, match="no .data"):
        load_checkpoint(tmp_path / "model.ckpt-87000.index")


@pytest.mark.slow
def test_real_checkpoint_spec_from_shapes_and_sidecar():
    need_shared(REAL_CKPT.parent)
    ck = load_checkpoint(REAL_CKPT)
    assert ck.format == "tf1"
    assert (
        ck.spec.convdet_kernel == 1
        and ck.spec.input_size == (960, 288)
        and ck.spec.grid_size == (60, 18)
    )
    side = json.loads(Path(str(REAL_CKPT) + ".json").read_text())
    assert ck.spec.anchor_shapes[1] == pytest.approx(tuple(side["anchor_shapes"][1]))
    assert identify(REAL_CKPT.parent)[0] == "tf1"
    assert sum(v.size for v in ck.weights.values()) == 2082120 - 9 * 768 * 72 + 768 * 72


# --- TF1 index recognised by content; the 'checkpoint' state file -------------------------


@pytest.mark.parametrize("content", [b"", b"not an sstable at all" * 4, b"\0" * 100])
def test_file_named_index_without_sstable_magic_is_rejected(tmp_path, content):
    index = tmp_path / "model.ckpt-1.index"
    index.write_bytes(content)
    (tmp_path / "model.ckpt-1.data-00000-of-00001").write_bytes(b"\0" * 64)
    for form in (index, tmp_path / "model.ckpt-1", tmp_path):
        with pytest.raises(InputError, match="not a TF1 checkpoint index") as exc:
            load_checkpoint(form)
        assert str(index) in str(exc.value) and "\n" not in str(exc.value)


def test_state_file_lists_every_export_and_names_the_latest(tmp_path):
    from squeezelens.engine.checkpoint.writers import write_checkpoint_state

    write_checkpoint_state(tmp_path, "model.ckpt-1")
    state = write_checkpoint_state(tmp_path, 'odd "name"')
    write_checkpoint_state(tmp_path, "model.ckpt-1")
    assert state.read_text().splitlines() == [
        'model_checkpoint_path: "model.ckpt-1"',
        'all_model_checkpoint_paths: "odd \\"name\\""',
        'all_model_checkpoint_paths: "model.ckpt-1"',
    ]


@pytest.mark.slow
def test_tf1_export_writes_a_state_file_tf_finds(tmp_path):
    from squeezelens.engine.checkpoint import save_tf1
    from squeezelens.engine.tf_runtime import import_tf

    tf = import_tf()
    spec = ArchSpec()
    save_tf1(tmp_path / "model.ckpt-1", random_weights(spec, seed=1))
    w = random_weights(spec, seed=2)
    save_tf1(tmp_path / "model.ckpt-2", w, spec)
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state is not None
    assert Path(state.model_checkpoint_path).name == "model.ckpt-2"
    assert [Path(p).name for p in state.all_model_checkpoint_paths] == [
        "model.ckpt-1",
        "model.ckpt-2",
    ]
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-2")
    ck = load_checkpoint(tmp_path)  # two checkpoints: the state file picks the latest
    assert np.array_equal(ck.weights["conv12/kernels"], w["conv12/kernels"])


@pytest.mark.slow
def test_renamed_tf1_index_still_loads(tmp_path):
    from squeezelens.engine.checkpoint import save_tf1

    spec = ArchSpec(convdet_kernel=1)
    w = random_weights(spec, seed=4)
    prefix = save_tf1(tmp_path / "model.ckpt-7", w)
    renamed = tmp_path / "model.ckpt-7.idx"
    Path(str(prefix) + ".index").rename(renamed)
    fmt, path = identify(renamed)
    assert (fmt, path) == ("tf1", renamed)
    ck = load_checkpoint(renamed)
    assert ck.format == "tf1" and ck.spec.convdet_kernel == 1
    assert all(np.array_equal(ck.weights[k], w[k]) for k in w)
    (tmp_path / "model.ckpt-7.data-00000-of-00001").rename(tmp_path / "other.data-00000-of-00001")
    with pytest.raises(InputError, match="no .data"):
        load_checkpoint(renamed)


def test_truncated_tf1_index_is_rejected_before_tensorflow(tmp_path):
    need_shared(REAL_CKPT.parent)
    index = (REAL_CKPT.parent / "model.ckpt-87000.index").read_bytes()
    (tmp_path / "m.index").write_bytes(index[:-10])
    (tmp_path / "m.data-00000-of-00001").write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match="no SSTable footer"):
        load_checkpoint(tmp_path / "m")
