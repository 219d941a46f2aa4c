"""Regression guard for the Qt binding itself.

PySide6 6.12.0 lost references to ``None`` and ``True`` on every call of a
void C++ method and on signal emission; after enough calls the interpreter
deallocated ``None`` and aborted.  The window makes such calls constantly
(every slider move), so a binding with that bug must fail here, not in a
user's session.  The calls run in a subprocess so an abort shows up as a test
failure instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui

CALLS = 100_000

SCRIPT = textwrap.dedent(
    f"""
    import os, sys
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QCheckBox, QSlider

    class Emitter(QObject):
        plain = Signal()
        flag = Signal(bool)
        value = Signal(object)

    app = QApplication([])
    slider, check, emitter = QSlider(), QCheckBox(), Emitter()
    received = []
    emitter.flag.connect(lambda on: None)
    emitter.value.connect(lambda v: None)
    emitter.plain.connect(lambda: None)
    none0, true0, false0 = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    for i in range({CALLS}):
        slider.setValue(i % 16)          # void, int argument
        check.setChecked(True)           # void, True argument
        check.setEnabled(bool(i & 1))    # void, True / False
        slider.setToolTip("")            # void, str
        emitter.flag.emit(True)          # signal carrying True
        emitter.value.emit(None)         # signal carrying None
        emitter.plain.emit()
    d = (sys.getrefcount(None) - none0, sys.getrefcount(True) - true0, sys.getrefcount(False) - false0)
    print("DELTAS", *d, flush=True)
    """
)


def test_void_calls_and_emits_keep_none_and_true_alive():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, (
        f"the Qt binding crashed (rc {out.returncode}): {out.stderr[-2000:]}"
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("DELTAS"))
    deltas = [int(v) for v in line.split()[1:]]
    # a leak of one reference per call would show as about -CALLS; allow small noise
    assert all(abs(d) < CALLS // 100 for d in deltas), (
        f"refcount drift of None/True/False: {deltas}"
    )
