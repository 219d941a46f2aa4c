"""Sweep panel: mAP vs bits, one curve per method, growing point by point.

mAP is a fraction in [0, 1] (the y axis spans 0..1), as everywhere in the
project (the CLI's tables and cli/plots.py).

The sweep runs on the engine (:func:`engine.sweep.run_sweep`) in the
background, scored with the protocol chosen here (the fork's four curves switch
it to ``squeezedet``, what the fork scored with, as the CLI's ``--fork-curves``
advises); every finished point arrives as a row and the plot is redrawn from
:func:`engine.sweep.summarize` (mean ± std over seeds).  A caption names what the
plot was computed with and turns into "settings changed — Run sweep again" (the
plot greyed) once the settings describe another sweep; a sweep that stops early
says why in the status line.
"""

from __future__ import annotations

import dataclasses

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from squeezelens.cli.plots import draw_sweep_curves, set_sweep_axes
from squeezelens.engine.eval.devkit import PROTOCOLS
from squeezelens.engine.quant import QuantConfig
from squeezelens.engine.quant.labels import SEP, short_label
from squeezelens.gui.analysis import Analysis
from squeezelens.gui.panels.metrics_panel import PROTOCOL_TIP
from squeezelens.gui.panels.quant_presets import fork_curves
from squeezelens.gui.panels.stale import ResultCaption
from squeezelens.gui.provenance import ResultTag, model_key, result_tag
from squeezelens.gui.state import AppState

FAILED_STYLE = "color: #D55E00; font-weight: 600;"


class SweepPanel(QWidget):
    """Settings row, then the mAP-vs-bits plot."""

    def __init__(self, state: AppState, analysis: Analysis, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.analysis = state, analysis
        self.bits_from = QSpinBox(objectName="sweepFromSpin", minimum=1, maximum=16, value=3)
        self.bits_to = QSpinBox(objectName="sweepToSpin", minimum=1, maximum=16, value=8)
        self.current = QCheckBox("Current config", objectName="sweepCurrentCheck", checked=True)
        self.fork = QCheckBox("Fork's four curves", objectName="sweepForkCheck")
        self.repeats = QSpinBox(objectName="sweepRepeatsSpin", minimum=1, maximum=10, value=1)
        self.repeats.setToolTip("Seeds per stochastic point (mean ± std)")
        self.protocol = QComboBox(objectName="sweepProtocolCombo")
        self.protocol.addItems(PROTOCOLS)
        self.protocol.setToolTip(PROTOCOL_TIP + "; the fork's curves switch it to squeezedet")
        self.caption = ResultCaption("No sweep yet: press Run sweep", "Run sweep", "sweepCaption")
        self.button = QPushButton("Run sweep", objectName="sweepButton")
        self.export = QPushButton("Export plot…", objectName="exportSweepButton")
        self.status = QLabel("", objectName="sweepStatus")
        self.plot = pg.PlotWidget(title="mAP vs weight bits")
        self.plot.setObjectName("sweepPlot")
        self.plot.setMenuEnabled(False)
        set_sweep_axes(self.plot.getPlotItem(), [3, 8])  # a fraction in [0, 1], as the CLI's
        self.legend = self.plot.addLegend(offset=(-10, -40))  # bottom right: curves end top right
        self._stale = False  # the plot lags the points (redrawn when the tab shows)
        self._build()
        self.caption.greys(self.plot)
        self.button.clicked.connect(self.run)
        self.fork.toggled.connect(
            lambda on: self.protocol.setCurrentText("squeezedet" if on else "official")
        )
        state.sweep_changed.connect(self.redraw)
        for signal in (state.quant_changed, state.model_changed, state.dataset_changed):
            signal.connect(self.update_stale)
        for widget in (self.bits_from, self.bits_to, self.repeats):
            widget.valueChanged.connect(self.update_stale)
        for check in (self.current, self.fork):
            check.toggled.connect(self.update_stale)
        self.protocol.currentTextChanged.connect(self.update_stale)

    def _build(self) -> None:
        row = self.row = QHBoxLayout()  # the window adds where the sweep runs after the button
        for w in (QLabel("Bits"), self.bits_from, QLabel("to"), self.bits_to, self.current,
                  self.fork, QLabel("Seeds"), self.repeats, QLabel("Protocol"), self.protocol,
                  self.button):  # fmt: skip
            row.addWidget(w)
        row.addWidget(self.status, 1)
        row.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(row)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)

    def configs(self) -> list:
        """The configs the settings describe (one per method and bit width); the fork's
        curves are the engine's presets applied to the current config at each width."""
        lo, hi = sorted((self.bits_from.value(), self.bits_to.value()))
        base = self.state.quant or QuantConfig(bits=8)
        at = [base.replace(bits=b) for b in range(lo, hi + 1)]
        out = list(at) if self.current.isChecked() else []
        if self.fork.isChecked():
            out += [preset.apply(config) for preset in fork_curves() for config in at]
        return out

    def key(self) -> tuple:
        """What a sweep started now would compute (its tag's key)."""
        configs = tuple(self.configs()) if self.state.model is not None else ()
        return (*model_key(self.state), configs, self.repeats.value(),
                self.protocol.currentText())  # fmt: skip

    def tag(self) -> ResultTag:
        """The settings of a sweep started now: its methods, images and protocol."""
        lo, hi = sorted((self.bits_from.value(), self.bits_to.value()))
        base = self.state.quant or QuantConfig(bits=8)
        methods = []
        if self.current.isChecked():
            methods.append(SEP.join(short_label(base).split(SEP)[1:]))  # all but the bits
        if self.fork.isChecked():
            methods.append("the fork's four curves")
        seeds = f", {self.repeats.value()} seeds" if self.repeats.value() > 1 else ""
        summary = f"mAP vs bits {lo}–{hi}: " + " + ".join(m for m in methods if m) + seeds
        tag = result_tag(self.state, self.key(), self.protocol.currentText())
        configs = {short_label(c): c.to_dict() for c in self.configs()}
        return dataclasses.replace(tag, ref_label="float", ref_config="float", other_label="sweep",
                                   other_config=summary, summary=summary, configs=configs)  # fmt: skip

    def run(self) -> None:
        configs = self.configs()
        if not configs:
            self.state.error.emit("Choose at least one sweep method")
            return
        self.analysis.sweep(configs, repeats=self.repeats.value(),
                            protocol=self.protocol.currentText(), tag=self.tag())  # fmt: skip

    def is_stale(self) -> bool:
        """The plot shows a sweep of other settings than the ones now chosen."""
        tag = self.state.sweep.tag
        return tag is not None and not self.state.sweep.running and tag.key != self.key()

    def update_stale(self, *_args) -> None:
        self.caption.show_tag(self.state.sweep.tag, self.is_stale())

    def showEvent(self, event) -> None:  # noqa: N802
        if self._stale:
            self.redraw()
        super().showEvent(event)

    def redraw(self, force: bool = False) -> None:
        """Redraw every curve from the rows so far (engine.sweep.summarize); while the
        tab is hidden only the status line (the plot is drawn when it shows, or when
        ``force``d, e.g. for an export)."""
        from squeezelens.engine.sweep import summarize

        sweep = self.state.sweep
        rows = sweep.points
        running = " (running…)" if sweep.running else ""
        failure = f" · {sweep.failure}" if sweep.failure and not sweep.running else ""
        self.status.setText(f"{len(rows)} points{running}{failure}")
        self.status.setStyleSheet(FAILED_STYLE if failure else "")
        self.status.setToolTip(sweep.failure)
        self.update_stale()
        self._stale = not (self.isVisible() or force)
        if self._stale:
            return
        self.plot.clear()
        self.legend.clear()
        if rows:  # the same drawing as the CLI's sweep.png (palette, labels, float line)
            item = self.plot.getPlotItem()
            set_sweep_axes(item, draw_sweep_curves(item, summarize(rows)))
