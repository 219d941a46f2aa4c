"""Training pipeline: anchor assignment, augmentation, loss, loop, resume, QAT, CLI.

Networks run at 128x64 (grid 8x4, 288 anchors) so a step takes milliseconds.
"""

from __future__ import annotations

import csv
import math
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.train.assign import (
    assign_anchors,
    build_targets,
    encode_deltas,
    objects_to_boxes,
)
from squeezelens.engine.train.augment import AugmentConfig, augment
from squeezelens.engine.types import GroundTruthObject

TINY = (128, 64)


def _obj(kind: str, box) -> GroundTruthObject:
    return GroundTruthObject(type=kind, truncated=0.0, occluded=0, alpha=0.0, box_xyxy=tuple(box))


# ------------------------------------------------------------------ assignment
def test_objects_to_boxes_keeps_detector_classes_with_plus_one_widths():
    objs = [
        _obj("Car", (10, 20, 49, 39)),
        _obj("DontCare", (0, 0, 5, 5)),
        _obj("Van", (1, 1, 9, 9)),
        _obj("Pedestrian", (100, 10, 109, 49)),
        _obj("Cyclist", (0, 0, 0, 0)),
    ]
    boxes, ids = objects_to_boxes(objs, ("car", "pedestrian", "cyclist"))
    assert ids.tolist() == [0, 1, 2]
    np.testing.assert_allclose(boxes[0], [30.0, 30.0, 40.0, 20.0])
    np.testing.assert_allclose(boxes[1], [105.0, 30.0, 10.0, 40.0])
    np.testing.assert_allclose(boxes[2], [0.5, 0.5, 1.0, 1.0])


ANCHORS = np.array(
    [
        [10.0, 10.0, 10.0, 10.0],  # 0
        [12.0, 10.0, 10.0, 10.0],  # 1: overlaps anchor 0 a lot
        [50.0, 50.0, 10.0, 10.0],  # 2
        [90.0, 90.0, 4.0, 4.0],  # 3: far away
    ]
)


def test_each_box_takes_its_best_iou_anchor():
    boxes = np.array([[50.0, 50.0, 10.0, 10.0], [12.5, 10.0, 10.0, 10.0]])
    assert assign_anchors(boxes, ANCHORS).tolist() == [2, 1]


def test_a_taken_anchor_passes_the_box_to_its_next_best():
    boxes = np.array([[10.0, 10.0, 10.0, 10.0], [10.5, 10.0, 10.0, 10.0]])
    # both prefer anchor 0; the second box gets anchor 1 (its next IoU), as the original
    assert assign_anchors(boxes, ANCHORS).tolist() == [0, 1]


def test_zero_iou_box_falls_back_to_nearest_free_anchor():
    # no anchor overlaps (30, 80): nearest by squared (cx, cy, w, h) distance is anchor 2,
    # then, with 2 taken, anchor 3
    boxes = np.array([[50.0, 50.0, 10.0, 10.0], [30.0, 80.0, 6.0, 6.0]])
    dist = np.sum((boxes[1] - ANCHORS) ** 2, axis=1)
    assert int(np.argmin(dist)) == 2
    assert assign_anchors(boxes, ANCHORS).tolist() == [2, int(np.argsort(dist)[1])]


def test_build_targets_marks_one_anchor_per_box_with_deltas_and_labels():
    boxes = np.array([[52.0, 49.0, 12.0, 8.0]])
    t = build_targets(boxes, np.array([2]), ANCHORS, num_classes=3)
    assert t.input_mask[:, 0].tolist() == [0, 0, 1, 0]
    assert t.num_objects == 1
    np.testing.assert_allclose(
        t.box_delta[2], [2 / 10, -1 / 10, math.log(1.2), math.log(0.8)], rtol=1e-6
    )
    np.testing.assert_allclose(t.box[2], boxes[0])
    assert t.labels.tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]]
    np.testing.assert_allclose(encode_deltas(ANCHORS[2:3], ANCHORS[2:3]), 0.0)


# ---------------------------------------------------------------- augmentation
def _bright_box(image: np.ndarray) -> tuple[float, float, float, float]:
    """xyxy (continuous, pixel edges) of the pixels brighter than half the object level."""
    ys, xs = np.nonzero(image[..., 1] > 100.0)
    return xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0


def test_augmented_boxes_follow_the_drifted_and_flipped_image():
    image = np.zeros((120, 300, 3), np.float32)
    x1, y1, x2, y2 = 180, 40, 229, 79  # inclusive pixel bounds, as KITTI labels
    image[y1 : y2 + 1, x1 : x2 + 1, 1] = 200.0
    image[y1 : y2 + 1, x1 : x1 + 25, 2] = 250.0  # marks the object's left half
    boxes, _ = objects_to_boxes([_obj("Car", (x1, y1, x2, y2))], ("car",))
    flips, heights = set(), set()
    for seed in range(12):
        out, got = augment(image, boxes, (150, 60), np.random.default_rng(seed), AugmentConfig())
        assert out.shape == (60, 150, 3)
        cx, cy, w, h = got[0]
        bx1, by1, bx2, by2 = _bright_box(out)
        # exact up to the original's 1-pixel flip offset and bilinear resizing
        assert abs((bx1 + bx2) / 2 - cx) <= 1.5, seed
        assert abs((by1 + by2) / 2 - cy) <= 1.0, seed
        assert abs((bx2 - bx1) - w) <= 1.5 and abs((by2 - by1) - h) <= 1.0, seed
        assert cx - w / 2 >= -0.5 and cy - h / 2 >= -0.5  # drift never cuts a box on the left/top
        mid = int(round(cx))
        left, right = out[int(cy), int(bx1) + 1 : mid, 2], out[int(cy), mid : int(bx2) - 1, 2]
        flips.add(bool(left.mean() < right.mean()))
        heights.add(round(float(h), 3))
    assert flips == {True, False}  # both flipped and unflipped draws were checked
    assert len(heights) > 3  # vertical drift changed the scale


def test_no_rng_means_plain_resize():
    image = np.zeros((100, 200, 3), np.float32)
    out, got = augment(image, np.array([[100.0, 50.0, 20.0, 10.0]]), (100, 50), None)
    assert out.shape == (50, 100, 3)
    np.testing.assert_allclose(got, [[50.0, 25.0, 10.0, 5.0]])


# ------------------------------------------------------------------------ loss
def _spec() -> ArchSpec:
    return ArchSpec().with_input_size(TINY)


def _raw_and_targets(spec: ArchSpec, anchor_id: int, seed: int = 0):
    from squeezelens.engine.anchors import anchor_grid

    anchors = anchor_grid(spec)
    gw, gh = spec.grid_size
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1, (1, gh, gw, spec.convdet_outputs)).astype(np.float32)
    t = build_targets(anchors[anchor_id : anchor_id + 1] * [1, 1, 1.1, 0.9], [1], anchors, 3)
    assert t.anchor_ids.tolist() == [anchor_id]
    batch = {k: getattr(t, k)[None] for k in ("input_mask", "box_delta", "box", "labels")}
    return anchors, raw, batch


def _put_deltas(raw: np.ndarray, spec: ArchSpec, anchor_id: int, deltas) -> np.ndarray:
    k, c = spec.anchors_per_cell, spec.num_classes
    cell, a = divmod(anchor_id, k)
    row, col = divmod(cell, spec.grid_size[0])
    raw = raw.copy()
    raw[0, row, col, k * c + k + 4 * a : k * c + k + 4 * a + 4] = deltas
    return raw


def _losses(raw, batch, anchors, spec, **cfg):
    from squeezelens.engine.train.loss import LossConfig, detection_losses

    out = detection_losses(
        raw, *(batch[k] for k in ("input_mask", "box_delta", "box", "labels")),
        anchors, spec.input_size, spec.anchors_per_cell, LossConfig(**cfg),
    )  # fmt: skip
    return {k: float(v) for k, v in out.items()}


def test_perfect_deltas_give_zero_bbox_loss_and_wrong_ones_the_hand_value():
    spec = _spec()
    anchors, raw, batch = _raw_and_targets(spec, 130)
    target = batch["box_delta"][0, 130]
    assert np.abs(target).sum() > 0.1
    perfect = _put_deltas(raw, spec, 130, target)
    assert _losses(perfect, batch, anchors, spec)["bbox"] == pytest.approx(0.0, abs=1e-10)
    off = _put_deltas(raw, spec, 130, target + [0.1, 0.0, -0.2, 0.0])
    assert _losses(off, batch, anchors, spec)["bbox"] == pytest.approx(5 * (0.01 + 0.04), rel=1e-5)


def test_class_loss_is_the_originals_cross_entropy_on_the_responsible_anchor():
    spec = _spec()
    anchors, raw, batch = _raw_and_targets(spec, 77, seed=3)
    k, c = spec.anchors_per_cell, spec.num_classes
    logits = raw[..., : k * c].reshape(-1, c)[77].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    q = np.array([0.0, 1.0, 0.0])
    expected = -(q * np.log(p) + (1 - q) * np.log(1 - p)).sum()  # over N = 1 object
    assert _losses(raw, batch, anchors, spec)["class"] == pytest.approx(expected, rel=1e-5)
    assert _losses(raw, batch, anchors, spec, coef_class=2.0)["class"] == pytest.approx(
        2 * expected, rel=1e-5
    )


def test_conf_loss_regresses_to_iou_with_positive_and_negative_weights():
    spec = _spec()
    anchors, _, batch = _raw_and_targets(spec, 130)
    a = len(anchors)
    raw = np.zeros((1, 4, 8, spec.convdet_outputs), np.float32)  # deltas 0, sigmoid(0) = 0.5
    ax, ay, aw, ah = anchors[130]
    assert ax - aw / 2 > 0 and ax + aw / 2 < TINY[0] - 1  # the decoded box is not clipped
    assert ay - ah / 2 > 0 and ay + ah / 2 < TINY[1] - 1
    gw, gh = aw * 1.1, ah * 0.9
    # predicted box = the anchor carried with +1 widths: [ax - aw/2, ax + aw/2 + 1]
    iw = min(ax + aw / 2 + 1, ax + gw / 2) - max(ax - aw / 2, ax - gw / 2)
    ih = min(ay + ah / 2 + 1, ay + gh / 2) - max(ay - ah / 2, ay - gh / 2)
    iou = iw * ih / ((aw + 1) * (ah + 1) + gw * gh - iw * ih)
    expected = 75.0 * (iou - 0.5) ** 2 + (a - 1) * 0.25 * 100.0 / (a - 1)
    got = _losses(raw, batch, anchors, spec)
    assert got["mean_iou"] == pytest.approx(iou, rel=1e-5)
    assert got["conf"] == pytest.approx(expected, rel=1e-5)


def test_no_object_batch_has_finite_loss_and_weight_decay_is_half_l2():
    from squeezelens.engine.train.loss import weight_decay

    spec = _spec()
    anchors, raw, batch = _raw_and_targets(spec, 5)
    batch = {k: np.zeros_like(v) for k, v in batch.items()}
    got = _losses(raw, batch, anchors, spec)
    assert got["class"] == 0.0 and got["bbox"] == 0.0 and math.isfinite(got["conf"])
    k = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    assert float(weight_decay([k, k], 0.0001)) == pytest.approx(0.0001 * 55.0, rel=1e-6)


# ------------------------------------------------------------------ a tiny KITTI
def _write_kitti(root: Path, n: int = 4, size=(256, 128)) -> Path:
    """n images with one bright 'Car' and a DontCare each, KITTI layout, split 'train'."""
    rng = np.random.default_rng(0)
    (root / "training" / "image_2").mkdir(parents=True)
    (root / "training" / "label_2").mkdir(parents=True)
    (root / "ImageSets").mkdir()
    stems = [f"{i:06d}" for i in range(n)]
    for stem in stems:
        img = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
        x1, y1 = int(rng.integers(20, 150)), int(rng.integers(20, 60))
        x2, y2 = x1 + int(rng.integers(30, 80)), y1 + int(rng.integers(20, 50))
        img[y1 : y2 + 1, x1 : x2 + 1] = (40, 200, 220)
        cv2.imwrite(str(root / "training" / "image_2" / f"{stem}.png"), img)
        lines = [
            f"Car 0.00 0 0.0 {x1}.00 {y1}.00 {x2}.00 {y2}.00 1.5 1.6 3.9 1.0 1.7 20.0 0.0",
            "DontCare -1 -1 -10 0.00 0.00 10.00 10.00 -1 -1 -1 -1000 -1000 -1000 -10",
        ]
        (root / "training" / "label_2" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (root / "ImageSets" / "train.txt").write_text("\n".join(stems) + "\n")
    return root


@pytest.fixture
def kitti_root(tmp_path):
    return _write_kitti(tmp_path / "kitti")


def test_batches_are_a_function_of_seed_and_step(kitti_root):
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.train.data import BatchSource

    records = open_dataset(kitti_root, "train").records
    src = BatchSource(records, _spec(), batch=3, seed=7)
    a, b = src.batch_at(5), BatchSource(records, _spec(), batch=3, seed=7).batch_at(5)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.box_delta, b.box_delta)
    assert a.images.shape == (3, 64, 128, 3) and a.labels.shape == (3, 288, 3)
    assert a.num_objects == 3 and a.labels[..., 0].sum() == 3  # one car each, DontCare dropped
    # every image is seen once per epoch (4 images, batches of 3)
    seen = src.indices(0) + src.indices(1)[:1]
    assert sorted(seen) == [0, 1, 2, 3]


# ---------------------------------------------------------------- training loop
def _config(**kw):
    from squeezelens.engine.train.loop import TrainConfig

    base = dict(steps=6, batch=2, checkpoint_every=3, log_every=1, learning_rate=0.002)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_a_few_steps_reduce_the_loss_with_one_trace(kitti_root):
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.train.data import BatchSource
    from squeezelens.engine.train.loop import Trainer
    from squeezelens.engine.train.state import init_weights

    spec = _spec()
    src = BatchSource(open_dataset(kitti_root, "train").records, spec, batch=4, augmentation=None)
    batch = src.batch_at(0)
    trainer = Trainer(spec, init_weights(spec, 0), _config(dropout_rate=0.0))
    before = trainer.evaluate(batch)
    for _ in range(30):
        trainer.step(batch, 0.002)
    after = trainer.evaluate(batch)
    assert after["total"] < 0.3 * before["total"], (before, after)
    for term in ("class", "conf", "bbox"):
        assert after[term] < before[term], (term, before, after)
    assert trainer.tracing_count == 1


@pytest.mark.slow
def test_bfloat16_training_reduces_the_loss_and_leaves_float32_behind(kitti_root):
    """Mixed precision computes in bfloat16 but keeps float32 weights, and the global
    Keras policy is restored (a Detector built afterwards is float32)."""
    import keras

    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.train.data import BatchSource
    from squeezelens.engine.train.loop import Trainer
    from squeezelens.engine.train.state import init_weights

    spec = _spec()
    src = BatchSource(open_dataset(kitti_root, "train").records, spec, batch=4, augmentation=None)
    batch = src.batch_at(0)
    trainer = Trainer(spec, init_weights(spec, 0), _config(dropout_rate=0.0, precision="bfloat16"))
    assert keras.config.dtype_policy().name == "float32"
    assert trainer.model.layers[1].compute_dtype == "bfloat16"
    before = trainer.evaluate(batch)
    for _ in range(30):
        trainer.step(batch, 0.002)
    after = trainer.evaluate(batch)
    assert after["total"] < 0.5 * before["total"], (before, after)
    assert all(w.dtype == np.float32 for w in trainer.get_weights().values())


def test_an_unknown_precision_is_refused_and_finetuning_stays_float32(tmp_path) -> None:
    from squeezelens.engine.errors import InputError
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.train.loop import TrainConfig
    from squeezelens.engine.train.qat import finetune

    with pytest.raises(InputError, match="precision must be one of float32, bfloat16"):
        TrainConfig(precision="float16").validate()
    with pytest.raises(InputError, match="leave out --bf16"):
        finetune(
            "unused.npz", tmp_path, tmp_path / "out", QuantConfig(bits=4), precision="bfloat16"
        )


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(kitti_root, tmp_path, monkeypatch):
    from squeezelens.engine.checkpoint import load_checkpoint
    from squeezelens.engine.errors import Cancelled
    from squeezelens.engine.jobs import CancelToken
    from squeezelens.engine.train.loop import Trainer, train
    from squeezelens.engine.train.state import load_state

    cfg = _config(dropout_rate=0.0, checkpoint_every=100)
    run = dict(input_size=TINY, config=cfg, progress=False, say=str)
    straight = train(kitti_root, tmp_path / "a", **run)
    assert straight.step == 6 and straight.resumed_from == 0

    real_step, token = Trainer.step, CancelToken()

    def stepping(self, batch, lr):
        terms = real_step(self, batch, lr)
        if batch.step == 2:  # Ctrl-C during the third step: it finishes, is saved, then stops
            signal.raise_signal(signal.SIGINT)
        if batch.step == 3:
            token.cancel()
        return terms

    monkeypatch.setattr(Trainer, "step", stepping)
    with pytest.raises(KeyboardInterrupt):
        train(kitti_root, tmp_path / "b", **run)
    assert load_state(tmp_path / "b").step == 3
    with pytest.raises(Cancelled):
        train(kitti_root, tmp_path / "b", cancel=token, **run)
    assert load_state(tmp_path / "b").step == 4
    resumed = train(kitti_root, tmp_path / "b", **run)
    assert resumed.resumed_from == 4 and resumed.step == 6
    a = load_checkpoint(tmp_path / "a" / "model.npz")
    b = load_checkpoint(tmp_path / "b" / "model.npz")
    assert b.spec == a.spec and b.spec.input_size == TINY
    for name in a.weights:  # same batches, same momentum: the same weights
        np.testing.assert_allclose(b.weights[name], a.weights[name], rtol=1e-4, atol=1e-6)
    with open(tmp_path / "b" / "loss_log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]
    again = train(kitti_root, tmp_path / "b", **run)
    assert again.step == 6 and again.resumed_from == 6  # nothing redone


# ------------------------------------------------------------- state and init
def test_init_weights_and_merge_redraw_only_a_misfit_conv12():
    from squeezelens.engine.errors import InputError
    from squeezelens.engine.train.state import init_weights, merge_init

    spec = _spec()
    w = init_weights(spec, 0)
    assert np.all(w["fire5/squeeze1x1/biases"] == 0)
    assert 0 < np.abs(w["conv12/kernels"]).max() <= 2e-4  # truncated normal, stddev 1e-4
    assert w["fire9/expand3x3/kernels"].std() == pytest.approx(np.sqrt(2 / (3 * 3 * 64)), rel=0.1)
    one_class = ArchSpec(class_names=("car",)).with_input_size(TINY)
    merged, redrawn = merge_init(one_class, w, seed=1)
    assert redrawn == ["conv12/kernels", "conv12/biases"]
    assert merged["conv12/kernels"].shape[-1] == 9 * 6
    np.testing.assert_array_equal(merged["fire9/expand3x3/kernels"], w["fire9/expand3x3/kernels"])
    with pytest.raises(InputError, match="conv1/kernels"):
        merge_init(ArchSpec(variant="squeezedet+").with_input_size((256, 128)), w)


def test_state_round_trip(tmp_path):
    from squeezelens.engine.train.state import STATE_FILE, TrainState, load_state, save_state

    assert load_state(tmp_path) is None
    w = {"conv1/kernels": np.ones((3, 3, 3, 4), np.float32)}
    save_state(
        tmp_path, TrainState(7, w, {"conv1/kernels": w["conv1/kernels"] * 2}, {"kind": "train"})
    )
    got = load_state(tmp_path)
    assert got.step == 7 and got.meta["kind"] == "train"
    np.testing.assert_array_equal(got.momentum["conv1/kernels"], 2.0)
    assert not (tmp_path / (STATE_FILE + ".tmp")).exists()


# ------------------------------------------------------------------------- QAT
@pytest.mark.slow
def test_qat_runs_forward_on_grid_weights_and_updates_float_copies(kitti_root):
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.quant import QuantConfig, quantize_weights
    from squeezelens.engine.train.data import BatchSource
    from squeezelens.engine.train.qat import QATTrainer, step_config
    from squeezelens.engine.train.state import init_weights

    spec = _spec()
    src = BatchSource(open_dataset(kitti_root, "train").records, spec, batch=2)
    quant = QuantConfig(bits=3, rounding="stochastic")
    trainer = QATTrainer(spec, init_weights(spec, 0), _config(dropout_rate=0.0), quant)
    used_per_step = []
    for step in range(2):
        before = trainer.float_weights()
        trainer.step(src.batch_at(step), 0.002)
        used = {n: v.numpy() for n, v in zip(trainer.names, trainer.variables)}
        expected = quantize_weights(before, step_config(quant, step))
        for name in used:  # the forward pass ran on exactly the quantized float weights
            np.testing.assert_array_equal(used[name], expected[name], err_msg=name)
        quantized = [used[n].ravel() for n in used if not n.startswith("conv1/")]
        assert len(np.unique(np.concatenate(quantized))) <= 2**3  # one global 3-bit grid
        after = trainer.float_weights()
        assert not np.array_equal(after["conv12/kernels"], before["conv12/kernels"])
        assert len(np.unique(after["fire9/expand3x3/kernels"])) > 1000  # shadows stay float
        used_per_step.append(used["fire9/expand3x3/kernels"])
    assert not np.array_equal(*used_per_step)  # fresh stochastic draws every step
    assert trainer.tracing_count == 1


# ------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_train_then_finetune(kitti_root, tmp_path, capsys):
    from squeezelens.cli.main import main
    from squeezelens.engine.checkpoint import load_checkpoint
    from squeezelens.engine.train.state import load_state

    out = tmp_path / "run"
    common = ["--kitti-root", str(kitti_root), "--batch", "2", "--no-progress", "--log-every", "1"]
    argv = ["train", "--out", str(out), "--steps", "2", "--checkpoint-every", "1",
            "--input-size", "128x64", *common]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "checkpoints").glob("*.npz")) == [
        "model-0000001.npz",
        "model-0000002.npz",
    ]
    ckpt = load_checkpoint(out)  # the run folder holds exactly one loadable checkpoint
    assert ckpt.spec.input_size == TINY and ckpt.spec.grid_size == (8, 4)
    assert main(argv) == 0 and "nothing to do" in capsys.readouterr().err
    assert main([*argv[: -len(common)], "--steps", "0", *common]) == 2

    qat = tmp_path / "qat"
    ft = ["finetune", "--checkpoint", str(out / "model.npz"), "--out", str(qat), "--steps", "2",
          "--bits", "4", *common]  # fmt: skip
    assert main(ft) == 0
    state = load_state(qat)
    assert state.step == 2 and state.meta["kind"] == "qat"
    assert state.meta["quant"]["bits"] == 4 and state.meta["quant"]["rounding"] == "stochastic"
    assert load_checkpoint(qat).spec == ckpt.spec
    assert (
        main([*ft[: -len(common)], "--bits", "5", *common]) == 2
    )  # another quant setting, same --out
    assert "other quantization settings" in capsys.readouterr().err
