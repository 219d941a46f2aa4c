"""INT8 full-integer TFLite conversion, LiteRT inference, caching and the export command.

Everything runs on a random-weight SqueezeDet at 128x64 (grid 8x4), so one
conversion takes a few seconds.  The detector is loaded from an .npz
checkpoint and calibrated on PNG files so that the export command, given the
same files, must hit the cache the fixture filled.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezelens.engine.errors import Cancelled, InputError

SIZE = (128, 64)  # (W, H)
N_CALIB = 8


def he_weights(spec, seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialised kernels of the official shapes, so activations neither vanish nor
    explode over the 26 ReLU layers; ConvDet scaled by 0.1 so raw outputs look like logits."""
    from squeezelens.engine.model.spec import expected_shapes

    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_shapes(spec).items():
        if name.endswith("kernels"):
            std = np.sqrt(2.0 / np.prod(shape[:3])) * (0.1 if name.startswith("conv12") else 1.0)
            out[name] = rng.normal(0.0, std, shape).astype(np.float32)
        else:
            out[name] = rng.normal(0.0, 0.01, shape).astype(np.float32)
    return out


def scene(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A smooth random BGR scene (H, W, 3) uint8: colour blobs plus a little noise."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
    im = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 8, (h, w, 3))
    return np.clip(im, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small .npz checkpoint (+ sidecar), a folder of calibration PNGs, a cache root."""
    from squeezelens.engine.checkpoint import save_npz
    from squeezelens.engine.model.spec import ArchSpec

    root = tmp_path_factory.mktemp("int8")
    spec = ArchSpec().with_input_size(SIZE)
    ckpt = save_npz(root / "small.npz", he_weights(spec), spec)
    calib = root / "calib"
    calib.mkdir()
    for i in range(N_CALIB):
        cv2.imwrite(str(calib / f"img{i:02d}.png"), scene(i))
    return {"ckpt": ckpt, "calib": calib, "cache": root / "cache"}


@pytest.fixture(scope="module")
def detector(files):
    from squeezelens.engine.detector import Detector

    return Detector.from_checkpoint(files["ckpt"])


@pytest.fixture(scope="module")
def calib_images(files) -> list[np.ndarray]:
    from squeezelens.engine.data.images import list_images, read_image_bgr

    return [read_image_bgr(p) for p in list_images(files["calib"])]


@pytest.fixture(scope="module")
def int8_path(detector, calib_images, files) -> Path:
    from squeezelens.engine.int8 import get_or_convert_int8

    return get_or_convert_int8(detector, calib_images, cache_dir=files["cache"] / "int8")


@pytest.fixture(scope="module")
def int8(detector, int8_path):
    from squeezelens.engine.int8 import Int8Detector

    return Int8Detector(detector, int8_path)


def _counting(monkeypatch) -> list[int]:
    """Count calls of convert_int8 made through the cache (the real conversion still runs)."""
    import squeezelens.engine.int8.convert as conv

    calls: list[int] = []
    real = conv.convert_int8

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv, "convert_int8", counted)
    return calls


# ----------------------------------------------------------------- the model
@pytest.mark.slow
def test_graph_is_integer_only(int8):
    """Every conv has int8 weights (per-channel scales) and int32 biases; no float tensor
    and no QUANTIZE/DEQUANTIZE op anywhere: the interpreter never computes in float."""
    interp = int8._interp
    tensors = interp.get_tensor_details()
    ops = interp._get_ops_details()
    assert {t["dtype"] for t in tensors} <= {np.int8, np.int32}
    assert not {op["op_name"] for op in ops} & {"QUANTIZE", "DEQUANTIZE"}
    convs = [op for op in ops if op["op_name"] == "CONV_2D"]
    assert len(convs) == 32  # conv1 + 10 fires x 3 + conv12
    for op in convs:
        act, weight, bias = (tensors[i] for i in op["inputs"])
        assert act["dtype"] == np.int8 and tensors[op["outputs"][0]]["dtype"] == np.int8
        assert weight["dtype"] == np.int8 and bias["dtype"] == np.int32
        out_channels = weight["shape"][0]
        assert len(weight["quantization_parameters"]["scales"]) == out_channels
        assert np.all(weight["quantization_parameters"]["zero_points"] == 0)  # symmetric
    report = int8.size_report()
    assert report.conv_weight_types == {"int8": 32} and report.conv_bias_types == {"int32": 32}
    assert report.tflite_bytes * 3 < report.float_weight_bytes  # int8 weights: ~4x smaller
    assert "smaller" in report.format()


def _relative_errors(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(RMS error / RMS reference, max |error| / max |reference|)."""
    err = other - reference
    rms = float(np.sqrt(np.mean(err**2) / np.mean(reference**2)))
    return rms, float(np.max(np.abs(err)) / np.max(np.abs(reference)))


@pytest.mark.slow
def test_raw_output_close_to_float(detector, int8):
    """On held-out images the INT8 ConvDet output is within 8% RMS / 15% max of float,
    and much closer to its own image's float output than to any other image's.

    Why these bounds: each of the ~32 int8 activation tensors adds rounding noise
    of RMS step/sqrt(12) ~ range/880, i.e. ~1% of a ReLU tensor's RMS (range ~ 8x
    RMS), and per-channel int8 weights add about as much; independent noise adds
    in variance, so sqrt(64) x 1% ~ 8% at worst; measured here: 3.2% RMS, 6.7%
    max.  A random deep ReLU net maps all scenes to similar outputs (images differ
    by only ~10-16% RMS), so an absolute bound alone could pass a model that
    ignores its input: the second check requires the INT8 output to keep each
    image apart from the others (measured: 3x closer to its own float output).
    """
    seeds = range(100, 106)
    floats = [detector.raw_output(scene(s))[0] for s in seeds]
    ints = [int8.raw_output(scene(s))[0] for s in seeds]
    assert ints[0].shape == floats[0].shape == (4, 8, detector.spec.convdet_outputs)
    errors = np.array([_relative_errors(f, q) for f, q in zip(floats, ints)])
    assert errors[:, 0].max() < 0.08 and errors[:, 1].max() < 0.15, errors
    for i, q in enumerate(ints):
        others = [_relative_errors(f, q)[0] for j, f in enumerate(floats) if j != i]
        assert 2 * errors[i, 0] < min(others), (i, errors[i, 0], others)


@pytest.mark.slow
def test_output_dequantized_with_tensor_params(int8, detector):
    """raw_output = (int8 output - zero point) * scale, exactly."""
    x, _ = detector.preprocess(scene(7))
    raw, _ = int8.raw_output(scene(7))
    q = int8._interp.get_tensor(int8._out["index"])
    scale, zero = int8.output_quantization
    assert q.dtype == np.int8 and scale > 0
    np.testing.assert_array_equal(raw, (q[0].astype(np.float32) - zero) * np.float32(scale))
    np.testing.assert_allclose(int8.forward(x[None])[0], raw)


@pytest.mark.slow
def test_detect_returns_detections(int8, files):
    from squeezelens.engine.types import Detections

    image = scene(3)
    dets = int8.detect(image)
    assert isinstance(dets, Detections) and len(dets) > 0
    assert dets.class_names == int8.class_names
    assert np.all(dets.scores[:-1] >= dets.scores[1:])
    cut = float(dets.scores[len(dets) // 2])
    assert np.all(int8.detect(image, threshold=cut).scores >= cut)
    by_path = int8.detect(files["calib"] / "img03.png")
    np.testing.assert_array_equal(by_path.boxes_xyxy, dets.boxes_xyxy)
    assert len(int8.detect_batch([image, image])) == 2
    with pytest.raises(InputError):
        int8.detect(image, quant=object())
    with pytest.raises(InputError):
        int8.detect(np.zeros((10, 10), np.uint8))


# ------------------------------------------------------------------- caching
@pytest.mark.slow
def test_cache_hit_does_not_reconvert(detector, calib_images, files, int8_path, monkeypatch):
    from squeezelens.engine.int8 import Int8Detector, get_or_convert_int8

    calls = _counting(monkeypatch)
    mtime = int8_path.stat().st_mtime_ns
    again = get_or_convert_int8(detector, calib_images, cache_dir=files["cache"] / "int8")
    assert again == int8_path and again.stat().st_mtime_ns == mtime and calls == []
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(files["cache"]))  # default dir -> same cache
    q = Int8Detector.from_detector(
        detector, [files["calib"] / f"img{i:02d}.png" for i in range(N_CALIB)]
    )
    assert q.model_path == int8_path and calls == []


def test_default_cache_dir(monkeypatch, tmp_path):
    from squeezelens.engine.int8 import default_cache_dir

    monkeypatch.delenv("SQUEEZELENS_CACHE", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "squeezelens" / "int8"
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "int8"


def test_cache_key_depends_on_weights_size_and_images(detector, calib_images, tmp_path):
    from squeezelens.engine.int8.cache import cache_path

    base = cache_path(detector, calib_images, tmp_path)
    assert base.parent == tmp_path and "128x64" in base.name
    assert cache_path(detector, calib_images[:-1], tmp_path) != base
    flipped = [calib_images[0][::-1].copy(), *calib_images[1:]]
    assert cache_path(detector, flipped, tmp_path) != base

    class Other:  # same spec, other weights, no checkpoint file
        spec, checkpoint = detector.spec, None
        float_weights = {k: v + 1 for k, v in detector.float_weights.items()}

    assert cache_path(Other, calib_images, tmp_path) != base

    class Resized(Other):
        spec = detector.spec.with_input_size((160, 64))
        float_weights = detector.float_weights

    assert "160x64" in cache_path(Resized, calib_images, tmp_path).name


@pytest.mark.slow
def test_corrupt_cache_file_is_replaced(detector, calib_images, tmp_path, monkeypatch):
    from squeezelens.engine.int8 import get_or_convert_int8
    from squeezelens.engine.int8.cache import cache_path, is_valid_tflite

    path = cache_path(detector, calib_images, tmp_path)
    path.write_bytes(b"\0" * 10)  # a truncated write from some crash
    calls = _counting(monkeypatch)
    assert get_or_convert_int8(detector, calib_images, cache_dir=tmp_path) == path
    assert calls == [1] and is_valid_tflite(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


# -------------------------------------------------------- cancel, bad input
def test_cancel_before_start_converts_nothing(detector, calib_images, tmp_path):
    from squeezelens.engine.int8 import get_or_convert_int8
    from squeezelens.engine.jobs import CancelToken

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        get_or_convert_int8(detector, calib_images, cache_dir=tmp_path, cancel=token)
    assert list(tmp_path.glob("*")) == []


@pytest.mark.slow
def test_cancel_during_calibration(detector, calib_images, tmp_path):
    """Cancelling from the progress callback stops at the next image; nothing is cached."""
    from squeezelens.engine.int8 import get_or_convert_int8
    from squeezelens.engine.jobs import CancelToken

    token, seen = CancelToken(), []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        get_or_convert_int8(detector, calib_images, tmp_path, progress=progress, cancel=token)
    assert seen == [(1, N_CALIB + 2), (2, N_CALIB + 2), (3, N_CALIB + 2)]
    assert list(tmp_path.glob("*")) == []


@pytest.mark.slow
def test_isolated_conversion_equals_in_process(
    detector, calib_images, int8_path, tmp_path, monkeypatch
):
    """The child-process conversion (what the GUI uses) gives the in-process model's bytes,
    and relays every progress step, even when started from a folder whose ``engine/`` and
    ``squeezelens/`` decoys would break the child if it imported them."""
    from squeezelens.engine.int8 import get_or_convert_int8

    decoy = tmp_path / "decoy"
    for package in ("engine", "squeezelens", "squeezelens/engine", "squeezelens/engine/int8"):
        (decoy / package).mkdir(parents=True)
        (decoy / package / "__init__.py").write_text("raise SystemExit('decoy imported')\n")
    (decoy / "squeezelens/engine/int8/isolated.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(decoy)
    seen = []
    path = get_or_convert_int8(detector, calib_images, tmp_path / "cache",
                               progress=lambda d, t: seen.append((d, t)), isolated=True)  # fmt: skip
    assert path.read_bytes() == int8_path.read_bytes()
    assert seen == [(i, N_CALIB + 2) for i in range(1, N_CALIB + 3)]


@pytest.mark.slow
def test_isolated_conversion_cancels_by_killing_the_child(detector, calib_images, tmp_path):
    from squeezelens.engine.int8.isolated import convert_int8_isolated
    from squeezelens.engine.jobs import CancelToken

    token, seen = CancelToken(), []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        convert_int8_isolated(detector, calib_images, progress, token)
    assert seen and seen[-1] < N_CALIB + 2  # stopped before the end


def test_isolated_child_reports_bad_input_as_one_line(detector, tmp_path):
    """A job the child cannot read: exit code 2 and an 'error' line, no traceback."""
    import subprocess
    import sys

    (tmp_path / "job.json").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "squeezelens.engine.int8.isolated", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stdout.startswith("error ") and "weights.npz" in out.stdout
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "bad",
    [
        [],
        np.zeros((64, 128, 3), np.uint8),  # one image, not a sequence of images
        [np.zeros((64, 128), np.uint8)],  # gray, no channel axis
        [np.zeros((0, 5, 3), np.uint8)],
        [np.full((8, 8, 3), np.nan, np.float32)],
        ["/no/such/image.png"],
        [None],
    ],
    ids=["empty", "single-array", "2d", "zero-size", "nan", "missing-file", "none"],
)
def test_bad_calibration_input(detector, tmp_path, bad):
    from squeezelens.engine.int8 import convert_int8, get_or_convert_int8

    with pytest.raises(InputError):
        convert_int8(detector, bad)
    with pytest.raises(InputError):
        get_or_convert_int8(detector, bad, cache_dir=tmp_path)


@pytest.mark.slow
def test_unusable_model_files(detector, tmp_path, int8_path):
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.int8 import Int8Detector

    with pytest.raises(InputError):
        Int8Detector(detector, b"not a flatbuffer")
    spec = detector.spec.with_input_size((160, 64))
    other = Detector(spec, he_weights(spec))
    with pytest.raises(InputError, match="needs"):  # a model of another input size
        Int8Detector(other, int8_path)


# ------------------------------------------------------------------- export
def _export(argv: list[str]) -> int:
    from squeezelens.cli.commands import export

    parser = argparse.ArgumentParser()
    export.register(parser.add_subparsers())
    args = parser.parse_args(["export", *argv])
    return args.func(args)


@pytest.mark.parametrize(
    ("out", "fmt", "int8", "expected"),
    [
        ("w.npz", None, False, "npz"),
        ("model.ckpt-5", None, False, "tf1"),
        ("prefix", None, False, "tf1"),
        ("plain", "npz", False, "npz"),
        ("m.tflite", None, False, "tflite"),
        ("m.tflite", None, True, "tflite"),
        ("m", None, True, "tflite"),
    ],
)
def test_export_format_resolution(out, fmt, int8, expected):
    from squeezelens.cli.commands.export import resolve_format

    assert resolve_format(Path(out), fmt, int8) == expected


@pytest.mark.parametrize(
    ("out", "fmt", "int8"),
    [("w.h5", None, False), ("w.npz", None, True), ("w.tflite", "npz", False), ("w", "tf1", True)],
)
def test_export_format_conflicts(out, fmt, int8):
    from squeezelens.cli.commands.export import resolve_format

    with pytest.raises(InputError):
        resolve_format(Path(out), fmt, int8)


@pytest.mark.slow
def test_export_float_round_trip(files, detector, tmp_path):
    from squeezelens.engine.checkpoint import load_checkpoint

    assert _export(["--checkpoint", str(files["ckpt"]), "--out", str(tmp_path / "w.npz")]) == 0
    assert (
        _export(["--checkpoint", str(files["ckpt"]), "--out", str(tmp_path / "tf1" / "m.ckpt-1")])
        == 0
    )
    for path in (tmp_path / "w.npz", tmp_path / "tf1" / "m.ckpt-1"):
        ckpt = load_checkpoint(path)
        assert ckpt.spec == detector.spec
        for name, value in detector.float_weights.items():
            np.testing.assert_array_equal(ckpt.weights[name], value)


@pytest.mark.slow
def test_export_int8_uses_cache_and_writes_sidecar(files, int8_path, tmp_path, monkeypatch, capsys):
    calls = _counting(monkeypatch)
    monkeypatch.setenv("SQUEEZELENS_CACHE", str(files["cache"]))
    out = tmp_path / "model.tflite"
    argv = [
        "--checkpoint",
        str(files["ckpt"]),
        "--out",
        str(out),
        "--int8",
        "--calib",
        str(files["calib"]),
    ]
    assert _export([*argv, "--calib-count", str(N_CALIB)]) == 0
    assert calls == []  # same checkpoint file, size and images as the fixture: a cache hit
    assert out.read_bytes() == int8_path.read_bytes()
    side = json.loads(Path(str(out) + ".json").read_text())
    assert side["format"] == "tflite-int8" and side["input_size"] == list(SIZE)
    assert side["output_quantization"]["scale"] > 0
    prov = side["provenance"]
    assert prov["checkpoint"]["sha256"] == side["checkpoint_sha256"]
    assert prov["config"]["calibration"]["count"] == N_CALIB
    assert "ai-edge-litert" in prov["versions"]
    assert "smaller" in capsys.readouterr().out
    with pytest.raises(InputError, match="calib-count"):
        _export([*argv, "--calib-count", "0"])
    with pytest.raises(InputError, match="no train split"):  # without --calib: the train split
        _export([*argv[:-3], "--kitti-root", str(tmp_path)])
