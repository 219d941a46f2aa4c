"""The GUI's sweeps and sensitivity runs on a local 2-worker Ray runtime (issue 13, item 5):
the same numbers as in this process, to the last digit, with the workers' progress (images
done / total) in the status bar; the pool is kept across jobs, its workers are killed on
cancel, and it is shut down when the setting changes.  One Ray runtime for the module."""

from __future__ import annotations

import json
import shutil

import pytest

from squeezelens.gui.compute_pool import ComputeChoice
from tests.gui.conftest import wait_idle

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_runtime")]

RAY = ComputeChoice("workers", 2)


def _sweep(win, qtbot, root) -> list[dict]:
    win.analysis.sweep_root = root  # a fresh folder: nothing resumed
    win.sweep_panel.run()
    qtbot.waitUntil(lambda: not win.state.sweep.running, timeout=300000)
    wait_idle(qtbot, win)
    assert win.state.sweep.failure == ""
    return list(win.state.sweep.points)


def _sensitivity(win, qtbot):
    win.analysis.sensitivity._measured = None
    win.analysis.sensitivity.run()
    qtbot.waitUntil(lambda: win.analysis.sensitivity._measured is not None, timeout=300000)
    wait_idle(qtbot, win)
    return win.analysis.sensitivity._measured[0]


def test_sweep_and_sensitivity_on_ray_workers_equal_the_in_process_ones(loaded, qtbot, tmp_path):
    win, panel = loaded, loaded.sweep_panel
    win.tabs.setCurrentWidget(panel)
    panel.bits_from.setValue(3)
    panel.bits_to.setValue(5)
    win.quant_panel.rounding.setCurrentText("stochastic")  # draws must not depend on shards
    win.quant_panel.bits.setValue(3)  # the sensitivity tests 1-3 bits (at 8: 5-8, slower)
    wait_idle(qtbot, win)
    local_rows = _sweep(win, qtbot, tmp_path / "local")
    local_sens = _sensitivity(win, qtbot)

    progress = []
    win.state.job_progress.connect(lambda text, done, total: progress.append((text, done, total)))
    win.compute.apply(RAY)
    ray_rows = _sweep(win, qtbot, tmp_path / "ray")
    pool = win.controller.compute._pool
    from squeezelens.gui.export import export_sweep

    export_sweep(win.state.sweep, panel.plot, tmp_path / "export")
    saved = json.loads((tmp_path / "export.json").read_text())["provenance"]
    assert saved["computed_on"] == "2 local Ray workers"
    assert pool is not None and pool.size == 2  # kept for the next job
    ray_sens = _sensitivity(win, qtbot)
    assert win.controller.compute._pool is pool  # the same workers ran the sensitivity

    assert ray_rows == local_rows and len(ray_rows) == 4  # float + 3 widths, every digit
    assert ray_sens.float_map == local_sens.float_map and ray_sens.drops == local_sens.drops
    assert ray_sens.noise == local_sens.noise
    images = len(win.state.dataset)
    on_ray = [p for p in progress if "on 2 local Ray workers · tasks" in p[0]]
    assert on_ray and on_ray[-1][1] == on_ray[-1][2]  # images done / total, to the end
    assert any(total == 4 * images for text, _, total in on_ray if text.startswith("Sweep"))
    assert win.sweep_panel.row.indexOf(win.compute.label) > 0
    assert win.compute.label.text() == "on 2 local Ray workers"

    win.compute.apply(ComputeChoice())  # back to this process: the pool stops
    qtbot.waitUntil(lambda: not pool.actors, timeout=30000)
    assert win.controller.compute._pool is None


def test_cancel_kills_the_workers_and_a_bad_image_fails_the_next_sweep_in_one_line(
    loaded, qtbot, tmp_path, tiny_kitti
):
    win, panel = loaded, loaded.sweep_panel
    win.compute.apply(RAY)
    win.analysis.sweep_root = tmp_path / "sweeps"
    panel.bits_from.setValue(2)
    panel.bits_to.setValue(8)
    win.quant_panel.rounding.setCurrentText("stochastic")
    panel.repeats.setValue(5)  # 36 points: still running when cancelled
    wait_idle(qtbot, win)
    panel.run()
    compute = win.controller.compute
    qtbot.waitUntil(lambda: bool(compute._pool and compute._pool.busy), timeout=120000)
    pool = compute._pool
    actors = list(pool.actors)
    win.analysis.cancel()
    qtbot.waitUntil(lambda: not win.state.sweep.running, timeout=60000)
    wait_idle(qtbot, win)
    assert win.state.sweep.failure == "cancelled" and not pool.actors
    assert compute._pool is None and compute._runtime is not None  # the runtime is kept
    for actor in actors:  # killed, not left computing the cancelled tasks
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.info.remote(), timeout=60)

    bad = tmp_path / "kitti"  # the same images, one of them unreadable
    shutil.copytree(tiny_kitti, bad)
    stem = (bad / "ImageSets" / "val.txt").read_text().split()[-1]
    victim = bad / "training" / "image_2" / f"{stem}.png"
    victim.write_bytes(b"not a png")
    win.controller.open_dataset(bad, "val")
    qtbot.waitUntil(lambda: win.state.dataset is not None and win.state.dataset.root == bad,
                    timeout=60000)  # fmt: skip
    wait_idle(qtbot, win)
    errors = []
    win.state.error.connect(errors.append)
    panel.bits_from.setValue(7)
    panel.repeats.setValue(1)
    panel.run()
    qtbot.waitUntil(lambda: bool(errors), timeout=180000)
    wait_idle(qtbot, win)
    assert len(errors) == 1 and "\n" not in errors[0] and victim.name in errors[0]
    assert win.state.sweep.failure.startswith("stopped: ") and errors[0] in win.banner.text
    assert compute._pool is None and compute._runtime is None  # a failed job keeps nothing
