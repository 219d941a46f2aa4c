"""The one calibration rule (engine.calibration), shared by the CLI, the GUI and the API."""

from __future__ import annotations

import pytest

from squeezelens.engine.calibration import (
    CALIBRATION_COUNT,
    CalibrationSet,
    CalibrationSource,
    default_calibration,
)
from squeezelens.engine.errors import InputError
from tests.test_sweep import write_tiny_kitti


@pytest.fixture(scope="module")
def kitti(tmp_path_factory):
    """Six images: val 0-2, train 5, 3, 4 (listed out of order), trainval all."""
    root = tmp_path_factory.mktemp("calib") / "kitti"
    return write_tiny_kitti(root, 6, {"val": [0, 1, 2], "train": [5, 3, 4], "trainval": [0, 5]})


def _stems(calibration: CalibrationSet) -> list[str]:
    return [p.rsplit("/", 1)[-1].split(".")[0] for p in calibration.paths]


def test_default_is_the_train_split_in_path_order_never_val(kitti):
    calibration = default_calibration(kitti)
    assert _stems(calibration) == ["000003", "000004", "000005"]
    assert calibration.source == f"train split of {kitti}"
    assert calibration.record()["count"] == 3


def test_count_caps_after_sorting(kitti):
    assert _stems(default_calibration(kitti, count=2)) == ["000003", "000004"]


def test_explicit_paths_win_and_are_sorted(kitti):
    images = kitti / "training" / "image_2"
    picked = [images / "000002.png", images / "000000.png"]
    calibration = default_calibration(kitti, paths=picked)
    assert _stems(calibration) == ["000000", "000002"]
    folder = default_calibration(None, paths=[images], count=4)
    assert _stems(folder) == ["000000", "000001", "000002", "000003"]


def test_without_a_folder_the_bundled_sample_calibrates():
    from squeezelens.engine.samples import default_kitti_root

    if default_kitti_root() is None:
        pytest.skip("this install has no bundled sample data")
    calibration = default_calibration()
    assert 0 < len(calibration) <= CALIBRATION_COUNT
    assert calibration.source.endswith("(bundled sample data)")
    assert list(calibration.paths) == sorted(calibration.paths)


@pytest.mark.parametrize("count", [0, -3, 2.5])
def test_absurd_counts_are_refused(count):
    with pytest.raises(InputError, match="--calib-count"):
        CalibrationSource(count=count)


def test_a_folder_without_train_split_names_itself(tmp_path):
    root = write_tiny_kitti(tmp_path / "kitti", 2, {"val": [0, 1]})
    with pytest.raises(InputError, match="no calibration images") as info:
        default_calibration(root)
    assert str(root) in str(info.value)


def test_paths_without_images_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        default_calibration(None, paths=[tmp_path / "empty"])
