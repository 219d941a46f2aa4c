"""Parallel jobs on a local Ray runtime (one per module, 2 CPUs): identical results to the
single-process path, stochastic draws independent of the sharding, a killed worker
replaced with nothing lost or counted twice, resumption, Ctrl+C, bad input, INT8 and
activation quantization shipped from the parent.

The model is the bundled sample detector (real, non-zero mAP) on the first 8 images
of the bundled val split, so that a wrong detection changes a number; the INT8 test
uses the tiny random-weight detector (its integer model converts in seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.sweep import SweepPoint, prepared_detections, run_sweep, sweep_points
from tests.test_cli import run
from tests.test_distributed_units import same

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

VAL, TRAIN = 8, 4  # images of the small KITTI folder made from the bundled sample
CONFIGS = [
    QuantConfig(bits=4, rounding="stochastic", seed=11),
    QuantConfig(bits=6, reserve_zero=True, scale="groups"),
]


@pytest.fixture(scope="module", autouse=True)
def ray_runtime():
    """One local Ray runtime for the module (every pool and CLI run here joins it)."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def kitti(tmp_path_factory) -> Path:
    """A KITTI folder with the first 8 val and 4 train images of the bundled sample."""
    from squeezelens.engine.samples import default_kitti_root

    src = default_kitti_root()
    root = tmp_path_factory.mktemp("dist") / "kitti"
    for sub in ("training/image_2", "training/label_2", "ImageSets"):
        (root / sub).mkdir(parents=True)
    splits = {}
    for split, n in (("val", VAL), ("train", TRAIN)):
        stems = (src / "ImageSets" / f"{split}.txt").read_text().split()[:n]
        splits[split] = stems
        (root / "ImageSets" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
        for stem in stems:
            for image in (src / "training" / "image_2").glob(f"{stem}.*"):
                shutil.copy(image, root / "training" / "image_2" / image.name)
            shutil.copy(src / "training" / "label_2" / f"{stem}.txt", root / "training" / "label_2")
    return root


@pytest.fixture(scope="module")
def dataset(kitti):
    from squeezelens.engine.data.kitti import open_dataset

    return open_dataset(kitti, "val")


@pytest.fixture(scope="module")
def detector():
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.samples import default_checkpoint

    return Detector.from_checkpoint(default_checkpoint())


def start_pool(model, workers: int):
    """A pool of the runtime whose workers reserve no CPU, so the CLI's own pools still fit."""
    from squeezelens.engine.distributed import ClusterSpec, ModelPayload, WorkerPool
    from squeezelens.engine.distributed.runtime import Runtime, WorkerResources

    runtime = Runtime(ClusterSpec(workers=workers)).__enter__()  # joins the module's runtime
    pool = WorkerPool(runtime, ModelPayload.from_model(model), workers, WorkerResources(0, 0, 1))
    pool.start()
    return pool


@pytest.fixture(scope="module")
def pool(detector):
    pool = start_pool(detector, 2)
    yield pool
    pool.close()


def source(pool, dataset, store=None, **kwargs):
    """run_sweep's DetectPoints on the pool (shards of 4 images: 2 per point)."""
    from squeezelens.engine.distributed import detect_points

    return lambda points: detect_points(pool, dataset, points, store, shard_size=4, **kwargs)


def meta_of(detector, dataset) -> dict:
    return {"checkpoint_sha256": detector.checkpoint.sha256, "kitti_root": str(dataset.root),
            "split": dataset.split, "protocol": "official",
            "input_size": list(detector.spec.input_size)}  # fmt: skip


@pytest.fixture(scope="module")
def reference_csv(detector, dataset, tmp_path_factory) -> str:
    """sweep.csv of the single-process sweep (float, 2 stochastic seeds, 1 nearest)."""
    out = tmp_path_factory.mktemp("reference")
    rows = run_sweep(detector, dataset, sweep_points(CONFIGS, repeats=2), out,
                     meta_of(detector, dataset))  # fmt: skip
    assert len({r["map_r11"] for r in rows}) > 1 and float(rows[0]["map_r11"]) > 0.1
    return (out / "sweep.csv").read_text()


# --- identical numbers ------------------------------------------------------------------------


def test_workers_round_to_exactly_the_parent_weights(pool, detector) -> None:
    from squeezelens.engine.provenance import weights_sha256

    for quant in (None, CONFIGS[0], CONFIGS[0].replace(seed=12), CONFIGS[1]):
        want = weights_sha256(detector.quantized_weights(quant))
        got = ray.get([a.weights_sha256.remote(quant) for a in pool.actors])
        assert got == [want, want], quant
    assert weights_sha256(detector.quantized_weights(CONFIGS[0])) != weights_sha256(
        detector.quantized_weights(CONFIGS[0].replace(seed=12))
    )


def test_workers_remedy_exactly_as_the_parent(detector, dataset) -> None:
    """Bias correction needs the calibration images (a worker without them refuses the
    config): shipped with the model, the workers' remedied weights equal the parent's."""
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.provenance import weights_sha256

    calibrated = Detector(detector.spec, detector.float_weights, detector.checkpoint)
    calibrated.set_calibration([record.path for record in dataset.records[:2]])
    quant = QuantConfig(bits=4, scale="layer", equalize=True, bias_correction=True)
    want = weights_sha256(calibrated.quantized_weights(quant))
    remote = start_pool(calibrated, 1)
    try:
        (actor,) = remote.actors
        assert ray.get(actor.weights_sha256.remote(quant)) == want
    finally:
        remote.close()
    assert want != weights_sha256(
        calibrated.quantized_weights(quant.replace(bias_correction=False))
    )


@pytest.mark.parametrize("shard_size", [8])
def test_detections_do_not_depend_on_the_sharding(pool, detector, dataset, shard_size) -> None:
    from squeezelens.engine.distributed import detect_points

    points = [SweepPoint(None), SweepPoint(CONFIGS[0]), SweepPoint(CONFIGS[1])]
    local = list(prepared_detections(detector, dataset)(points))
    remote = list(detect_points(pool, dataset, points, shard_size=shard_size))
    assert [p for p, _ in remote] == points
    for (_, want), (_, got) in zip(local, remote, strict=True):
        assert same(got, want)
        assert list(got) == list(dataset.stems)


def test_sweep_on_two_workers_writes_the_single_process_csv(
    pool, detector, dataset, reference_csv, tmp_path
) -> None:
    from squeezelens.engine.distributed import TaskStore

    store = TaskStore(tmp_path / "tasks", pool.payload.identity, pool.class_names)
    run_sweep(detector, dataset, sweep_points(CONFIGS, repeats=2), tmp_path,
              meta_of(detector, dataset), detect=source(pool, dataset, store, prune=True))  # fmt: skip
    assert (tmp_path / "sweep.csv").read_text() == reference_csv
    assert not list((tmp_path / "tasks").rglob("*.npz"))  # each point's tasks pruned after its row


def test_sensitivity_on_workers_equals_single_process(pool, detector, dataset) -> None:
    from squeezelens.engine.sensitivity import layer_sensitivity

    args = (detector, dataset, QuantConfig(bits=4))
    kwargs = {"bits": (2,), "layers": ("fire2/squeeze1x1", "conv12")}
    local = layer_sensitivity(*args, **kwargs)
    remote = layer_sensitivity(*args, **kwargs, detect=source(pool, dataset))
    assert remote == local
    assert any(d != 0 for d in local.drops.values())


# --- faults, resumption, Ctrl+C -------------------------------------------------------------


def test_a_worker_killed_mid_sweep_is_replaced_and_nothing_is_lost(
    pool, detector, dataset, reference_csv, tmp_path
) -> None:
    from squeezelens.engine.distributed import TaskStore, detect_points

    killed: list[tuple[int, int]] = []

    def kill_a_busy_worker(status) -> None:
        if not killed and status.tasks_done >= 1 and pool.busy:
            worker = next(iter(pool.busy))
            pid = pool.workers[worker]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append((worker, pid))

    store = TaskStore(tmp_path / "tasks", pool.payload.identity, pool.class_names)
    first = len(pool.timings)
    run_sweep(detector, dataset, sweep_points(CONFIGS, repeats=2), tmp_path,
              meta_of(detector, dataset),
              detect=source(pool, dataset, store, prune=True, on_status=kill_a_busy_worker))  # fmt: skip
    assert killed, "no worker was busy to kill"
    assert (tmp_path / "sweep.csv").read_text() == reference_csv
    timings = pool.timings[first:]
    assert len(timings) == len({(t["config"], t["shard"]) for t in timings}) == 4 * 2  # once each
    assert pool.retries >= 1 and any(t["attempt"] == 2 for t in timings)
    worker, pid = killed[0]
    assert pid not in [t["pid"] for t in timings if t["attempt"] == 2]
    pool.recover()  # Ray replaced the process and it holds the model again ...
    assert worker not in pool.unloaded | pool.dead and pool.workers[worker]["pid"] != pid
    first = len(pool.timings)
    again = list(detect_points(pool, dataset, [SweepPoint(None)], shard_size=4))  # ... and works
    assert len(again[0][1]) == VAL
    assert pool.workers[worker]["pid"] in {t["pid"] for t in pool.timings[first:]}


def test_interrupted_sweep_keeps_finished_tasks_and_resumes_without_redoing_them(
    pool, detector, dataset, reference_csv, tmp_path
) -> None:
    from squeezelens.engine.distributed import TaskStore

    store = TaskStore(tmp_path / "tasks", pool.payload.identity, pool.class_names)
    points, meta = sweep_points(CONFIGS, repeats=2), meta_of(detector, dataset)

    def ctrl_c_after_three(status) -> None:
        if status.tasks_done >= 3:
            raise KeyboardInterrupt

    first = len(pool.timings)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(detector, dataset, points, tmp_path, meta,
                  detect=source(pool, dataset, store, on_status=ctrl_c_after_three))  # fmt: skip
    ran_before = len(pool.timings) - first
    assert ran_before == 3 and not pool.busy  # in-flight calls dropped, nothing half-written
    kept = sorted(store.folder.rglob("*.npz"))
    assert len(kept) == 3 and not list(store.folder.rglob("*.tmp*"))
    rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert rows == reference_csv.splitlines()[: len(rows)]  # the points whose 2 tasks finished
    complete = len(rows) - 1
    assert complete <= 1

    statuses = []
    run_sweep(detector, dataset, points, tmp_path, meta,
              detect=source(pool, dataset, store, on_status=statuses.append))  # fmt: skip
    todo, loaded = (4 - complete) * 2, 3 - 2 * complete  # tasks of unfinished points, kept ones
    assert (statuses[0].tasks_done, statuses[0].tasks_total) == (loaded, todo)  # loaded, not run
    assert len(pool.timings) - first - ran_before == todo - loaded
    assert (tmp_path / "sweep.csv").read_text() == reference_csv


def test_a_bad_image_fails_the_job_with_one_line_naming_the_file(pool, kitti, tmp_path) -> None:
    from squeezelens.engine.data.kitti import open_dataset
    from squeezelens.engine.distributed import evaluate_on_pool

    root = tmp_path / "kitti"
    shutil.copytree(kitti, root)
    dataset = open_dataset(root, "val")
    bad = Path(dataset.records[5].path)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not an image")
    for ship in (False, True):  # read by the worker, or shipped as bytes
        pool.ship_images = ship
        try:
            with pytest.raises(InputError) as caught:
                evaluate_on_pool(pool, dataset, shard_size=4)
        finally:
            pool.ship_images = False
        assert str(caught.value) == f"{bad}: not a readable image (corrupt or unsupported format)"


# --- INT8 and activation quantization: the parent's calibration shipped ----------------------


def test_int8_workers_run_the_parent_s_converted_model(tiny_detector, dataset, tmp_path) -> None:
    from squeezelens.engine.data.images import read_image_bgr
    from squeezelens.engine.distributed import evaluate_on_pool
    from squeezelens.engine.evaluate import evaluate
    from squeezelens.engine.int8 import Int8Detector

    calib = [read_image_bgr(r.path) for r in dataset.records[:2]]
    int8 = Int8Detector.from_detector(tiny_detector, calib, cache_dir=tmp_path)
    seen = {"local": {}, "remote": {}}
    want = evaluate(int8, dataset, on_image=lambda r, d: seen["local"].__setitem__(r.stem, d))
    int8_pool = start_pool(int8, 1)
    try:
        got = evaluate_on_pool(int8_pool, dataset, shard_size=4,
                               on_image=lambda r, d: seen["remote"].__setitem__(r.stem, d))  # fmt: skip
    finally:
        int8_pool.close()
    assert sum(len(d) for d in seen["local"].values()) > 0
    assert same(dict(sorted(seen["remote"].items())), dict(sorted(seen["local"].items())))
    assert got.to_json_dict() == want.to_json_dict()


# --- the command line -------------------------------------------------------------------------


def test_evaluate_on_one_and_two_workers_writes_the_single_process_files(
    capsys, kitti, tmp_path
) -> None:
    flags = ["--kitti-root", kitti, "--bits", "8", "--rounding", "stochastic", "--seed", "3",
             "--activation-bits", "8", "--calib-count", "2"]  # fmt: skip
    outs = {}
    for name, extra in (("single", []), ("one", ["--workers", "1"]), ("two", ["--workers", "2"])):
        outs[name] = tmp_path / name
        rc, stdout, err = run(capsys, "evaluate", *flags, "--out", outs[name], *extra)
        assert rc == 0, err
        if extra:
            assert f"Ray: {extra[1]} worker" in err and "tasks 2/2" in err
    want = json.loads((outs["single"] / "results.json").read_text())
    assert want["map"]["r11"]["all"] > 0.05
    for name in ("one", "two"):
        assert json.loads((outs[name] / "results.json").read_text()) == want
        for path in sorted((outs["single"] / "data").iterdir()):
            assert (outs[name] / "data" / path.name).read_bytes() == path.read_bytes()
        assert (outs[name] / "pr_curves.csv").read_bytes() == (
            outs["single"] / "pr_curves.csv"
        ).read_bytes()
        assert not (outs[name] / "tasks").exists()  # dropped once results.json was written
        run_record = json.loads((outs[name] / "cluster.json").read_text())["runs"][-1]
        assert run_record["cluster"]["cpus"] == 2 and len(run_record["tasks"]) == 2
        assert len(run_record["workers"]) == (1 if name == "one" else 2)


def test_sweep_ctrl_c_then_rerun_on_two_workers_gives_the_single_process_csv(
    capsys, kitti, tmp_path, monkeypatch
) -> None:
    from squeezelens.cli.distributed import ParallelJob

    flags = ["sweep", "--kitti-root", kitti, "--bits", "6", "--rounding", "nearest,stochastic",
             "--repeats", "2"]  # fmt: skip
    rc, _, err = run(capsys, *flags, "--out", tmp_path / "single")
    assert rc == 0, err
    real = ParallelJob.on_status

    def ctrl_c_after_two(self, status) -> None:
        real(self, status)
        if status.tasks_done >= 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ParallelJob, "on_status", ctrl_c_after_two)
    out = tmp_path / "two"
    rc, _, err = run(capsys, *flags, "--out", out, "--workers", "2")
    assert rc == 130 and "interrupted" in err
    assert len(list((out / "tasks").rglob("*.npz"))) >= 1  # what finished is kept
    monkeypatch.setattr(ParallelJob, "on_status", real)
    rc, _, err = run(capsys, *flags, "--out", out, "--workers", "2")
    assert rc == 0, err
    assert (out / "sweep.csv").read_text() == (tmp_path / "single" / "sweep.csv").read_text()
    runs = json.loads((out / "cluster.json").read_text())["runs"]
    assert len(runs) == 2 and len(runs[0]["tasks"]) >= 2
    assert len(runs[0]["tasks"]) + len(runs[1]["tasks"]) == 4 * 2  # no task ran twice
    assert not (out / "tasks").exists()


def test_sensitivity_on_two_workers_writes_the_single_process_json(capsys, tmp_path) -> None:
    """The command's plumbing (flags, task folder, record) on the tiny model, whose scores are
    meaningless; the numbers themselves are checked on the sample model above."""
    from squeezelens.engine.checkpoint import save_npz
    from squeezelens.engine.model.spec import ArchSpec
    from tests.conftest import random_weights
    from tests.test_sweep import write_tiny_kitti

    spec = ArchSpec().with_input_size((256, 96))
    ckpt = save_npz(tmp_path / "tiny.npz", random_weights(spec, seed=3, scale=0.2), spec)
    kitti = write_tiny_kitti(tmp_path / "kitti", n_images=4)
    flags = ["sensitivity", "--checkpoint", ckpt, "--kitti-root", kitti, "--bits", "3",
             "--test-bits", "2"]  # fmt: skip
    docs = []
    for name, extra in (("single", []), ("two", ["--workers", "2"])):
        rc, stdout, err = run(capsys, *flags, "--out", tmp_path / f"{name}.json", *extra)
        assert rc == 0, err
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        docs.append({k: v for k, v in doc.items() if k != "versions"})
    assert docs[0] == docs[1]
    assert not (tmp_path / "two.tasks").exists() and (tmp_path / "two.cluster.json").is_file()
