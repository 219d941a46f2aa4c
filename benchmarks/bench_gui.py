"""Responsiveness of the desktop tool (headless, Qt offscreen).

Usage: python benchmarks/bench_gui.py [--repeats N] [--tiny | --sample] [--startup-runs N]
Prints:
- launch → window visible, and launch → first boxes shown (subprocess, `squeezelens gui`
  with SQUEEZELENS_TIMING=1, which makes it print its markers); target: visible <= 3 s;
- the longest UI-thread gaps from the window's first paint until its first boxes are shown
  and the split is scanned, for plain `squeezelens gui` (the bundled sample, what
  `make run` opens; --startup-real: the shared checkpoint and KITTI frames), median and
  worst over --startup-runs launches (10 ms timer; target <= 50 ms);
- median bits-slider release → updated quantized boxes on the canvas's state (in process);
- the same while an evaluation runs in the background;
- the longest UI-thread gap during an evaluation, and during a three-point sweep, with
  slider moves meanwhile (10 ms timer ticks; target <= 50 ms).
Uses the shared real checkpoint and KITTI frames when present, else a tiny random model;
--sample: the bundled model and scenes (1248x384, what `make run` opens).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
REAL_CKPT = SHARED / "checkpoints" / "squeezedet_kitti_tf1" / "model.ckpt-87000"
REAL_KITTI = SHARED / "kitti"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def inputs(tiny: bool, tmp: Path, sample: bool = False) -> tuple[str, str, str]:
    """(checkpoint, kitti root, description): real shared data, the bundled sample or a
    generated tiny set."""
    if sample:
        from squeezelens.engine.samples import default_checkpoint, default_kitti_root

        ckpt, root = default_checkpoint(), default_kitti_root()
        if ckpt is None or root is None:
            raise SystemExit("bench_gui: this install has no bundled sample")
        return str(ckpt), str(root), "bundled sample model 1248x384, bundled val (45 images)"
    if not tiny and Path(str(REAL_CKPT) + ".index").exists() and REAL_KITTI.is_dir():
        return (
            str(REAL_CKPT),
            str(REAL_KITTI),
            "real SqueezeDet 960x288, shared KITTI val (50 images)",
        )
    import numpy as np

    from squeezelens.engine.checkpoint.writers import save_npz
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import ArchSpec, expected_shapes
    from tests.gui.conftest import relabel_with, write_kitti

    spec = ArchSpec().with_input_size((256, 96))
    rng = np.random.default_rng(0)
    w = {
        k: (rng.standard_normal(s) * 0.05).astype(np.float32)
        for k, s in expected_shapes(spec).items()
    }
    ckpt = save_npz(tmp / "tiny.npz", w, spec)
    root = write_kitti(tmp / "kitti", n=12)
    relabel_with(Detector.from_checkpoint(ckpt), root)
    return str(ckpt), str(root), "tiny random model 256x96, 12 generated images"


def launch_times(ckpt: str, root: str, tmp: Path) -> tuple[float, float]:
    """Seconds from process start to 'window visible' and to 'first boxes shown'."""
    cmd = [str(REPO / ".venv" / "bin" / "squeezelens"), "gui", "--checkpoint", ckpt, "--kitti-root", root,
           "--settings", str(tmp / "s.ini"), "--screenshot", str(tmp / "shot.png")]  # fmt: skip
    if not Path(cmd[0]).exists():
        cmd = [sys.executable, "-m", "squeezelens.cli.main", *cmd[1:]]
    start = time.perf_counter()
    env = {**os.environ, "SQUEEZELENS_TIMING": "1"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    visible = ready = float("nan")
    for line in proc.stdout:
        if line.startswith("SQUEEZELENS_VISIBLE"):
            visible = time.perf_counter() - start
        elif line.startswith("SQUEEZELENS_READY"):
            ready = time.perf_counter() - start
    proc.wait(timeout=300)
    return visible, ready


class GapMeter:
    """Records the spacing of a 10 ms QTimer: a long gap is a frozen UI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def gaps(self) -> list[tuple[float, float]]:
        """(gap, seconds after start at which it began), longest first."""
        t0 = self.ticks[0] if self.ticks else 0.0
        pairs = [(b - a, a - t0) for a, b in zip(self.ticks, self.ticks[1:])]
        return sorted(pairs, reverse=True)

    def stop(self) -> float:
        self.timer.stop()
        gaps = self.gaps()
        return gaps[0][0] if gaps else float("nan")


def startup_child(settings: str, real: bool = False) -> None:
    """(In a fresh process.)  Run plain `squeezelens gui` (the bundled sample; with ``real``
    the shared checkpoint and KITTI frames) and print the UI-thread gaps from its first paint
    until the first boxes are shown and it is idle."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    from squeezelens.cli.main import build_parser
    from squeezelens.gui.app import make_app, run_app

    app, meter, marks = make_app(), GapMeter(), {}

    class FirstPaint(QObject):
        def eventFilter(self, obj, event) -> bool:  # noqa: N802
            if event.type() == QEvent.Type.Paint and "paint" not in marks:
                marks["paint"] = time.perf_counter()
                QTimer.singleShot(0, meter.start)  # once this first paint is done
            return False

    def attach() -> None:
        win = next(w for w in app.topLevelWidgets() if w.objectName() == "mainWindow")
        win.installEventFilter(watcher)

        def check() -> None:
            if "ready" not in marks and win.state.result is not None and idle(win):
                marks["ready"] = time.perf_counter()
                QTimer.singleShot(1000, finish)  # and a second of what follows

        def finish() -> None:
            gaps = meter.gaps()
            top = " ".join(f"{g * 1000:.0f}@{t:.2f}" for g, t in gaps[:5])
            print(f"STARTUP_GAPS max_ms={gaps[0][0] * 1000:.1f} over50={sum(g > 0.05 for g, _ in gaps)}"
                  f" ready_s={marks['ready'] - marks['paint']:.2f} top={top}", flush=True)  # fmt: skip
            win.close()

        poll.timeout.connect(check)
        poll.start()

    watcher, poll = FirstPaint(), QTimer(interval=20)
    QTimer.singleShot(0, attach)
    argv = ["gui", "--settings", settings, "--size", "1600x1000"]
    if real:
        argv += ["--checkpoint", str(REAL_CKPT), "--kitti-root", str(REAL_KITTI)]
    args = build_parser().parse_args(argv)
    run_app(args)


def startup_gaps(runs: int, tmp: Path, real: bool = False) -> list[str]:
    """STARTUP_GAPS lines of ``runs`` fresh launches of `squeezelens gui`."""
    lines = []
    for k in range(runs):
        cmd = [sys.executable, __file__, "--startup-child", str(tmp / f"startup{k}.ini")]
        cmd += ["--startup-real"] if real else []
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600).stdout
        lines += [ln for ln in out.splitlines() if ln.startswith("STARTUP_GAPS")]
    return lines


def wait(predicate, timeout: float = 300.0) -> None:
    """Run the event loop (sleeping between events, no busy polling) until predicate()."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, end = QEventLoop(), time.perf_counter() + timeout
    poll = QTimer(interval=2)

    def check() -> None:
        if predicate() or time.perf_counter() > end:
            loop.quit()

    poll.timeout.connect(check)
    poll.start()
    if not predicate():
        loop.exec()
    poll.stop()
    if not predicate():
        raise TimeoutError("benchmark step timed out")


def idle(win) -> bool:
    return win.controller.is_idle()


def release_latency(win, repeats: int, during_eval: bool = False) -> float:
    """Median ms from a bits change (slider release) to the state holding its boxes."""
    times = []
    for k in range(repeats):
        bits = (3, 8, 5, 10, 4, 6, 12, 7)[k % 8]
        if bits == win.state.quant.bits:
            bits += 1
        arrived: list[float] = []

        def on_result(b=bits, arrived=arrived) -> None:
            q = win.controller.scan.key.other if win.controller.scan.key else None
            if not arrived and q is not None and q.bits == b and win.state.quant.bits == b:
                arrived.append(time.perf_counter())

        win.state.result_changed.connect(on_result)
        t0 = time.perf_counter()
        win.quant_panel.bits.setValue(bits)  # not dragging: sent at once, as on release
        wait(lambda arrived=arrived: bool(arrived))
        win.state.result_changed.disconnect(on_result)
        times.append(arrived[0] - t0)
        if during_eval and win.state.evaluation.ref is not None:
            break
    return statistics.median(times) * 1000


def sweep_gap(win, tmp: Path, repeats: int) -> dict:
    """The longest UI-thread gap while a three-point sweep runs (and the slider moves)."""
    from squeezelens.engine.quant import QuantConfig

    win.analysis.sweep_root = tmp / "sweeps"  # a fresh folder: no point is already done
    meter = GapMeter()
    meter.start()
    t0 = time.perf_counter()
    win.analysis.sweep([QuantConfig(bits=b) for b in (4, 6, 8)])
    release_latency(win, max(3, repeats // 3))
    wait(lambda: not win.state.sweep.running and idle(win))
    return {"sweep_s": time.perf_counter() - t0, "sweep_gap_ms": meter.stop() * 1000}


def open_window(ckpt: str, root: str, tmp: Path):
    """(app, window at 1600x1000 with the model and the val split open, first boxes shown)."""
    from squeezelens.gui.app import make_app
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import Settings

    app = make_app()
    win = MainWindow(settings=Settings.at(tmp / "s.ini"))
    win.resize(1600, 1000)
    win.show()
    win.controller.open_dataset(root, "val")
    win.controller.open_checkpoint(ckpt)
    wait(lambda: win.state.result is not None and idle(win))
    return app, win


def in_process(ckpt: str, root: str, repeats: int) -> dict:
    tmp = Path(tempfile.mkdtemp())
    app, win = open_window(ckpt, root, tmp)
    win.quant_panel.bits.setValue(8)
    win.quant_panel.float_button.setChecked(False)
    wait(lambda: idle(win))
    out = {"release_ms": release_latency(win, repeats)}
    wait(lambda: idle(win))
    meter = GapMeter()
    meter.start()
    t0 = time.perf_counter()
    win.analysis.evaluate()
    out["release_during_eval_ms"] = release_latency(win, max(3, repeats // 3), during_eval=True)
    wait(lambda: win.state.evaluation.ref is not None and idle(win))
    out["eval_s"] = time.perf_counter() - t0
    out["max_gap_ms"] = meter.stop() * 1000
    out.update(sweep_gap(win, tmp, repeats))
    win.close()
    app.processEvents()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument(
        "--tiny", action="store_true", help="use the tiny random model even if shared data exists"
    )
    ap.add_argument(
        "--sample", action="store_true", help="the bundled sample model and scenes (make run's)"
    )
    ap.add_argument("--startup-runs", type=int, default=3, help="launches measured for UI gaps")
    ap.add_argument("--startup-only", action="store_true", help="only the start-up UI gaps")
    ap.add_argument(
        "--startup-real", action="store_true",
        help="launch with the shared real checkpoint and KITTI frames (960x288, 101 images)",
    )  # fmt: skip
    ap.add_argument("--startup-child", metavar="INI", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.startup_child:
        return startup_child(args.startup_child, args.startup_real)
    if args.startup_real and not Path(f"{REAL_CKPT}.index").exists():
        sys.exit("bench_gui: --startup-real needs the shared checkpoint and KITTI frames")
    tmp = Path(tempfile.mkdtemp())
    if args.startup_runs > 0:
        lines = startup_gaps(args.startup_runs, tmp, args.startup_real)
        worst = [float(ln.split("max_ms=")[1].split()[0]) for ln in lines]
        for line in lines:
            print("  " + line)
        median = statistics.median(worst) if worst else float("nan")
        what = "--checkpoint <shared> --kitti-root <shared>" if args.startup_real else "plain"
        print(f"start-up: longest UI gap from the first paint: {median:6.0f} ms  "
              f"(median of {len(worst)} launches of {what} `squeezelens gui`; "
              f"worst {max(worst, default=float('nan')):.0f} ms; target <= 50 ms)")  # fmt: skip
    if args.startup_only:
        return
    ckpt, root, what = inputs(args.tiny, tmp, args.sample)
    print(f"bench_gui: {what}")
    visible, ready = launch_times(ckpt, root, tmp)
    print(f"launch -> window visible:          {visible:6.2f} s   (target <= 3 s)")
    print(f"launch -> first boxes shown:       {ready:6.2f} s   (TensorFlow + checkpoint load)")
    r = in_process(ckpt, root, args.repeats)
    print(
        f"slider release -> updated boxes:   {r['release_ms']:6.0f} ms  (median of {args.repeats})"
    )
    print(f"  ... while an evaluation runs:    {r['release_during_eval_ms']:6.0f} ms  (median)")
    print(f"evaluation (float + quantized):    {r['eval_s']:6.1f} s")
    print(
        f"longest UI-thread gap during eval: {r['max_gap_ms']:6.0f} ms  (10 ms timer; target <= 50 ms)"
    )
    print(f"sweep of 3 points:                 {r['sweep_s']:6.1f} s")
    print(f"longest UI-thread gap during sweep:{r['sweep_gap_ms']:6.0f} ms  (target <= 50 ms)")


if __name__ == "__main__":
    main()
