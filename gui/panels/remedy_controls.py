"""The quantization panel's remedy controls: range search, activation range, equalization,
bias correction and AdaRound's iterations (issue 12's remedies, :mod:`engine.quant.remedies`).

A plain widget owned by :class:`gui.panels.quant_panel.QuantPanel`: it reads and shows
the remedy fields of a QuantConfig (:meth:`RemedyControls.values`,
:meth:`RemedyControls.show_values`) and emits ``edited`` on a user change; it never
touches the state.  :meth:`RemedyControls.lock` disables what does not apply, each
with a tooltip saying why: the activation range without activation bits; under
TFLite INT8, all of them: the ranges because the converter chooses them itself, the
others because the window converts the float weights (the CLI's INT8 export takes
equalization, bias correction and AdaRound, see :mod:`engine.quant.remedies.int8`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QSpinBox,
    QWidget,
)

from squeezelens.engine.quant.config import (
    ACTIVATION_RANGES,
    ADAROUND_ITERATIONS,
    MAX_ADAROUND_ITERATIONS,
    PERCENTILE,
    RANGES,
    percentile_of,
)

DEFAULT_PERCENTILE = 99.9
RANGE_TIP = ("Clipping range of each scale unit: min/max, symmetric around 0, the clip of "
             "least quantization error (mse), or a percentile of the weights")  # fmt: skip
ACT_RANGE_TIP = ("How each layer output's range is calibrated on the train split: largest "
                 "magnitude, a percentile, least error (mse) or TensorRT's entropy method")  # fmt: skip
ACT_RANGE_OFF_TIP = "Used only with activation bits: set Activations to a bit width to use it."
INT8_RANGE_TIP = ("Disabled while TFLite INT8 is on: TFLite's converter chooses the weight and "
                  "activation ranges itself (min/max), so no range setting applies there.")  # fmt: skip
INT8_REMEDY_TIP = ("Disabled while TFLite INT8 is on: this window converts the float weights. "
                   "Equalization, bias correction and AdaRound apply to the INT8 export: "
                   "squeezelens export --int8 --out m.tflite --equalize on --bias-correction on.")  # fmt: skip
EQUALIZE_TIP = ("Cross-layer equalization: rescale the channels consecutive layers share so "
                "their ranges match (the float model's outputs stay the same)")  # fmt: skip
BIAS_TIP = ("Bias correction: subtract each output channel's mean quantization shift, "
            "measured on the train split's calibration images (a long job the first time)")  # fmt: skip
ITERATIONS_TIP = ("AdaRound's optimisation steps per layer (rounding 'adaround'; a long job on "
                  "the calibration images the first time, instant afterwards)")  # fmt: skip


def _range_combo(name: str, choices: tuple[str, ...], tip: str) -> QComboBox:
    combo = QComboBox(objectName=name)
    combo.addItems([*choices, PERCENTILE])
    combo.setToolTip(tip)
    return combo


def _percentile_spin(name: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(objectName=name, decimals=2, minimum=50.01, maximum=100.0)
    spin.setSingleStep(0.1)
    spin.setValue(DEFAULT_PERCENTILE)
    spin.setSuffix(" %")
    spin.setToolTip("P of the percentile range (50 < P ≤ 100)")
    return spin


def _range_value(combo: QComboBox, spin: QDoubleSpinBox) -> str:
    name = combo.currentText()
    return f"{PERCENTILE}:{spin.value():.10g}" if name == PERCENTILE else name


def _show_range(combo: QComboBox, spin: QDoubleSpinBox, value: str) -> None:
    p = percentile_of(value)
    combo.setCurrentText(PERCENTILE if p is not None else value)
    if p is not None:
        spin.setValue(p)
    spin.setVisible(p is not None)


class RemedyControls(QWidget):
    """The remedy fields' widgets (the quantization panel lays them out in its form)."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.range = _range_combo("rangeCombo", RANGES, RANGE_TIP)
        self.range_p = _percentile_spin("rangePercentileSpin")
        self.act_range = _range_combo("activationRangeCombo", ACTIVATION_RANGES, ACT_RANGE_TIP)
        self.act_range_p = _percentile_spin("activationRangePercentileSpin")
        self.equalize = QCheckBox("Equalize", objectName="equalizeCheck", toolTip=EQUALIZE_TIP)
        self.bias_correction = QCheckBox("Bias correction", objectName="biasCorrectionCheck",
                                         toolTip=BIAS_TIP)  # fmt: skip
        self.iterations = QSpinBox(objectName="adaroundIterationsSpin", minimum=1,
                                   maximum=MAX_ADAROUND_ITERATIONS, value=ADAROUND_ITERATIONS)  # fmt: skip
        self.iterations.setSingleStep(100)
        self.iterations.setToolTip(ITERATIONS_TIP)
        self.iterations_label = QLabel("iterations per layer")
        self._tips = {w: w.toolTip() for w in self.widgets()}
        for combo in (self.range, self.act_range):
            combo.currentIndexChanged.connect(self._on_combo)
        for spin in (self.range_p, self.act_range_p):
            spin.editingFinished.connect(self._on_percentile)
        for check in (self.equalize, self.bias_correction):
            check.toggled.connect(lambda _on: self._emit_if_changed())
        self.iterations.editingFinished.connect(self._on_iterations)
        self.range_p.setVisible(False)
        self.act_range_p.setVisible(False)
        self._shown: dict = {}

    def widgets(self) -> tuple[QWidget, ...]:
        return (self.range, self.range_p, self.act_range, self.act_range_p, self.equalize,
                self.bias_correction, self.iterations)  # fmt: skip

    # ------------------------------------------------------------- values
    def values(self) -> dict:
        """The remedy fields the widgets describe (for QuantConfig.replace)."""
        return {
            "range": _range_value(self.range, self.range_p),
            "activation_range": _range_value(self.act_range, self.act_range_p),
            "equalize": self.equalize.isChecked(),
            "bias_correction": self.bias_correction.isChecked(),
            "adaround_iterations": self.iterations.value(),
        }

    def show_values(self, values: dict) -> None:
        """Show a config's fields (a to_dict or a preset's changes) without emitting."""
        self.block(True)
        if "range" in values:
            _show_range(self.range, self.range_p, values["range"])
        if "activation_range" in values:
            _show_range(self.act_range, self.act_range_p, values["activation_range"])
        for key, check in (("equalize", self.equalize), ("bias_correction", self.bias_correction)):
            if key in values:
                check.setChecked(bool(values[key]))
        if "adaround_iterations" in values:
            self.iterations.setValue(int(values["adaround_iterations"]))
        self.block(False)
        self._shown = self.values()

    def block(self, on: bool) -> None:
        for w in self.widgets():
            w.blockSignals(on)

    def lock(self, *, int8: bool, activations: bool, adaround: bool) -> None:
        """Enable what applies now; what does not says why in its tooltip."""
        off_for_int8 = (self.range, self.range_p, self.act_range, self.act_range_p)
        for w in self.widgets():
            why = ""
            if int8:
                why = INT8_RANGE_TIP if w in off_for_int8 else INT8_REMEDY_TIP
            elif not activations and w in (self.act_range, self.act_range_p):
                why = ACT_RANGE_OFF_TIP
            w.setEnabled(not why and (w is not self.iterations or adaround))
            w.setToolTip(why or self._tips[w])
        self.iterations_label.setEnabled(self.iterations.isEnabled())

    # ------------------------------------------------------------ signals
    def _on_combo(self, _index: int) -> None:
        self.range_p.setVisible(self.range.currentText() == PERCENTILE)
        self.act_range_p.setVisible(self.act_range.currentText() == PERCENTILE)
        self._emit_if_changed()

    def _on_percentile(self) -> None:
        self._emit_if_changed()

    def _on_iterations(self) -> None:
        self._emit_if_changed()

    def _emit_if_changed(self) -> None:
        """Spin boxes report 'editing finished' on every focus loss: only changes count."""
        if self.values() != self._shown:
            self._shown = self.values()
            self.edited.emit()
