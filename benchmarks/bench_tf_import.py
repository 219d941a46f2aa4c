"""How long TensorFlow's import on a worker thread freezes the main (UI) thread.

Usage: python benchmarks/bench_tf_import.py [--runs N]
Each run is a fresh process whose main thread ticks every 10 ms while a worker
thread imports TensorFlow, either plainly (``import tensorflow``, what the GUI
did) or the GUI's way now: ml_dtypes imported on the main thread first
(engine.tf_runtime.import_lock_holders, before the window's first paint), the
big shared libraries mapped with the interpreter lock released
(engine.tf_runtime.import_tf) and the cyclic collector paused (gui.heap.loading
does that around a model load).  Prints the median over runs of the longest
main-thread gap (target <= 50 ms) and of the import time.  A loaded machine
stretches every gap: run it with nothing else busy (or under ``nice -n -15``).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import threading
import time

TICK_S = 0.01


def child(way: str) -> None:
    """(In a fresh process.)  Print 'max_gap_ms import_s' for one import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy  # noqa: F401  (the GUI has numpy before any model loads)

    if way == "gui":
        from squeezelens.engine.tf_runtime import import_lock_holders

        import_lock_holders()  # on the main thread, before the window would paint
    done: list[float] = []

    def load() -> None:
        start = time.perf_counter()
        if way == "gui":
            from squeezelens.engine.tf_runtime import graph_building, import_tf

            with graph_building():  # the collector paused, as gui.heap.loading does
                import_tf()
                gc.freeze()
        else:
            import tensorflow  # noqa: F401

        done.append(time.perf_counter() - start)

    ticks = [time.perf_counter()]
    threading.Thread(target=load, daemon=True).start()
    while not done:
        time.sleep(TICK_S)
        ticks.append(time.perf_counter())
    gap = max(b - a for a, b in zip(ticks, ticks[1:]))
    print(f"{gap * 1000:.1f} {done[0]:.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--child", choices=("plain", "gui"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "gui": []}
    for _ in range(args.runs):
        for way in results:  # interleaved: both ways see the same machine
            out = subprocess.run([sys.executable, __file__, "--child", way], capture_output=True,
                                 text=True, timeout=600, check=True).stdout.split()  # fmt: skip
            results[way].append((float(out[-2]), float(out[-1])))
    for way, rows in results.items():
        gaps = ", ".join(f"{g:.0f}" for g, _ in rows)
        print(f"{way:5s}: longest main-thread gap {statistics.median(g for g, _ in rows):6.0f} ms "
              f"(median of {len(rows)}: {gaps}); import "
              f"{statistics.median(s for _, s in rows):.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
