"""--out is checked before any work, with one wording everywhere, and output folders are locked.

The checks run in-process with every loader patched to fail, so a command that loads a
model, a dataset or a checkpoint before checking its --out fails the test.  The lock is
exercised with real second processes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from squeezelens.cli.outputs import LOCK_NAME, check_out_file, check_out_folder, output_lock
from squeezelens.engine.errors import InputError
from tests.test_cli import assert_one_line_error, files, run  # noqa: F401 (fixture)

FOLDER_OUT = {  # command -> the arguments before --out (its --out names a folder)
    "detect": ["detect"],
    "evaluate": ["evaluate"],
    "sweep": ["sweep", "--bits", "4"],
    "train": ["train", "--steps", "1"],
    "finetune": ["finetune", "--steps", "1"],
    "sample-data": ["sample-data", "--count", "1"],
}
FILE_OUT = {  # command -> (arguments before --out, the file name)
    "quantize": (["quantize"], "q.npz"),
    "sensitivity": (["sensitivity"], "s.json"),
    "export": (["export", "--int8"], "m.tflite"),
    "average": (["average", "a.npz", "b.npz"], "avg.npz"),
}


class Loaded(AssertionError):
    """Raised by a patched loader: the command did work before checking its output."""


@pytest.fixture
def no_loading(monkeypatch):
    """Every way a command starts its work fails with Loaded."""
    import squeezelens.engine.checkpoint as checkpoint
    import squeezelens.engine.data.kitti as kitti
    import squeezelens.engine.detector as detector
    import squeezelens.engine.synth as synth
    import squeezelens.engine.train.average as average

    def loaded(*args, **kwargs):
        raise Loaded("work started before the --out check")

    monkeypatch.setattr(detector.Detector, "from_checkpoint", classmethod(loaded))
    for module, name in ((kitti, "open_dataset"), (checkpoint, "load_checkpoint"),
                         (synth, "write_kitti_tree"), (average, "average_checkpoints")):  # fmt: skip
        monkeypatch.setattr(module, name, loaded)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in (read-only mode; as root, which ignores modes, a
    system folder that refuses new files); skips when there is none."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(probe)
    pytest.skip("no folder refuses writes here")


@pytest.mark.parametrize("command", list(FOLDER_OUT) + list(FILE_OUT))
def test_an_unwritable_out_fails_before_any_work(capsys, tmp_path, no_loading, command) -> None:
    folder = unwritable_folder(tmp_path)
    if command in FOLDER_OUT:
        argv, out, what = FOLDER_OUT[command], folder / "out", "the --out folder"
    else:
        argv, name = FILE_OUT[command]
        out, what = folder / name, "the folder of --out"
    start = time.perf_counter()
    line = assert_one_line_error(capsys, [*argv, "--out", out], str(out))
    assert time.perf_counter() - start < 5
    assert f": {what} is not writable (" in line or f": {what} cannot be created (" in line


@pytest.mark.parametrize("command", list(FOLDER_OUT))
def test_a_file_where_a_folder_is_needed_is_one_message(
    capsys, tmp_path, no_loading, command
) -> None:
    out = tmp_path / "a_file"
    out.write_text("keep me")
    line = assert_one_line_error(capsys, [*FOLDER_OUT[command], "--out", out])
    assert (
        line == f"squeezelens {command}: error: {out}: --out must name a folder, but this is a file"
    )
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("command", list(FILE_OUT))
def test_a_folder_where_a_file_is_needed_is_one_message(
    capsys, tmp_path, no_loading, command
) -> None:
    argv, name = FILE_OUT[command]
    out = tmp_path / name
    out.mkdir()
    line = assert_one_line_error(capsys, [*argv, "--out", out])
    assert (
        line == f"squeezelens {command}: error: {out}: --out must name a file, but this is a folder"
    )


@pytest.mark.parametrize("command", list(FOLDER_OUT) + list(FILE_OUT))
def test_an_out_below_a_file_names_the_file(capsys, tmp_path, no_loading, command) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    argv = FOLDER_OUT[command] if command in FOLDER_OUT else FILE_OUT[command][0]
    name = "out" if command in FOLDER_OUT else FILE_OUT[command][1]
    line = assert_one_line_error(capsys, [*argv, "--out", blocker / "sub" / name])
    assert line.endswith("is a file") and f": {blocker} is a file" in line
    assert "File exists" not in line and "Not a directory" not in line


def test_the_checks_create_nothing(tmp_path) -> None:
    assert check_out_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_out_file(tmp_path / "c" / "m.npz", suffixes=(".npz",)).name == "m.npz"
    assert list(tmp_path.iterdir()) == []  # no folder made, and the probes are gone
    with pytest.raises(InputError, match=r"--out must end in \.npz"):
        check_out_file(tmp_path / "m.h5", suffixes=(".npz",))


def test_a_locked_command_that_fails_leaves_no_new_folder(capsys, tmp_path, no_loading) -> None:
    out = tmp_path / "new"
    assert_one_line_error(capsys, ["sweep", "--bits", "40", "--out", out], "got 40")
    assert not out.exists()


def test_sweep_meta_json_is_replaced_atomically(tmp_path, monkeypatch) -> None:
    from squeezelens.engine.sweep import CALIBRATION, META_NAME, check_or_write_meta

    before = {"split": "val", CALIBRATION: None}
    (tmp_path / META_NAME).write_text(json.dumps(before))

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):  # recording a calibration set rewrites the file
        check_or_write_meta(tmp_path, {"split": "val", CALIBRATION: "abc", "calibration": {}})
    assert json.loads((tmp_path / META_NAME).read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [META_NAME]


# --- the lock ------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys
    from squeezelens.cli.outputs import output_lock
    with output_lock(sys.argv[1], "squeezelens sweep"):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def holder(tmp_path):
    """Start a second process that holds the lock of a folder until its stdin closes."""
    procs = []

    def start(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_holder_is_told_who_holds_the_folder(tmp_path, holder) -> None:
    proc = holder(tmp_path)
    with pytest.raises(InputError) as caught:
        with output_lock(tmp_path, "squeezelens sweep"):
            pass
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: process {proc.pid} (squeezelens sweep, since ")
    assert "pass --wait" in message


def test_wait_takes_the_lock_when_the_holder_finishes(tmp_path, holder) -> None:
    proc = holder(tmp_path)
    said: list[str] = []
    start = time.perf_counter()
    subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(1.5)"]).wait()
    proc.stdin.close()  # the holder leaves in about a second: we wait below
    with output_lock(tmp_path, "squeezelens sweep", wait=True, say=said.append):
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid()
    assert proc.wait() == 0
    assert time.perf_counter() - start < 30
    assert not (tmp_path / LOCK_NAME).exists()


def test_wait_announces_the_holder_once(tmp_path, holder) -> None:
    proc = holder(tmp_path)
    said: list[str] = []

    def release_later(message: str) -> None:
        said.append(message)
        proc.stdin.close()

    with output_lock(tmp_path, "squeezelens train", wait=True, say=release_later):
        pass
    assert said == [f"waiting for {said[0].split('waiting for ')[1]}"]
    assert f"process {proc.pid} (squeezelens sweep" in said[0]


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, holder) -> None:
    proc = holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / LOCK_NAME).exists()  # left behind, but no longer locked
    said: list[str] = []
    with output_lock(tmp_path, "squeezelens sweep", say=said.append):
        pass
    assert said == [
        f"taking over the lock of process {proc.pid} (squeezelens sweep, since "
        f"{said[0].split(', since ')[1]}"
    ] and said[0].endswith("which is no longer running")


@pytest.mark.parametrize("command", ["sweep", "train", "finetune"])
def test_a_command_stops_at_once_when_its_out_is_locked(
    capsys, tmp_path, holder, no_loading, command
) -> None:
    proc = holder(tmp_path)
    line = assert_one_line_error(
        capsys, [*FOLDER_OUT[command], "--out", tmp_path], f"process {proc.pid}"
    )
    assert "--wait" in line


@pytest.mark.slow
def test_two_identical_sweeps_into_one_folder_do_the_work_once(files, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "squeezelens.cli.main", "sweep", "--checkpoint", str(files["ckpt"]),
            "--kitti-root", str(files["kitti"]), "--bits", "3,4", "--out", str(out), "--wait"]  # fmt: skip
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    errs = [err for _, err in results]
    assert sum("waiting for process" in err for err in errs) == 1, errs
    with open(out / "sweep.csv", newline="") as f:
        keys = [row["key"] for row in csv.DictReader(f)]
    assert len(keys) == 3 and len(set(keys)) == 3  # float + 2 bit widths, each once
    assert sum(err.count("mAP R11") for err in errs) == 3  # every point computed once
