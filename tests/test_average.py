"""Weight averaging of snapshots (``squeezelens average``): the mean, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from squeezelens.cli.main import main
from squeezelens.engine.checkpoint import load_checkpoint, save_npz
from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.train.average import average_checkpoints
from tests.conftest import random_weights

SPEC = ArchSpec().with_input_size((256, 96))


@pytest.fixture
def snapshots(tmp_path):
    return [save_npz(tmp_path / f"s{i}.npz", random_weights(SPEC, seed=i), SPEC) for i in range(3)]


def test_the_average_is_the_elementwise_mean(snapshots):
    result = average_checkpoints(snapshots)
    loaded = [load_checkpoint(p).weights for p in snapshots]
    for name, value in result.weights.items():
        expected = np.mean([w[name].astype(np.float64) for w in loaded], axis=0)
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-8)
    assert result.spec.to_dict() == SPEC.to_dict()


def test_the_cli_writes_a_loadable_npz_with_its_sources(snapshots, tmp_path, capsys):
    out = tmp_path / "swa.npz"
    assert main(["average", "--out", str(out), *map(str, snapshots)]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.spec.input_size == (256, 96)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["averaged_from"] == [p.name for p in snapshots]


def test_one_checkpoint_is_refused(snapshots, capsys):
    assert main(["average", "--out", "x.npz", str(snapshots[0])]) == 2
    assert "at least two" in capsys.readouterr().err


def test_another_architecture_is_refused_by_name(snapshots, tmp_path):
    other_spec = ArchSpec().with_input_size((320, 96))
    other = save_npz(tmp_path / "other.npz", random_weights(other_spec), other_spec)
    with pytest.raises(InputError, match="another architecture") as info:
        average_checkpoints([snapshots[0], other])
    assert "other.npz" in str(info.value)


def test_an_output_other_than_npz_is_refused(snapshots, tmp_path, capsys):
    code = main(["average", "--out", str(tmp_path / "swa.h5"), *map(str, snapshots)])
    assert code == 2 and ".npz" in capsys.readouterr().err
