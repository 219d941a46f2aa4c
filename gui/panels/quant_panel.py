"""Quantization panel: bits, rounding, zero reservation, scale, grid, activations, INT8,
and the remedies (:mod:`gui.panels.remedy_controls`: range, equalization, bias correction,
AdaRound).

Every change replaces the config in AppState (``dataclasses.replace``), which
makes the controller re-detect the image.  While the bits slider is dragged
the update is debounced (``DEBOUNCE_MS``); a release or a key press sends it at
once.  The panel never quantizes anything itself.  With TFLite INT8 on, the
weight controls the INT8 model ignores are disabled and say why in their tooltip.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from squeezelens.engine.quant import QuantConfig
from squeezelens.gui.busy import BusyIndicator
from squeezelens.gui.panels.quant_presets import activation_tip, describe_size, presets
from squeezelens.gui.panels.remedy_controls import RemedyControls
from squeezelens.gui.provenance import int8_on
from squeezelens.gui.state import AppState

DEBOUNCE_MS = 75
ACT_OFF = 3  # activationBitsSpin value shown as "off"
INT8_TIP = ("Disabled while TFLite INT8 is on: the INT8 model quantizes weights itself "
            "(TFLite's converter: 8-bit, per-channel weights, int32 biases) and ignores this "
            "setting. Untick TFLite INT8 to use it.")  # fmt: skip
AB_INT8_TIP = ("TFLite INT8 compares the float model with the INT8 model: choose "
               "'Float vs quantized' to use it.")  # fmt: skip
CHOICES = {
    "rounding": ("nearest", "stochastic", "adaround"),
    "scale": ("global", "groups", "layer", "channel"),
    "grid": ("linear", "pow2"),
}


def _combo(name: str, key: str, tip: str) -> QComboBox:
    combo = QComboBox(objectName=name)
    combo.addItems(CHOICES[key])
    combo.setToolTip(tip)
    return combo


class QuantPanel(QWidget):
    """Edits config A (or B in A-vs-B mode) of AppState."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.editing = "a"
        self._last: dict[str, Any] = {"a": None, "b": None}  # config to restore from float
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.apply)
        self._build()
        self._connect()
        self._tips = {w: w.toolTip() for w in (*self.weight_controls(), self.int8)}
        self.busy.setVisible(False)
        state.quant_changed.connect(self.sync_from_state)
        state.computing_changed.connect(self._on_busy)  # this image's result only
        state.model_changed.connect(self._update_size)
        state.dataset_changed.connect(self._update_act_tip)
        # the engine's defaults (the fork at 8 bits) under Float, until the state says otherwise
        self._set_widgets(QuantConfig().to_dict(), True)
        self.sync_from_state()

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        self.bits = QSlider(Qt.Orientation.Horizontal, objectName="bitsSlider")
        self.bits.setRange(1, 16)
        self.bits.setValue(8)
        self.bits.setPageStep(1)
        self.bits.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.bits.setToolTip("Weight bit width (drag; arrow keys step by one)")
        self.bits_label = QLabel("8 bits", objectName="bitsLabel")
        self.bits_label.setMinimumWidth(52)
        self.float_button = QPushButton("Float", objectName="floatButton", checkable=True)
        self.float_button.setToolTip("Show the float model (no quantization)")
        self.rounding = _combo("roundingCombo", "rounding", "Rounding to the grid")
        self.seed = QSpinBox(objectName="seedSpin", minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setToolTip("Seed of stochastic rounding")
        self.reserve_zero = QCheckBox("Reserve zero", objectName="reserveZeroCheck")
        self.reserve_zero.setToolTip("Replace the level nearest 0 by exactly 0")
        self.scale = _combo(
            "scaleCombo", "scale", "Range per model, conv/fire group, layer or channel"
        )
        self.remedies = RemedyControls(self)
        self.grid = _combo(
            "gridCombo", "grid", "Evenly spaced levels or powers of two (dynamic fixed point)"
        )
        self._build_extras()
        self._lay_out()

    def _build_extras(self) -> None:
        """Activations, INT8, switches, presets, comparison mode, busy bar, size line."""
        self.act_bits = QSpinBox(objectName="activationBitsSpin", minimum=ACT_OFF, maximum=16)
        self.act_bits.setSpecialValueText("off")
        self.act_bits.setToolTip(activation_tip(None))
        self.int8 = QCheckBox("TFLite INT8", objectName="int8Check")
        self.int8.setToolTip("Compare float with the integer-only TFLite model")
        self.biases = QCheckBox("Quantize biases", objectName="quantizeBiasesCheck")
        self.first = QCheckBox("Quantize conv1", objectName="quantizeFirstLayerCheck")
        self.preset = QComboBox(objectName="presetCombo")
        self.preset.addItem("Preset…")
        for preset in presets():  # the engine's: the fork's four curves, Ristretto
            self.preset.addItem(preset.name)
            self.preset.setItemData(self.preset.count() - 1, preset.description,
                                    Qt.ItemDataRole.ToolTipRole)  # fmt: skip
        self.preset.setToolTip("The low-precision fork's four published curves, Ristretto's "
                               "dynamic fixed point (bits, seed and per-layer bits are kept)")  # fmt: skip
        self.reset = QPushButton("Reset to float", objectName="resetButton")
        self.compare = QComboBox(objectName="compareCombo")
        self.compare.addItems(["Float vs quantized", "Config A vs config B"])
        self.edit_a = QPushButton("Edit A", objectName="editAButton", checkable=True, checked=True)
        self.edit_b = QPushButton("Edit B", objectName="editBButton", checkable=True)
        group = QButtonGroup(self)
        group.addButton(self.edit_a)
        group.addButton(self.edit_b)
        self.busy = BusyIndicator(objectName="busyBar")
        self.busy.setToolTip("Computing the boxes of this image")
        policy = self.busy.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the panel does not jump on every slider move
        self.busy.setSizePolicy(policy)
        self.size_label = QLabel("No model", objectName="sizeLabel", wordWrap=True)

    def _lay_out(self) -> None:
        box = QGroupBox("Quantization")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(self._row(self.compare))
        form.addRow(self._row(self.edit_a, self.edit_b))
        form.addRow("Bits", self._row(self.bits, self.bits_label, self.float_button))
        r = self.remedies
        form.addRow("Rounding", self._row(self.rounding, QLabel("seed"), self.seed))
        form.addRow("AdaRound", self._row(r.iterations, r.iterations_label))
        form.addRow("Scale", self._row(self.scale, self.grid))
        form.addRow("Range", self._row(r.range, r.range_p))
        form.addRow("Activations", self._row(self.act_bits, r.act_range, r.act_range_p))
        form.addRow("Remedies", self._row(r.equalize, r.bias_correction))
        form.addRow(self._row(self.biases, self.first))
        form.addRow(self._row(self.reserve_zero, self.int8))
        form.addRow(self._row(self.preset, self.reset))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(box)
        layout.addWidget(self.busy)
        layout.addWidget(self.size_label)

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            row.addWidget(widget, 1 if isinstance(widget, (QSlider, QComboBox)) else 0)
        return w

    def _connect(self) -> None:
        self.bits.valueChanged.connect(self._on_bits)
        self.bits.sliderReleased.connect(self.apply)
        self.float_button.toggled.connect(self._on_float)
        self.remedies.edited.connect(self._edited)
        for combo in (self.rounding, self.scale, self.grid):
            combo.currentIndexChanged.connect(self._edited)
        for check in (self.reserve_zero, self.biases, self.first):
            check.toggled.connect(self._edited)
        self.seed.valueChanged.connect(self._edited)
        self.act_bits.valueChanged.connect(self._edited)
        self.int8.toggled.connect(self.state.set_int8)
        self.int8.toggled.connect(lambda _on: self._lock_for_int8())
        self.preset.activated.connect(self._on_preset)
        self.reset.clicked.connect(self.reset_to_float)
        self.compare.currentIndexChanged.connect(self._on_compare)
        self.edit_a.toggled.connect(lambda on: self._set_editing("a" if on else "b"))

    def weight_controls(self) -> tuple[QWidget, ...]:
        """The controls of the simulated quantizer (ignored by the TFLite INT8 model)."""
        return (self.bits, self.float_button, self.rounding, self.seed, self.reserve_zero,
                self.scale, self.grid, self.act_bits, self.biases, self.first,
                self.preset)  # fmt: skip

    def _lock_for_int8(self) -> None:
        """With TFLite INT8 compared, the weight controls do nothing: disabled, with why;
        in A-vs-B mode the INT8 switch does nothing: disabled, with why."""
        int8 = int8_on(self.state)
        for w in self.weight_controls():
            w.setEnabled(not int8 and (w is not self.seed or self._draws()))
            w.setToolTip(INT8_TIP if int8 else self._tips[w])
        self.remedies.lock(int8=int8, activations=self.act_bits.value() != ACT_OFF,
                           adaround=self.rounding.currentText() == "adaround")  # fmt: skip
        ab = self.state.mode == "ab"
        self.int8.setEnabled(not ab)
        self.int8.setToolTip(AB_INT8_TIP if ab else self._tips[self.int8])

    def _draws(self) -> bool:
        """Whether the rounding draws random numbers (the seed matters)."""
        return self.rounding.currentText() in ("stochastic", "adaround")

    def _update_act_tip(self) -> None:
        self._tips[self.act_bits] = activation_tip(self.state.dataset)
        self._lock_for_int8()

    # ------------------------------------------------------------ from widgets
    def _leave_float(self) -> None:
        """Touching any quantization control means: quantize (leave Float)."""
        if self.float_button.isChecked():
            self.float_button.blockSignals(True)
            self.float_button.setChecked(False)
            self.float_button.blockSignals(False)

    def _edited(self, *_args) -> None:
        self._leave_float()
        self.apply()

    def _on_bits(self, value: int) -> None:
        self._leave_float()
        self._show_bits()
        if self.bits.isSliderDown():
            self._timer.start()
        else:
            self.apply()

    def _on_float(self, on: bool) -> None:
        self._show_bits()
        self.apply()

    def widget_config(self) -> Any:
        """The config the widgets describe (None when Float is on)."""
        if self.float_button.isChecked():
            return None
        act = self.act_bits.value()
        values = {
            "bits": self.bits.value(),
            "rounding": self.rounding.currentText(),
            "seed": self.seed.value(),
            "reserve_zero": self.reserve_zero.isChecked(),
            "scale": self.scale.currentText(),
            "grid": self.grid.currentText(),
            "activation_bits": None if act == ACT_OFF else act,
            "quantize_biases": self.biases.isChecked(),
            "quantize_first_layer": self.first.isChecked(),
            **self.remedies.values(),
        }
        base = self._current() or self._last[self.editing]
        return QuantConfig(**values) if base is None else base.replace(**values)

    def _current(self) -> Any:
        return self.state.quant if self.editing == "a" else self.state.quant_b

    def apply(self) -> None:
        """Send the widgets' config to AppState now (cancels a pending debounce)."""
        self._timer.stop()
        self._lock_for_int8()
        try:
            config = self.widget_config()
        except ValueError as exc:  # InputError: the engine's one-line reason
            self.state.error.emit(f"invalid quantization setting: {exc}")
            return
        if config is not None:
            self._last[self.editing] = config
        a, b = self.state.quant, self.state.quant_b
        if self.editing == "a":
            self.state.set_quant(config, b)
        else:
            self.state.set_quant(a, config)
        self._update_size()

    def reset_to_float(self) -> None:
        """Reset → float: both configs off, float vs quantized mode."""
        self.state.set_quant(None, None, mode="float")
        self.state.set_int8(False)

    def _on_preset(self, index: int) -> None:
        if index <= 0:
            return
        self._set_widgets(presets()[index - 1].changes(), float_on=False)
        self.preset.setCurrentIndex(0)
        self.apply()

    def _on_compare(self, index: int) -> None:
        mode = "ab" if index == 1 else "float"
        b = self.state.quant_b
        if mode == "ab" and b is None:
            b = self.state.quant
        self.state.set_quant(self.state.quant, b, mode=mode)

    def _set_editing(self, which: str) -> None:
        self.editing = which
        self.state.set_editing(which)
        self.sync_from_state()

    # -------------------------------------------------------------- to widgets
    def sync_from_state(self) -> None:
        """Show the state's config in the widgets without re-emitting it."""
        ab = self.state.mode == "ab"
        self._block(True)
        self.compare.setCurrentIndex(1 if ab else 0)
        self.edit_a.setVisible(ab)
        self.edit_b.setVisible(ab)
        if not ab:
            self.editing = "a"
            self.edit_a.setChecked(True)
            self.state.set_editing("a")
        self.int8.setChecked(self.state.int8)
        config = self._current()
        self.float_button.setChecked(config is None)
        if config is not None:
            self._set_widgets(config.to_dict(), float_on=False)
        self._block(False)
        self._show_bits()
        self._lock_for_int8()
        self._update_size()

    def _set_widgets(self, values: dict, float_on: bool) -> None:
        blocked = self.bits.signalsBlocked()
        self._block(True)
        if "bits" in values:
            self.bits.setValue(int(values["bits"]))
        self.remedies.show_values(values)
        for key, combo in (("rounding", self.rounding), ("scale", self.scale),
                           ("grid", self.grid)):  # fmt: skip
            if values.get(key) in CHOICES[key]:
                combo.setCurrentText(values[key])
        for key, check in (("reserve_zero", self.reserve_zero), ("quantize_biases", self.biases),
                           ("quantize_first_layer", self.first)):  # fmt: skip
            if key in values:
                check.setChecked(bool(values[key]))
        if "seed" in values:
            self.seed.setValue(int(values["seed"]))
        if "activation_bits" in values:
            self.act_bits.setValue(int(values["activation_bits"] or ACT_OFF))
        self.float_button.setChecked(float_on)
        self._block(blocked)
        self._show_bits()

    def _show_bits(self) -> None:
        """'6 bits', or 'float' while Float is on (the slider's value is then not in use)."""
        bits = self.bits.value()
        on = self.float_button.isChecked()
        self.bits_label.setText("float" if on else f"{bits} bit" + ("s" if bits > 1 else ""))

    def _block(self, on: bool) -> None:
        for w in (self.bits, self.float_button, self.rounding, self.seed, self.reserve_zero,
                  self.scale, self.grid, self.act_bits, self.int8, self.biases,
                  self.first, self.compare, self.edit_a):  # fmt: skip
            w.blockSignals(on)
        self.remedies.block(on)

    def _on_busy(self, busy: bool) -> None:
        """Shown while the current image's result computes (not for the split's scan)."""
        self.busy.setVisible(busy)

    def _update_size(self) -> None:
        self.size_label.setText(describe_size(self.state))
