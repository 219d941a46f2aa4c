"""The ``squeezelens`` command line: help, one-line errors with exit code 2, happy paths.

Commands run in-process through ``cli.main.main`` (TensorFlow is imported once),
with stdout/stderr captured by capsys; one test runs the installed entry point
in a subprocess.  The model is a random-weight SqueezeDet at 256x96 saved as an
.npz checkpoint with its sidecar; the dataset a tiny KITTI tree written to a
temporary folder.  The real checkpoint and KITTI frames under ../shared are used
by one test, skipped when they are absent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from squeezelens.cli.main import COMMANDS, build_parser, main
from squeezelens.engine.model.spec import ArchSpec
from tests.conftest import REAL_CKPT, REAL_KITTI, need_shared, random_weights
from tests.test_sweep import write_tiny_kitti

SIZE = (256, 96)
VAL, TRAIN = [1, 2, 3], [0, 1]
STEMS = [f"{i:06d}" for i in range(4)]
VAL_STEMS = [STEMS[i] for i in VAL]
RESULT_KEYS = {
    "protocol",
    "split",
    "checkpoint",
    "quant",
    "versions",
    "ap",
    "map",
    "counts",
    "warnings",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints (.npz + sidecar; a second one with other weights) and KITTI trees."""
    from squeezelens.engine.checkpoint import save_npz

    root = tmp_path_factory.mktemp("cli")
    spec = ArchSpec().with_input_size(SIZE)
    kitti = write_tiny_kitti(root / "kitti", n_images=4, splits={"val": VAL, "train": TRAIN})
    no_train = write_tiny_kitti(root / "kitti_val_only", n_images=2, splits={"val": [0, 1]})
    return {
        "root": root,
        "ckpt": save_npz(root / "tiny.npz", random_weights(spec, seed=0), spec),
        "other_ckpt": save_npz(root / "other.npz", random_weights(spec, seed=1), spec),
        "kitti": kitti,
        "no_train": no_train,
        "images": kitti / "training" / "image_2",
    }


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """main(argv) -> (exit code, stdout, stderr); SystemExit (argparse) becomes its code."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(capsys, argv: list, *needles: str) -> str:
    """The command exits 2 with one stderr line naming the problem, and no traceback."""
    rc, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"squeezelens {argv[0]}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(capsys, command: str) -> None:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    name = next((n for n in (command, command.replace("_", "-")) if n in subparsers.choices), None)
    if name is None:
        pytest.skip(f"command {command} is not built in this checkout")
    rc, out, _ = run(capsys, name, "--help")
    assert rc == 0
    assert out.startswith(f"usage: squeezelens {name}")


def test_the_core_subcommands_are_registered() -> None:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"detect", "evaluate", "quantize", "sweep", "export"} <= set(subparsers.choices)


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    rc, out, _ = run(capsys)
    assert rc == 2 and "usage: squeezelens" in out


def test_installed_entry_point_help_and_exit_code(tmp_path) -> None:
    exe = Path(sys.executable).parent / "squeezelens"
    if not exe.exists():
        found = shutil.which("squeezelens")
        if found is None:
            pytest.skip("the squeezelens entry point is not installed")
        exe = Path(found)
    ok = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    for name in ("detect", "evaluate", "quantize", "sweep", "export"):
        assert name in ok.stdout
    missing = tmp_path / "missing.npz"
    bad = subprocess.run(
        [exe, "quantize", "--checkpoint", missing, "--out", tmp_path / "q.npz"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert str(missing) in lines[0] and "no such checkpoint" in lines[0]


# --- bad input: exit 2, one line ----------------------------------------------------------


def test_missing_checkpoint(capsys, files) -> None:
    missing = files["root"] / "nope" / "model.npz"
    assert_one_line_error(
        capsys,
        ["detect", "--checkpoint", missing, "--images", files["images"]],
        str(missing),
        "no such checkpoint",
    )


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("broken.npz", b"PK\x03\x04" + b"\x00garbage" * 20, "cannot read .npz"),
        ("noise.bin", bytes(range(256)) * 4, "not a checkpoint"),
        ("empty.npz", b"", "empty"),
    ],
)
def test_corrupt_checkpoint_file(capsys, files, name, content, problem) -> None:
    path = files["root"] / name
    path.write_bytes(content)
    assert_one_line_error(
        capsys,
        ["evaluate", "--checkpoint", path, "--kitti-root", files["kitti"]],
        str(path),
        problem,
    )


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--bits", "0"], "bits must be between 1 and 16, got 0"),
        (["--bits", "40"], "bits must be between 1 and 16, got 40"),
        (["--bits", "four"], "--bits must be an integer"),
        (["--rounding", "bankers"], "rounding must be one of nearest, stochastic"),
        (["--scale", "tensor"], "scale must be one of"),
        (["--activation-bits", "2"], "activation_bits must be off or between 4 and 16"),
        (["--layer-bits", "fire99/squeeze1x1=4"], "fire99/squeeze1x1"),
    ],
)
def test_bad_quantization_flags(capsys, files, flags, problem) -> None:
    out = files["root"] / "q_bad.npz"
    assert_one_line_error(
        capsys, ["quantize", "--checkpoint", files["ckpt"], "--out", out, *flags], problem
    )
    assert not out.exists()


@pytest.mark.slow
def test_bad_bits_in_detect_and_sweep(capsys, files) -> None:
    assert_one_line_error(
        capsys,
        ["detect", "--checkpoint", files["ckpt"], "--images", files["images"], "--bits", "40"],
        "got 40",
    )
    assert_one_line_error(
        capsys,
        [
            "sweep",
            "--checkpoint",
            files["ckpt"],
            "--kitti-root",
            files["kitti"],
            "--bits",
            "3,17",
            "--out",
            files["root"] / "sweep_bad",
        ],
        "got 17",
    )
    assert not (files["root"] / "sweep_bad").exists()


@pytest.mark.slow
def test_int8_with_weight_flags(capsys, files) -> None:
    assert_one_line_error(
        capsys,
        [
            "detect",
            "--checkpoint",
            files["ckpt"],
            "--images",
            files["images"],
            "--int8",
            "--bits",
            "4",
        ],
        "--int8",
        "weight quantization flags",
    )


@pytest.mark.slow
def test_activation_bits_without_calibration_images(capsys, files) -> None:
    # evaluate falls back to the train split for calibration; this folder has none
    assert_one_line_error(
        capsys,
        [
            "evaluate",
            "--checkpoint",
            files["ckpt"],
            "--kitti-root",
            files["no_train"],
            "--activation-bits",
            "8",
        ],
        "no calibration images",
        "--calib",
    )


def test_threshold_out_of_range(capsys, files) -> None:
    assert_one_line_error(
        capsys,
        ["detect", "--checkpoint", files["ckpt"], "--images", files["images"], "--threshold", "2"],
        "--threshold must be in [0, 1]",
        "2",
    )


def test_evaluate_on_a_folder_that_is_not_kitti(capsys, files) -> None:
    empty = files["root"] / "not_kitti"
    empty.mkdir(exist_ok=True)
    (empty / "notes.txt").write_text("no images here\n")
    assert_one_line_error(
        capsys,
        ["evaluate", "--checkpoint", files["ckpt"], "--kitti-root", empty],
        str(empty),
        "not a KITTI folder",
    )


@pytest.mark.slow
def test_evaluate_on_images_without_labels(capsys, files) -> None:
    assert_one_line_error(
        capsys,
        ["evaluate", "--checkpoint", files["ckpt"], "--kitti-root", _unlabelled(files)],
        "no KITTI labels",
    )


def _unlabelled(files: dict[str, Path]) -> Path:
    folder = files["root"] / "plain_images"
    if not folder.exists():
        shutil.copytree(files["images"], folder)
    return folder


def test_split_file_naming_a_missing_image(capsys, files) -> None:
    root = files["root"] / "kitti_bad_split"
    write_tiny_kitti(root, n_images=2, splits={"val": [0, 1, 7]})
    split_file = root / "ImageSets" / "val.txt"
    assert_one_line_error(
        capsys,
        ["evaluate", "--checkpoint", files["ckpt"], "--kitti-root", root],
        str(split_file),
        "000007",
    )


def test_quantize_out_must_be_npz(capsys, files) -> None:
    out = files["root"] / "weights.h5"
    assert_one_line_error(
        capsys, ["quantize", "--checkpoint", files["ckpt"], "--out", out], str(out), ".npz"
    )
    assert not out.exists()


@pytest.mark.slow
def test_sweep_folder_made_for_another_checkpoint(capsys, files, swept) -> None:
    before = (swept / "sweep.csv").read_bytes()
    assert_one_line_error(
        capsys,
        [
            "sweep",
            "--checkpoint",
            files["other_ckpt"],
            "--kitti-root",
            files["kitti"],
            "--bits",
            "4,8",
            "--out",
            swept,
        ],
        str(swept),
        "another checkpoint sha256",
    )
    assert (swept / "sweep.csv").read_bytes() == before


# --- happy paths ------------------------------------------------------------------------------


@pytest.mark.slow
def test_detect_writes_json_lines_to_stdout(capsys, files) -> None:
    rc, out, _ = run(capsys, "detect", "--checkpoint", files["ckpt"], "--images", files["images"])
    assert rc == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in records] == [f"{s}.png" for s in STEMS]
    for r in records:
        assert r["detections"], "a random model still keeps some boxes"
        scores = [d["score"] for d in r["detections"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        for d in r["detections"]:
            x1, y1, x2, y2 = d["box"]
            assert d["class"] in ("car", "pedestrian", "cyclist") and x1 <= x2 and y1 <= y2

    top = float(np.median([r["detections"][0]["score"] for r in records]))
    rc, out, _ = run(
        capsys,
        "detect",
        "--checkpoint",
        files["ckpt"],
        "--images",
        files["images"] / "000000.png",
        "--threshold",
        str(top),
    )
    kept = json.loads(out)["detections"]
    assert rc == 0 and all(d["score"] >= top for d in kept)
    assert len(kept) < len(records[0]["detections"])


@pytest.mark.slow
def test_detect_to_json_and_kitti_files(capsys, files, tmp_path) -> None:
    common = ["detect", "--checkpoint", files["ckpt"], "--images", files["images"], "--bits", "6"]
    rc, _, err = run(capsys, *common, "--out", tmp_path / "json", "--format", "json")
    assert rc == 0 and "wrote 4 json files" in err
    rc, _, _ = run(capsys, *common, "--out", tmp_path / "kitti", "--format", "kitti")
    assert rc == 0

    from squeezelens.engine.data.kitti import parse_label_file

    provenance = json.loads((tmp_path / "kitti" / "provenance.json").read_text())
    assert provenance["checkpoint"] == {"path": str(files["ckpt"]), "sha256": sha256(files["ckpt"])}
    assert provenance["quant"]["bits"] == 6
    for stem in STEMS:
        doc = json.loads((tmp_path / "json" / f"{stem}.json").read_text())
        assert doc["image"] == f"{stem}.png"
        assert doc["provenance"]["checkpoint"]["sha256"] == sha256(files["ckpt"])
        assert doc["provenance"]["quant"]["bits"] == 6
        objects = parse_label_file(tmp_path / "kitti" / f"{stem}.txt")
        assert len(objects) == len(doc["detections"]) > 0
        for obj, det in zip(objects, doc["detections"]):
            assert obj.type == det["class"].capitalize()
            assert obj.score == pytest.approx(det["score"], rel=1e-6)
            np.testing.assert_allclose(obj.box_xyxy, det["box"], rtol=1e-6)


@pytest.mark.slow
def test_evaluate_writes_results_curves_and_kitti_files(capsys, files, tmp_path) -> None:
    out = tmp_path / "eval"
    rc, stdout, _ = run(
        capsys,
        "evaluate",
        "--checkpoint",
        files["ckpt"],
        "--kitti-root",
        files["kitti"],
        "--bits",
        "6",
        "--out",
        out,
    )
    assert rc == 0
    assert "AP" in stdout and "car" in stdout and "mAP" in stdout
    doc = json.loads((out / "results.json").read_text())
    assert RESULT_KEYS <= set(doc)
    assert doc["protocol"] == "official" and doc["split"] == "val"
    assert doc["checkpoint"] == {"path": str(files["ckpt"]), "sha256": sha256(files["ckpt"])}
    assert doc["quant"]["bits"] == 6 and doc["quant"]["rounding"] == "nearest"
    assert doc["counts"]["images"] == len(VAL)
    n_gt = sum(1 + i % 3 for i in VAL)  # write_tiny_kitti labels 1, 2 or 3 objects per image
    assert doc["counts"]["gt_objects"] == n_gt
    assert set(doc["ap"]) == {"car", "pedestrian", "cyclist"}
    assert 0.0 <= doc["map"]["r11"]["all"] <= 1.0
    with open(out / "pr_curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["class", "difficulty", "point", "threshold", "recall", "precision"]
    assert len(rows) == 3 * 3 * 41
    written = sorted(p.stem for p in (out / "data").glob("*.txt"))
    assert written == VAL_STEMS


@pytest.mark.slow
def test_quantize_writes_grid_values_that_load_back_as_a_checkpoint(
    capsys, files, tmp_path
) -> None:
    from squeezelens.engine.checkpoint import load_checkpoint

    out = tmp_path / "q" / "tiny_q4.npz"
    rc, stdout, _ = run(
        capsys,
        "quantize",
        "--checkpoint",
        files["ckpt"],
        "--bits",
        "4",
        "--scale",
        "groups",
        "--out",
        out,
    )
    assert rc == 0 and str(out) in stdout
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["quant"]["bits"] == 4 and doc["seed"] == 0
    assert doc["checkpoint"]["sha256"] == sha256(files["ckpt"])
    loaded = load_checkpoint(out)
    assert loaded.format == "npz" and loaded.spec.input_size == SIZE
    original = load_checkpoint(files["ckpt"]).weights
    assert set(loaded.weights) == set(original)
    quantized = 0
    for name, values in loaded.weights.items():
        info = doc["tensors"][name]
        if not info["quantized"]:
            assert name.startswith("conv1/")  # conv1 stays float by default
            np.testing.assert_array_equal(values, original[name])
            continue
        quantized += 1
        assert info["n_levels"] == 16
        codes = (values.astype(np.float64) - info["min"]) / info["step"]
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
        assert codes.min() > -1e-3 and codes.max() < 15 + 1e-3
    assert quantized == len(original) - 2


@pytest.fixture(scope="module")
def swept(files, tmp_path_factory) -> Path:
    """A finished two-bit-width sweep folder of the tiny checkpoint."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    rc = main(
        [
            "sweep",
            "--checkpoint",
            str(files["ckpt"]),
            "--kitti-root",
            str(files["kitti"]),
            "--bits",
            "4,8",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return out


def csv_keys(folder: Path) -> list[str]:
    with open(folder / "sweep.csv", newline="") as f:
        return [r["key"] for r in csv.DictReader(f)]


@pytest.mark.slow
def test_sweep_writes_csv_and_plots_and_resumes(capsys, files, swept, tmp_path) -> None:
    import xml.etree.ElementTree as ET

    assert len(csv_keys(swept)) == 3  # float + 4 and 8 bits
    assert (swept / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert ET.parse(swept / "sweep.svg").getroot().tag.endswith("svg")
    meta = json.loads((swept / "sweep_meta.json").read_text())
    assert meta["checkpoint_sha256"] == sha256(files["ckpt"]) and meta["split"] == "val"

    folder = tmp_path / "resumed"
    shutil.copytree(swept, folder)
    before = (folder / "sweep.csv").read_bytes()
    rc, stdout, err = run(
        capsys,
        "sweep",
        "--checkpoint",
        files["ckpt"],
        "--kitti-root",
        files["kitti"],
        "--bits",
        "4-6,8",
        "--out",
        folder,
    )
    assert rc == 0
    finished = [line for line in err.splitlines() if "mAP R11" in line]
    assert len(finished) == 2 and all(" 5 " in line or " 6 " in line for line in finished)
    after = (folder / "sweep.csv").read_bytes()
    assert after.startswith(before) and len(csv_keys(folder)) == 5
    table = stdout.splitlines()
    assert table[0].split()[1:] == ["4", "5", "6", "8"]
    assert any(line.startswith("float") for line in table)


@pytest.mark.slow
def test_sweep_with_activation_bits_calibrates_on_the_given_images(capsys, files, tmp_path) -> None:
    common = ["sweep", "--checkpoint", files["ckpt"], "--kitti-root", files["kitti"]]
    rc, _, err = run(
        capsys,
        *common,
        "--bits",
        "8",
        "--activation-bits",
        "6",
        "--calib",
        files["images"],
        "--out",
        tmp_path / "act",
    )
    assert rc == 0, err
    keys = [json.loads(k) for k in csv_keys(tmp_path / "act") if k != "float"]
    assert [k["activation_bits"] for k in keys] == [6]
    # without --calib, or a train split to fall back on, it is a one-line error
    assert_one_line_error(
        capsys,
        [
            "sweep",
            "--checkpoint",
            files["ckpt"],
            "--kitti-root",
            files["no_train"],
            "--bits",
            "8",
            "--activation-bits",
            "6",
            "--out",
            tmp_path / "act2",
        ],
        "no calibration images",
    )


# --- real data ------------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_real_checkpoint_on_shared_kitti_val(capsys) -> None:
    need_shared(REAL_CKPT.parent)
    need_shared(REAL_KITTI)
    rc, out, err = run(
        capsys, "evaluate", "--checkpoint", REAL_CKPT, "--kitti-root", REAL_KITTI, "--split", "val"
    )
    assert rc == 0, err
    car = next(line for line in out.splitlines() if line.startswith("car "))
    r11 = car.split("|")[1].split()
    moderate = float(r11[1].rstrip("*"))
    assert moderate > 0.80, car
