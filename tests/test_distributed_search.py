"""The mixed-precision search on a local Ray runtime (one per module, 2 CPUs): every mAP and
every ConvDet output noise equal to the single-process search's, to the last bit, and a
search stopped by Ctrl+C resumes without running a task twice.

The scorer's numbers are checked on the bundled sample detector (real, non-zero mAP); the
command's files on the tiny random-weight detector (fast; its mAP is meaningless but its
output noise is not).
"""

from __future__ import annotations

import json

import pytest

from squeezelens.engine.quant import QuantConfig
from tests.test_cli import run
from tests.test_distributed import (  # noqa: F401 - the module's fixtures
    detector,
    interrupted_run,
    kitti,
    start_pool,
)

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_runtime")]

FILES = ("sensitivity.csv", "search.csv", "front.csv", "search.json")


def test_pool_scorer_gives_the_single_process_scores(detector, kitti) -> None:  # noqa: F811
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.distributed import PoolScorer
    from squeezelens.engine.search import local_scorer
    from squeezelens.engine.sensitivity import single_layer_config

    dataset = open_dataset(kitti, "val")
    base = QuantConfig(bits=4, scale="channel")
    configs = [None, single_layer_config(base, "conv12", 3), base]
    want = list(local_scorer(detector, dataset)(configs))
    pool = start_pool(detector, 2)
    try:
        with PoolScorer(None, None, dataset, pool=pool, shard_size=4) as score:
            got = list(score(configs))  # shards of 4 images: 2 per config
            assert list(score(configs[1:2])) == want[1:2]  # a later round, same pool
    finally:
        pool.close()
    assert got == want
    assert want[0].map_r11 > 0.1 and want[0].noise == 0.0
    assert 0 < want[1].noise != want[2].noise > 0


@pytest.fixture(scope="module")
def tiny_flags(tmp_path_factory) -> list:
    """search on the tiny detector over 8 images (2 shards of 4), widths 2 and 8."""
    from squeezelens.engine.checkpoint import save_npz
    from squeezelens.engine.model.spec import ArchSpec
    from tests.conftest import random_weights
    from tests.test_sweep import write_tiny_kitti

    root = tmp_path_factory.mktemp("tiny")
    spec = ArchSpec().with_input_size((256, 96))
    ckpt = save_npz(root / "tiny.npz", random_weights(spec, seed=3), spec)
    kitti = write_tiny_kitti(root / "kitti", n_images=8)  # noqa: F811
    return ["search", "--checkpoint", ckpt, "--kitti-root", kitti, "--split", "val",
            "--bits", "2,8", "--scale", "channel", "--max-drop", "0.5"]  # fmt: skip


@pytest.fixture(scope="module")
def single(tiny_flags, tmp_path_factory) -> dict[str, bytes]:
    """The single-process search's files."""
    from squeezelens.cli.main import main

    out = tmp_path_factory.mktemp("single") / "out"
    assert main([str(a) for a in [*tiny_flags, "--out", out]]) == 0
    return {name: (out / name).read_bytes() for name in FILES}


def test_search_on_two_workers_writes_the_single_process_files(
    capsys, tiny_flags, single, tmp_path
) -> None:
    noise = [float(line.split(b",")[3]) for line in single["sensitivity.csv"].splitlines()[1:]]
    assert len(noise) == 2 * 31 and len(set(noise)) == len(noise) and min(noise) > 0
    out = tmp_path / "two"
    rc, _, err = run(capsys, *tiny_flags, "--out", out, "--workers", "2")
    assert rc == 0, err
    assert "Ray: 2 workers" in err
    for name in FILES:
        assert (out / name).read_bytes() == single[name], name
    assert not (out / "tasks").exists()  # dropped once the result was written
    (run_record,) = json.loads((out / "cluster.json").read_text())["runs"]
    rows = len(single["sensitivity.csv"].splitlines()) + len(single["search.csv"].splitlines()) - 2
    assert len(run_record["tasks"]) == 2 * rows  # every scored config once, on its 2 shards


def test_search_stopped_by_ctrl_c_resumes_on_workers_without_running_a_task_twice(
    capsys, tiny_flags, single, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "two"  # stopped in the sensitivities' round (the float round has 2 tasks)
    interrupted_run(capsys, monkeypatch, [*tiny_flags, "--out", out, "--workers", "2"], tasks=5)
    kept = list((out / "tasks").rglob("*.npz"))
    sensitivity = out / "sensitivity.csv"  # none yet if a worker was slow on its first shard
    rows = len(sensitivity.read_text().splitlines()) - 1 if sensitivity.exists() else 0
    assert (out / "search.csv").read_text().splitlines()[1].startswith("float,")
    # of the 5 sensitivity tasks done, those of configs with a row were dropped, the rest kept
    assert len(kept) + 2 * rows == 5
    rc, _, err = run(capsys, *tiny_flags, "--out", out, "--workers", "2")
    assert rc == 0, err
    for name in FILES:
        assert (out / name).read_bytes() == single[name], name
    runs = json.loads((out / "cluster.json").read_text())["runs"]
    rows = len(single["sensitivity.csv"].splitlines()) + len(single["search.csv"].splitlines()) - 2
    assert len(runs) == 2 and sum(len(r["tasks"]) for r in runs) == 2 * rows  # none twice
