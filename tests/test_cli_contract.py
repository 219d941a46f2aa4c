"""The CLI's error contract: --verbose anywhere, OSError as one line (exit 2), KITTI on stdout.

Reuses the tiny checkpoint and KITTI tree of ``tests/test_cli.py``.
"""

from __future__ import annotations

import json

import pytest

from squeezelens.cli.main import COMMANDS, build_parser, os_error_message
from tests.test_cli import STEMS, assert_one_line_error, files, run  # noqa: F401 (fixture)


def test_verbose_is_accepted_before_and_after_the_subcommand() -> None:
    parser = build_parser()
    for name in ("detect", "evaluate"):
        assert parser.parse_args([name]).verbose is False, name
        assert parser.parse_args([name, "--verbose"]).verbose is True, name
        assert parser.parse_args(["--verbose", name]).verbose is True, name
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert len(subparsers.choices) <= len(COMMANDS)
    for name, subparser in subparsers.choices.items():
        assert "--verbose" in subparser.format_help(), name


def test_verbose_after_the_subcommand_prints_the_traceback(capsys, files) -> None:  # noqa: F811
    missing = files["root"] / "nope.npz"
    argv = ["detect", "--checkpoint", missing, "--images", files["images"], "--verbose"]
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and "Traceback" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("squeezelens detect: error: ") and str(missing) in last


@pytest.mark.parametrize(
    "exc, expected",
    [
        (PermissionError(13, "Permission denied", "/data/out/a.json"), "/data/out/a.json: Permission denied"),
        (OSError(28, "No space left on device"), "No space left on device"),
        (OSError(18, "Invalid cross-device link", "/a", None, "/b"), "/a -> /b: Invalid cross-device link"),
    ],
)  # fmt: skip
def test_os_errors_become_one_line_naming_the_path(capsys, monkeypatch, exc, expected) -> None:
    import squeezelens.cli.commands.detect as detect

    def fail(args):
        raise exc

    monkeypatch.setattr(detect, "run", fail)
    line = assert_one_line_error(capsys, ["detect"], expected)
    assert line == f"squeezelens detect: error: {expected}"
    assert os_error_message(exc) == expected


@pytest.mark.slow
def test_out_that_cannot_be_created_is_one_line(capsys, files) -> None:  # noqa: F811
    blocker = files["root"] / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "sub"
    assert_one_line_error(
        capsys,
        ["evaluate", "--checkpoint", files["ckpt"], "--kitti-root", files["kitti"], "--out", out],
        str(out),
        "cannot create the --out folder",
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", ["detect", "evaluate"])
def test_out_naming_an_existing_file(capsys, files, command) -> None:  # noqa: F811
    out = files["root"] / f"{command}_out.txt"
    out.write_text("keep me")
    source = (
        ["--images", files["images"]] if command == "detect" else ["--kitti-root", files["kitti"]]
    )
    assert_one_line_error(
        capsys,
        [command, "--checkpoint", files["ckpt"], *source, "--out", out],
        str(out),
        "must name a folder, but this is a file",
    )
    assert out.read_text() == "keep me"


@pytest.mark.slow
def test_evaluate_out_whose_data_is_a_file(capsys, files, tmp_path) -> None:  # noqa: F811
    (tmp_path / "data").write_text("")
    assert_one_line_error(
        capsys,
        [
            "evaluate",
            "--checkpoint",
            files["ckpt"],
            "--kitti-root",
            files["kitti"],
            "--out",
            tmp_path,
        ],
        str(tmp_path / "data"),
        "must name a folder",
    )


@pytest.mark.slow
def test_detect_kitti_format_on_stdout(capsys, files) -> None:  # noqa: F811
    common = ["detect", "--checkpoint", files["ckpt"], "--images", files["images"]]
    rc, out, _ = run(capsys, *common, "--format", "kitti")
    assert rc == 0
    rc, json_out, _ = run(capsys, *common)
    records = {r["image"]: r["detections"] for r in map(json.loads, json_out.splitlines())}
    assert rc == 0 and not out.lstrip().startswith("{")
    seen: dict[str, int] = {}
    for line in out.splitlines():
        image, kitti = line.split("\t")
        fields = kitti.split()
        assert len(fields) == 16 and fields[0] in ("Car", "Pedestrian", "Cyclist")
        det = records[image][seen.get(image, 0)]
        assert float(fields[15]) == pytest.approx(det["score"], rel=1e-6)
        assert [float(v) for v in fields[4:8]] == pytest.approx(det["box"], rel=1e-6)
        seen[image] = seen.get(image, 0) + 1
    assert seen == {f"{s}.png": len(records[f"{s}.png"]) for s in STEMS}
