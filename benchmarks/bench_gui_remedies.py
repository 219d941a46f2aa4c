"""The desktop tool while a remedy computes: UI-thread gaps and the cached switch back.

Usage: python benchmarks/bench_gui_remedies.py [--repeats N] [--tiny | --sample]
       [--iterations N]
For each repeat (a fresh remedies cache each time), in the window at 1600x1000 with
4-bit channel-wise weights:
- switching bias correction on: seconds until its boxes are shown (a ``remedies`` long
  job on the train split's calibration images), and the longest UI-thread gap meanwhile
  (10 ms timer; target <= 50 ms);
- the same for AdaRound (--iterations per layer);
- the longest UI gap with no job at all for as long as AdaRound took: the baseline of the
  machine's load at the time;
- switching bias correction off and on again: ms until its boxes are shown (cached: no
  job; target: as fast as a slider release).
The gaps are counted until every job that follows (layer table, split scan) is done.
Prints medians over --repeats.  Inputs as benchmarks/bench_gui.py's (shared real data
when present, --tiny: a generated model, --sample: the bundled one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gui import GapMeter, idle, inputs, open_window, wait  # noqa: E402


def _switch(win, on_widget, debug: bool = False) -> tuple[float, float]:
    """(seconds until the new boxes are shown, longest UI gap in ms) after a toggle."""
    meter = GapMeter()
    meter.start()
    t0 = time.perf_counter()
    before = win.state.result
    on_widget()
    wait(lambda: not win.state.remedy_pending and win.state.result is not before)
    shown = time.perf_counter() - t0
    wait(lambda: idle(win))  # the gaps count until everything that follows is done
    if debug:
        print("  gaps (ms, at s):", [(round(g * 1000), round(at, 2)) for g, at in meter.gaps()[:5]],
              f"boxes at {shown:.2f} s")  # fmt: skip
    return shown, meter.stop() * 1000


def one_run(win, iterations: int, cache: Path, debug: bool = False) -> dict:
    import os

    from squeezelens.engine.cache_root import CACHE_ENV
    from squeezelens.engine.quant.remedies import cache as remedies_cache

    os.environ[CACHE_ENV] = str(cache)
    remedies_cache._memory.clear()
    panel, r = win.quant_panel, win.quant_panel.remedies
    win.state.set_quant(win.state.quant.replace(bias_correction=False, rounding="nearest",
                                                adaround_iterations=iterations))  # fmt: skip
    wait(lambda: idle(win))
    out = {}
    out["bias_s"], out["bias_gap_ms"] = _switch(
        win, lambda: r.bias_correction.setChecked(True), debug
    )
    r.bias_correction.setChecked(False)
    wait(lambda: idle(win))
    cached_s, _ = _switch(win, lambda: r.bias_correction.setChecked(True), debug)
    out["cached_ms"] = cached_s * 1000
    r.bias_correction.setChecked(False)
    wait(lambda: idle(win))
    out["adaround_s"], out["adaround_gap_ms"] = _switch(
        win, lambda: panel.rounding.setCurrentText("adaround"), debug
    )
    panel.rounding.setCurrentText("nearest")
    wait(lambda: idle(win))
    meter = GapMeter()  # the machine's noise floor over as long as AdaRound took: no job at all
    meter.start()
    t0 = time.perf_counter()
    wait(lambda: time.perf_counter() - t0 > out["adaround_s"], out["adaround_s"] + 10)
    out["idle_gap_ms"] = meter.stop() * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=50, help="AdaRound steps per layer")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--debug", action="store_true", help="print the longest gaps and when")
    args = ap.parse_args()
    from squeezelens.engine.quant import QuantConfig

    tmp = Path(tempfile.mkdtemp())
    ckpt, root, what = inputs(args.tiny, tmp, args.sample)
    app, win = open_window(ckpt, root, tmp)
    win.state.set_quant(QuantConfig(bits=4, scale="channel"))
    wait(lambda: idle(win))
    runs = [
        one_run(win, args.iterations, tmp / f"cache{k}", args.debug) for k in range(args.repeats)
    ]
    win.close()
    app.processEvents()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"bench_gui_remedies: {what}; 4-bit channel-wise; median of {args.repeats} "
          f"(fresh cache each)")  # fmt: skip
    print(f"bias correction on -> its boxes:   {med['bias_s']:6.1f} s   longest UI gap "
          f"{med['bias_gap_ms']:4.0f} ms (target <= 50)")  # fmt: skip
    print(f"AdaRound ({args.iterations} it/layer) -> boxes: {med['adaround_s']:6.1f} s   "
          f"longest UI gap {med['adaround_gap_ms']:4.0f} ms (target <= 50)")  # fmt: skip
    print(f"bias correction on again (cached): {med['cached_ms']:6.0f} ms (no job)")
    print(f"baseline: no job, {med['adaround_s']:.0f} s: longest UI gap {med['idle_gap_ms']:4.0f} ms "
          f"(the machine's noise floor at the time)")  # fmt: skip


if __name__ == "__main__":
    main()
