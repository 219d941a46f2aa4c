"""Progress display, the CSV loss log and the divergence check of a training run."""

from __future__ import annotations

import csv
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from squeezelens.engine.jobs import CancelToken

LOG_FILE = "loss_log.csv"
LOG_FIELDS = ("step", "total", "class", "conf", "bbox", "lr", "seconds")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite (the original asserts on this too)."""


class LossLog:
    """Averages loss terms over ``every`` steps and appends them to the CSV log."""

    def __init__(self, path: Path, resume_step: int, every: int) -> None:
        self.path, self.every = path, every
        self._sum: dict[str, float] = {}
        self._n, self._t0 = 0, time.perf_counter()
        self.last: dict[str, float] = {}
        rows = []
        if path.is_file():  # drop rows of steps the resumed run will redo
            with open(path, newline="") as f:
                rows = [
                    r
                    for r in csv.DictReader(f)
                    if r.get("step", "").isdigit() and int(r["step"]) <= resume_step
                ]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in LOG_FIELDS} for r in rows)

    def add(self, step: int, terms: dict[str, float], lr: float) -> None:
        for k in ("total", "class", "conf", "bbox"):
            self._sum[k] = self._sum.get(k, 0.0) + terms[k]
        self._n += 1
        if step % self.every == 0:
            self.flush(step, lr)

    def flush(self, step: int, lr: float) -> None:
        if not self._n:
            return
        now = time.perf_counter()
        self.last = {k: v / self._n for k, v in self._sum.items()}
        row = {"step": step, **{k: f"{v:.6g}" for k, v in self.last.items()}, "lr": f"{lr:.6g}",
               "seconds": f"{(now - self._t0) / self._n:.4f}"}  # fmt: skip
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow(row)
        self._sum, self._n, self._t0 = {}, 0, now


class _LineBar:
    """A one-line ``\\r`` progress display, for installs without tqdm (same calls used)."""

    def __init__(self, total: int, initial: int) -> None:
        self.total, self.n, self._post, self._last = total, initial, "", 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last > 0.5 or self.n >= self.total:
            self._last = now
            sys.stderr.write(f"\rstep {self.n}/{self.total} {self._post}")
            sys.stderr.flush()

    def set_postfix(self, values: dict, refresh: bool = False) -> None:
        self._post = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        sys.stderr.write("\n")


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar on stderr (or a plain line without tqdm); None when disabled."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _LineBar(total, initial)
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)


def check_finite(terms: dict[str, float], step: int) -> None:
    if not all(math.isfinite(terms[k]) for k in ("total", "class", "conf", "bbox")):
        raise TrainingDiverged(
            f"loss diverged at step {step}: total {terms['total']}, class {terms['class']}, "
            f"conf {terms['conf']}, bbox {terms['bbox']}"
        )


def show(bar, terms: dict[str, float]) -> None:
    """Advance the bar by one step and show the loss components."""
    if bar is not None:
        bar.update(1)
        bar.set_postfix(
            {k: f"{terms[k]:.3g}" for k in ("total", "class", "conf", "bbox")}, refresh=False
        )


def close(bar) -> None:
    """Close the bar (None: nothing to do)."""
    if bar is not None:
        bar.close()


@contextmanager
def sigint_cancels(token: CancelToken) -> Iterator[CancelToken]:
    """While active (main thread only), a first Ctrl-C cancels ``token``; a second one interrupts.

    So a training step is never cut in half: the loop sees the token after
    the step, saves, and stops.
    """
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handle(signum, frame) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)
