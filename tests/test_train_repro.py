"""Training is reproducible: the same seed and data give bit-identical losses and weights,
dropout and augmentation included, and a killed-and-resumed run matches a straight one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.test_train import TINY, _config, _write_kitti

LOSSES = ("total", "class", "conf", "bbox")


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory) -> Path:
    return _write_kitti(tmp_path_factory.mktemp("repro") / "kitti")


def _losses(run: Path) -> list[tuple[str, ...]]:
    with open(run / "loss_log.csv", newline="") as f:
        return [tuple(row[k] for k in ("step", *LOSSES)) for row in csv.DictReader(f)]


def _weights(run: Path) -> dict[str, np.ndarray]:
    from squeezelens.engine.checkpoint import load_checkpoint

    return load_checkpoint(run / "model.npz").weights


def assert_same_run(a: Path, b: Path) -> None:
    assert _losses(a) == _losses(b)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_the_dropout_seed_is_a_function_of_seed_and_step() -> None:
    from squeezelens.engine.train.data import dropout_seed

    np.testing.assert_array_equal(dropout_seed(3, 5), dropout_seed(3, 5))
    assert not np.array_equal(dropout_seed(3, 5), dropout_seed(3, 6))
    assert not np.array_equal(dropout_seed(3, 5), dropout_seed(4, 5))
    assert dropout_seed(3, 5).dtype == np.int64 and 0 <= dropout_seed(3, 5).min()


@pytest.mark.slow
def test_a_killed_and_resumed_run_matches_a_straight_one(kitti_root, tmp_path, monkeypatch) -> None:
    from squeezelens.engine.errors import Cancelled
    from squeezelens.engine.jobs import CancelToken
    from squeezelens.engine.train import Trainer, train

    run = dict(
        input_size=TINY, config=_config(steps=4, checkpoint_every=1), progress=False, say=str
    )
    train(kitti_root, tmp_path / "straight", **run)
    real_step, token = Trainer.step, CancelToken()

    def stepping(self, batch, lr):  # killed after the second step (its state saved)
        terms = real_step(self, batch, lr)
        if batch.step == 1:
            token.cancel()
        return terms

    monkeypatch.setattr(Trainer, "step", stepping)
    with pytest.raises(Cancelled):
        train(kitti_root, tmp_path / "resumed", cancel=token, **run)
    monkeypatch.undo()
    resumed = train(kitti_root, tmp_path / "resumed", **run)  # a new Trainer, a new graph
    assert resumed.resumed_from == 2 and resumed.step == 4
    assert_same_run(tmp_path / "straight", tmp_path / "resumed")


@pytest.mark.slow
def test_cli_train_twice_with_one_seed_and_finetune_twice(
    kitti_root, tmp_path, monkeypatch
) -> None:
    """Dropout (0.5) and augmentation on, as by default: the same --seed, the same run."""
    from tensorflow.python.framework.config import is_op_determinism_enabled

    from squeezelens.cli.main import main
    from squeezelens.engine.train import Trainer

    common = ["--kitti-root", str(kitti_root), "--batch", "2", "--steps", "2", "--no-progress",
              "--log-every", "1", "--checkpoint-every", "2"]  # fmt: skip
    for name in ("a", "b"):
        argv = ["train", "--out", str(tmp_path / name), "--input-size", "128x64", "--seed", "5"]
        assert main([*argv, *common]) == 0
    assert_same_run(tmp_path / "a", tmp_path / "b")
    real_step, seen = Trainer.step, []

    def stepping(self, batch, lr):
        seen.append(is_op_determinism_enabled())
        return real_step(self, batch, lr)

    monkeypatch.setattr(Trainer, "step", stepping)
    for name in ("qa", "qb"):
        argv = ["finetune", "--checkpoint", str(tmp_path / "a" / "model.npz"), "--bits", "4",
                "--out", str(tmp_path / name), "--deterministic"]  # fmt: skip
        assert main([*argv, *common]) == 0
    assert_same_run(tmp_path / "qa", tmp_path / "qb")
    assert seen == [True] * 4 and not is_op_determinism_enabled()  # on for the run only
