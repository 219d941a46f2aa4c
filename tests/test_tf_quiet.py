"""TensorFlow's chatter is kept off the terminal unless --verbose; errors still get through."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from squeezelens.engine.tf_quiet import is_chatter
from tests.test_cli import files, run  # noqa: F401 (fixture)

CHATTER = [
    b"I0000 00:00:1796580951.352461    3556 port.cc:153] oneDNN custom operations are on.",
    b"W0000 00:00:1796580786.887367    1044 tf_tfl_flatbuffer_helpers.cc:367] Ignored drop_control_dependency.",
    b"I1231 12:00:01.123456   17 reader.cc:83] Reading SavedModel from: /tmp/x",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"",
]
KEPT = [
    b"E0000 00:00:1796580786.887367    1044 saver.cc:3] Failed to write /out/x",
    b"F0000 00:00:17.1 1 conv.cc:3] Check failed: input.dims() == 4",
    b"Traceback (most recent call last):",
    b"terminate called after throwing an instance of 'std::bad_alloc'",
    b"INFO: something the runtime has not said before",
]


@pytest.mark.parametrize("line", CHATTER)
def test_chatter_lines(line: bytes) -> None:
    assert is_chatter(line) and is_chatter(line + b"\r\n")


@pytest.mark.parametrize("line", KEPT)
def test_lines_that_are_kept(line: bytes) -> None:
    assert not is_chatter(line)


SCRIPT = textwrap.dedent(
    """
    import os, sys, warnings, logging
    from squeezelens.engine.tf_quiet import quiet_tensorflow
    with quiet_tensorflow(verbose=sys.argv[1] == "verbose"):
        os.write(2, b"I0000 00:00:1796580951.35 3556 port.cc:153] oneDNN custom operations\\n")
        os.write(1, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\\n")
        os.write(2, b"E0000 00:00:1796580951.35 3556 saver.cc:3] native error\\n")
        os.write(1, b"native out")  # no newline: passed on at the end
        print("python out")
        print("python err", file=sys.stderr)
        warnings.warn_explicit("keras says", UserWarning, "x.py", 1, module="keras.src.x")
        logging.getLogger("tensorflow").warning("tf logger says")
    print("after", file=sys.stderr)
    os.write(2, b"I0000 00:00:17.1 1 port.cc:1] after the block\\n")
    """
)


def _run_script(mode: str) -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    return proc.stdout, proc.stderr


def test_native_chatter_is_dropped_and_the_rest_passes() -> None:
    out, err = _run_script("quiet")
    assert "fully_quantize" not in out and "oneDNN" not in err
    assert "keras says" not in err and "tf logger says" not in err
    assert "native error" in err and "python err" in err and "after" in err
    assert "python out" in out and "native out" in out
    assert "after the block" in err  # the filter ends with the block


def test_verbose_shows_everything() -> None:
    out, err = _run_script("verbose")
    assert "fully_quantize" in out and "oneDNN" in err
    assert "keras says" in err and "tf logger says" in err and "native error" in err


def test_export_without_checkpoint_uses_the_bundled_model(capsys, tmp_path, monkeypatch) -> None:
    import squeezelens.cli.commands.export as export
    from squeezelens.cli.common import resolve_checkpoint
    from squeezelens.engine.samples import default_checkpoint

    if default_checkpoint() is None:
        pytest.skip("this install has no bundled model")
    used = []

    def record(args):
        used.append(resolve_checkpoint(args))
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "load_detector", record)
    rc, _, err = run(capsys, "export", "--int8", "--out", tmp_path / "m.tflite")
    assert rc == 130 and used == [str(default_checkpoint())]
    assert "required" not in err


@pytest.mark.slow
def test_int8_export_prints_its_progress_and_no_chatter(files, tmp_path) -> None:  # noqa: F811
    env = {**os.environ, "SQUEEZELENS_CACHE": str(tmp_path / "cache")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    out = tmp_path / "m.tflite"
    argv = [sys.executable, "-m", "squeezelens.cli.main", "export", "--checkpoint", str(files["ckpt"]),
            "--kitti-root", str(files["kitti"]), "--int8", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert Path(out).stat().st_size > 0 and "wrote" in proc.stdout
    lines = [part for line in proc.stderr.splitlines() for part in line.split("\r") if part.strip()]
    assert any(line.startswith("INT8 conversion: 100%") for line in lines), lines
    noise = [line for line in lines if not line.startswith(("INT8", "using the bundled"))]
    assert noise == [], noise
    assert "fully_quantize" not in proc.stderr + proc.stdout
