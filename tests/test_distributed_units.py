"""engine.distributed without a Ray runtime: the resource rule (CPU threads, GPUs), the
cluster spec, shards, the task folder, the model payload, and the one-line message
when Ray is not installed (``--workers`` / ``--ray`` on every parallel command)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from squeezelens.engine.distributed.runtime import (
    ClusterSpec,
    Runtime,
    default_workers,
    worker_resources,
)
from squeezelens.engine.distributed.tasks import (
    Shard,
    Task,
    TaskStore,
    default_shard_size,
    make_shards,
    pack,
    unpack,
)
from squeezelens.engine.errors import InputError
from squeezelens.engine.sweep import SweepPoint
from squeezelens.engine.types import Detections, ImageRecord
from tests.test_cli import assert_one_line_error

CLASSES = ("car", "pedestrian", "cyclist")


# --- the resource rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "gpus", "workers", "want"),
    [
        (2, 0, 2, (1.0, 0.0, 1)),  # this machine: one thread per worker, no oversubscription
        (2, 0, 1, (2.0, 0.0, 2)),  # one worker takes both cores
        (2, 0, 3, (0.6666, 0.0, 1)),  # more workers than cores: fractions, one thread each
        (8, 2, 4, (2.0, 0.5, 2)),  # two workers share each GPU
        (16, 4, 2, (8.0, 1.0, 8)),  # a worker uses one GPU at most
        (32, 0, 5, (6.4, 0.0, 6)),
    ],
)
def test_workers_split_cpus_and_gpus_without_oversubscribing(cpus, gpus, workers, want) -> None:
    res = worker_resources(cpus, gpus, workers)
    assert (res.num_cpus, res.num_gpus, res.threads) == want
    assert res.num_cpus * workers <= cpus  # all workers always fit on the cluster
    if workers <= cpus:
        assert res.threads * workers <= cpus  # never more compute threads than cores


def test_default_workers_one_per_gpu_else_per_cpu() -> None:
    assert default_workers(8, 0) == 8
    assert default_workers(64, 4) == 4
    assert default_workers(0.5, 0) == 1


class FakeRay(types.ModuleType):
    """Stands in for ``ray``: records how the runtime is started and reports resources."""

    def __init__(self, resources: dict) -> None:
        super().__init__("ray")
        self.__version__ = "fake"
        self.started: dict | None = None
        self._resources = resources

    def is_initialized(self) -> bool:
        return self.started is not None

    def init(self, **kwargs) -> None:
        self.started = kwargs

    def shutdown(self) -> None:
        self.started = None

    def cluster_resources(self) -> dict:
        return self._resources

    def nodes(self) -> list:
        return [{"Alive": True, "NodeID": "n1", "Resources": self._resources}]


def test_a_local_runtime_offers_the_gpus_tensorflow_sees_and_workers_ask_for_them(
    monkeypatch,
) -> None:
    import squeezelens.engine.distributed.runtime as runtime

    fake = FakeRay({"CPU": 8.0, "GPU": 1.0})
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(runtime, "local_gpus", lambda: 1)
    with Runtime(ClusterSpec(workers=2)) as rt:
        assert fake.started["num_gpus"] == 1 and fake.started["num_cpus"] >= 1
        assert fake.started["address"] == "local"  # never a cluster `ray start` left here
        workers, res = rt.resources()
        assert workers == 2 and res.num_gpus == 0.5 and res.threads == 4
        assert rt.record()["gpus"] == 1.0
    assert fake.started is None  # started here, so shut down here


def test_joining_a_cluster_defaults_to_one_worker_per_gpu(monkeypatch) -> None:
    fake = FakeRay({"CPU": 64.0, "GPU": 4.0})
    monkeypatch.setitem(sys.modules, "ray", fake)
    import squeezelens.engine.distributed.reach as reach

    monkeypatch.setattr(reach, "check_reachable", lambda address: None)  # no real cluster here
    with Runtime(ClusterSpec(address="auto")) as rt:
        assert fake.started["address"] == "auto"
        workers, res = rt.resources()
    assert (workers, res.num_gpus, res.threads) == (4, 1.0, 16)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"workers": 0}, "between 1 and"),
        ({"workers": -2}, "between 1 and"),
        ({"workers": "2"}, "integer"),
        ({}, "--workers N"),
        ({"address": "  "}, "address"),
    ],
)
def test_bad_cluster_specs_are_one_line_input_errors(kwargs, problem) -> None:
    with pytest.raises(InputError, match=problem):
        ClusterSpec(**kwargs)


def test_images_are_shipped_only_to_a_joined_cluster_unless_asked() -> None:
    assert not ClusterSpec(workers=2).ships_images
    assert ClusterSpec(address="auto").ships_images
    assert ClusterSpec(workers=2, ship_images=True).ships_images


# --- Ray missing ---------------------------------------------------------------------------


@pytest.fixture()
def no_ray(monkeypatch):
    """Import of ``ray`` fails, as on an install without the extra."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_without_ray_the_engine_names_the_extra(no_ray) -> None:
    from squeezelens.engine.distributed import import_ray

    with pytest.raises(InputError, match=r"pip install 'squeezelens\[distributed\]'"):
        import_ray()


@pytest.mark.parametrize("command", ["evaluate", "sweep", "sensitivity", "search"])
@pytest.mark.parametrize("flag", [["--workers", "2"], ["--ray", "auto"]])
def test_without_ray_every_parallel_command_fails_in_one_line_before_loading(
    capsys, no_ray, no_model_load, tmp_path, command, flag
) -> None:
    extra = ["--out", tmp_path / "out", "--bits", "4"] if command in ("sweep", "search") else []
    assert_one_line_error(capsys, [command, *flag, *extra], "squeezelens[distributed]")


def test_zero_workers_is_a_one_line_error(capsys) -> None:
    assert_one_line_error(capsys, ["evaluate", "--workers", "0"], "--workers", "between 1")


# --- shards and the task folder --------------------------------------------------------------


def records(n: int) -> list[ImageRecord]:
    return [ImageRecord(f"{i:06d}", f"/data/{i:06d}.png") for i in range(n)]


@pytest.mark.parametrize(("n", "size"), [(1, 4), (45, 4), (100, 8), (500, 32), (3741, 64)])
def test_shard_size_follows_the_dataset_only(n: int, size: int) -> None:
    assert default_shard_size(n) == size
    assert size % 4 == 0  # every batch of a sharded run is a batch of the single-process run


def test_shards_cover_the_dataset_in_order_with_stable_ids() -> None:
    shards = make_shards(records(45))
    assert [s.start for s in shards] == list(range(0, 45, 4))
    assert [stem for s in shards for stem in s.stems] == [r.stem for r in records(45)]
    assert [s.id for s in shards] == [s.id for s in make_shards(records(45))]
    other = make_shards([ImageRecord("x" + r.stem, r.path) for r in records(45)])
    assert shards[0].id != other[0].id  # another image set never matches a stored task
    assert shards[-1].records()[-1] == ImageRecord("000044", "/data/000044.png")


def detections(seed: int, n: int) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(1, 50, (n, 2)).astype(np.float32)], axis=1)
    return Detections(boxes, rng.uniform(0, 1, n), rng.integers(0, 3, n), CLASSES)


def same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(
        np.array_equal(a[k].boxes_xyxy, b[k].boxes_xyxy)
        and np.array_equal(a[k].scores, b[k].scores)
        and np.array_equal(a[k].labels, b[k].labels)
        and a[k].class_names == b[k].class_names
        for k in a
    )


def test_packed_detections_come_back_bit_identical() -> None:
    dets = {"a": detections(0, 5), "b": Detections.empty(CLASSES), "c": detections(1, 64)}
    assert same(unpack(pack(dets), CLASSES), dets)
    assert unpack(pack({}), CLASSES) == {}


def test_task_store_keeps_a_task_and_refuses_other_configs_and_damage(tmp_path: Path) -> None:
    from squeezelens.engine.quant import QuantConfig

    shard = Shard(0, ("a", "c"), ("/a.png", "/c.png"))
    dets = {"a": detections(2, 3), "c": detections(3, 7)}
    point = SweepPoint(QuantConfig(bits=4, rounding="stochastic", seed=3))
    store = TaskStore(tmp_path / "tasks", "model-1", CLASSES)
    task = Task(0, point, shard)
    assert store.load(task) is None
    store.save(task, dets)
    assert same(store.load(task), dets)
    assert not list(tmp_path.rglob("*.tmp*"))  # written atomically
    # another seed, another model or another shard never reads this file
    assert store.load(Task(0, SweepPoint(point.quant.replace(seed=4)), shard)) is None
    assert TaskStore(tmp_path / "tasks", "model-2", CLASSES).load(task) is None
    assert store.load(Task(0, point, Shard(0, ("a", "b"), ("/a.png", "/b.png")))) is None
    store.path(task).write_bytes(b"PK\x03\x04 torn")
    assert store.load(task) is None  # damaged: run again
    store.save(task, dets)
    store.discard(point)
    assert store.load(task) is None and (tmp_path / "tasks").is_dir()
    store.remove()
    assert not (tmp_path / "tasks").exists()


def test_detections_only_and_detections_with_noise_tasks_never_mix(tmp_path: Path) -> None:
    from squeezelens.engine.distributed.tasks import NOISE
    from squeezelens.engine.output_noise import OutputError

    shard = Shard(4, ("a", "c"), ("/a.png", "/c.png"))
    dets = {"a": detections(4, 2), "c": detections(5, 6)}
    point = SweepPoint(None)
    store = TaskStore(tmp_path / "tasks", "model-1", CLASSES)
    plain, noisy = Task(0, point, shard), Task(0, point, shard, NOISE)
    store.save(plain, dets)
    assert store.load_result(noisy) is None  # a detections-only file never answers for noise
    error = OutputError({"a": 0.1 + 0.2, "c": 1e-300}, 7)
    store.save(noisy, dets, error)
    assert store.path(noisy).parent != store.path(plain).parent
    got_dets, got_error = store.load_result(noisy)
    assert same(got_dets, dets) and got_error == error  # float64 sums, bit for bit
    assert store.load_result(plain)[1] is None and same(store.load(plain), dets)
    store.discard(point)
    assert store.load(plain) is None and store.load_result(noisy) is not None
    store.discard(point, NOISE)
    assert store.load_result(noisy) is None


# --- the model payload ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_payload_rebuilds_the_same_model_and_names_what_shapes_detections(tiny_detector) -> None:
    from squeezelens.engine.distributed import ModelPayload
    from squeezelens.engine.provenance import weights_sha256

    payload = ModelPayload.from_model(tiny_detector)
    rebuilt = payload.build()
    assert rebuilt.spec == tiny_detector.spec
    assert weights_sha256(rebuilt.float_weights) == weights_sha256(tiny_detector.float_weights)
    assert rebuilt.activation_ranges is None
    x = np.random.default_rng(0).normal(0, 30, (1, 96, 256, 3)).astype(np.float32)
    assert np.array_equal(rebuilt.forward(x), tiny_detector.forward(x))
    saved = tiny_detector.activation_ranges
    try:
        tiny_detector.activation_ranges = {"conv1": 3.5}
        calibrated = ModelPayload.from_model(tiny_detector)
    finally:
        tiny_detector.activation_ranges = saved
    assert calibrated.identity != payload.identity
    assert calibrated.build().activation_ranges == {"conv1": 3.5}


def test_sample_data_makes_a_val_split_of_the_kitti_val_size() -> None:
    from squeezelens.engine.synth.dataset import split_indices

    train, val = split_indices(3741, 0, 1.0)  # sample-data --count 3741 --val-fraction 1
    assert len(val) == 3741 and val == sorted(set(val)) and train == []
