"""AppState: the one source of truth of the window, as a QObject with signals.

Widgets read from it and ask the :class:`gui.controller.Controller` for
changes; the controller runs engine jobs and writes their results here.
Setters emit a signal only when the value really changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from squeezelens.engine.compare import Comparison
from squeezelens.engine.types import Detections
from squeezelens.gui.provenance import ResultTag

KEEP = object()  # set_sweep: keep the sweep's tag
MODES = ("float", "ab")  # float vs config A, or config A vs config B
VIEW_MODES = ("overlay", "side")
LAYERS = ("gt", "ref", "other")


@dataclass(frozen=True)
class ModelInfo:
    """What the window shows about the loaded detector (no engine object inside)."""

    summary: str
    variant: str
    num_parameters: int
    class_names: tuple[str, ...]
    input_size: tuple[int, int]
    checkpoint_path: str
    sha256: str = ""
    layer_names: tuple[str, ...] = ()
    tensor_sizes: dict[str, int] = field(default_factory=dict, compare=False)
    tensor_ranges: dict[str, Any] = field(default_factory=dict, compare=False)  # TensorRange


@dataclass(frozen=True)
class ImageCounts:
    """One image's row in the browser: GT, reference, other and changed boxes; with labels,
    what the other model costs by the devkit's matching (engine.eval.hurt)."""

    gt: int
    ref: int
    other: int
    changes: int
    scored: bool = False  # the hurt fields below were measured (the image has labels)
    tp_lost: int = 0  # reference true positives the other model misses
    recall_drop: float = 0.0  # reference recall minus the other's
    fp_gained: int = 0  # the other's false positives minus the reference's


@dataclass(frozen=True)
class ImageResult:
    """Detections of the current image by the reference and the other model."""

    index: int
    ref: Detections
    other: Detections
    comparison: Comparison
    threshold: float


@dataclass
class EvalState:
    """Evaluation results: reference and other EvalResult (engine objects), the settings
    they were computed with (``tag``) and the float model's result (the baseline)."""

    ref: Any = None
    other: Any = None
    ref_label: str = "float"
    other_label: str = "quantized"
    tag: ResultTag | None = None
    float_result: Any = None


@dataclass
class SweepState:
    """Points of the running/finished sweep (engine point objects or dicts)."""

    points: list = field(default_factory=list)
    running: bool = False
    tag: ResultTag | None = None  # the settings the sweep runs with
    failure: str = ""  # why the last sweep stopped early ("" when it finished or runs)


class AppState(QObject):
    """Everything the window shows; signals announce changes."""

    message = Signal(str)  # transient status text
    error = Signal(str)  # a user-facing error (status bar + optional dialog)
    loading = Signal(str)  # a long load's progress text ("" when done)
    busy_changed = Signal(bool)
    computing_changed = Signal(bool)  # the current image's result is being computed
    scanning_changed = Signal(bool)  # the browser's background scan of the split runs
    job_progress = Signal(str, int, int)  # label, done, total (total 0 = idle)
    model_changed = Signal()
    dataset_changed = Signal()
    image_changed = Signal()
    quant_changed = Signal()
    result_changed = Signal()
    counts_changed = Signal(int)  # row index, -1 for all
    threshold_changed = Signal(float)
    view_changed = Signal()
    layers_changed = Signal()
    layer_selected = Signal(str)
    histogram_changed = Signal()
    activation_changed = Signal()
    eval_changed = Signal()
    sweep_changed = Signal()
    protocol_changed = Signal(str)  # the evaluation protocol chosen for Evaluate
    editing_changed = Signal(str)  # "a" or "b": the config the quantization panel edits
    hijacks_changed = Signal()  # range hijacks of the compared config(s)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model: ModelInfo | None = None
        self.dataset: Any = None  # engine.data.kitti.Dataset
        self.splits: tuple[str, ...] = ()  # KITTI splits of the dataset's folder (+ "all")
        self.index: int = -1
        self.image: np.ndarray | None = None  # current BGR image
        self.quant: Any = None  # config A (None = float)
        self.quant_b: Any = None  # config B for mode "ab"
        self.int8: bool = False
        self.mode: str = "float"
        self.threshold: float = 0.4
        self.view_mode: str = "overlay"
        self.visible: dict[str, bool] = dict.fromkeys(LAYERS, True)
        self.result: ImageResult | None = None
        self.counts: dict[int, ImageCounts] = {}
        self.layer_rows: list = []  # engine per-layer report rows
        self.selected_layer: str = ""
        self.histogram: Any = None  # engine histogram (+ levels) of the selected layer
        self.histogram_channel: tuple[int, int, int] | None = None  # channel, count, widest
        self.activations: Any = None  # engine activation comparison for the image
        self.sensitivity: dict[str, float] = {}  # mAP drop per layer at the bits it has
        self.sensitivity_by_bits: dict[str, dict[int, float]] = {}  # ... at every tested width
        self.evaluation = EvalState()
        self.sweep = SweepState()
        self.protocol: str = "official"
        self.editing: str = "a"
        self.sensitivity_tag: ResultTag | None = None  # what the sensitivity was measured on
        self.sensitivity_noise: dict[str, float] = {}  # bootstrap spread of each shown drop
        self.hijacks: tuple = ()  # engine RangeHijack of the compared config(s)
        self.hijack_warnings: tuple[str, ...] = ()
        self.busy = False
        self.computing = False
        self.scanning = False

    # ----------------------------------------------------------------- labels
    @property
    def ref_label(self) -> str:
        return "A" if self.mode == "ab" else "Float"

    @property
    def other_label(self) -> str:
        if self.mode == "ab":
            return "B"
        return "INT8" if self.int8 else "Quantized"

    @property
    def ref_config(self) -> Any:
        """The config of the reference boxes (None = float)."""
        return self.quant if self.mode == "ab" else None

    @property
    def other_config(self) -> Any:
        """The config of the compared boxes (None = float)."""
        return self.quant_b if self.mode == "ab" else self.quant

    @property
    def record(self) -> Any:
        if self.dataset is None or not (0 <= self.index < len(self.dataset.records)):
            return None
        return self.dataset.records[self.index]

    # ---------------------------------------------------------------- setters
    def set_model(self, info: ModelInfo | None) -> None:
        self.model = info
        self.result = None
        self.counts = {}
        self.layer_rows, self.histogram, self.activations = [], None, None
        self.sensitivity, self.sensitivity_by_bits = {}, {}
        self.sensitivity_tag, self.sensitivity_noise = None, {}
        self.evaluation = EvalState()
        self.model_changed.emit()
        self.counts_changed.emit(-1)

    def set_dataset(self, dataset: Any, splits: tuple[str, ...] = ()) -> None:
        self.dataset = dataset
        self.splits = tuple(splits)
        self.index = -1
        self.image = None
        self.result = None
        self.counts = {}
        self.evaluation = EvalState()
        self.dataset_changed.emit()
        self.counts_changed.emit(-1)

    def set_image(self, index: int, image: np.ndarray | None) -> None:
        self.index = index
        self.image = image
        if self.result is not None and self.result.index != index:
            self.result = None
        self.image_changed.emit()

    def set_quant(self, config: Any, config_b: Any = None, *, mode: str | None = None) -> None:
        """Replace config A (and B); emits quant_changed when anything differs."""
        mode = self.mode if mode is None else mode
        if (config, config_b, mode) == (self.quant, self.quant_b, self.mode):
            return
        self.quant, self.quant_b, self.mode = config, config_b, mode
        self.quant_changed.emit()

    def set_int8(self, on: bool) -> None:
        if on != self.int8:
            self.int8 = on
            self.quant_changed.emit()

    def set_result(self, result: ImageResult | None) -> None:
        self.result = result
        self.result_changed.emit()

    def set_counts(self, index: int, counts: ImageCounts) -> None:
        self.counts[index] = counts
        self.counts_changed.emit(index)

    def update_counts(self, counts: dict[int, ImageCounts]) -> None:
        """Replace the counts of many rows at once (one signal)."""
        self.counts.update(counts)
        self.counts_changed.emit(-1)

    def reset_counts(self, counts: dict[int, ImageCounts] | None = None) -> None:
        self.counts = dict(counts or {})
        self.counts_changed.emit(-1)

    def set_threshold(self, value: float) -> None:
        value = float(min(max(value, 0.0), 1.0))
        if abs(value - self.threshold) > 1e-9:
            self.threshold = value
            self.threshold_changed.emit(value)

    def set_view_mode(self, mode: str) -> None:
        if mode in VIEW_MODES and mode != self.view_mode:
            self.view_mode = mode
            self.view_changed.emit()

    def set_visible(self, layer: str, on: bool) -> None:
        if self.visible.get(layer) != on:
            self.visible[layer] = on
            self.view_changed.emit()

    def set_layer_rows(self, rows: list) -> None:
        self.layer_rows = list(rows)
        self.layers_changed.emit()

    def set_sensitivity(
        self, values: dict[str, float], by_bits: dict[str, dict[int, float]] | None = None
    ) -> None:
        """Per layer the mAP drop (a fraction) at its bits and, optionally, at each tested width."""
        self.sensitivity = dict(values)
        self.sensitivity_by_bits = dict(by_bits or {})
        self.layers_changed.emit()

    def select_layer(self, name: str) -> None:
        if name != self.selected_layer:
            self.selected_layer = name
            self.layer_selected.emit(name)

    def set_histogram(self, histogram: Any, channel: tuple[int, int, int] | None = None) -> None:
        """The selected layer's histogram; ``channel`` = (shown, of how many, widest range)
        when the grid is per channel and the histogram shows one channel."""
        self.histogram = histogram
        self.histogram_channel = channel
        self.histogram_changed.emit()

    def set_activations(self, comparison: Any) -> None:
        self.activations = comparison
        self.activation_changed.emit()

    def set_evaluation(self, evaluation: EvalState) -> None:
        self.evaluation = evaluation
        self.eval_changed.emit()

    def set_sweep(self, points: list, running: bool, tag: Any = KEEP, failure: str = "") -> None:
        """The sweep's points; ``tag`` (a ResultTag, or None for a sweep without one) is the
        settings of a sweep that starts; left out, the sweep keeps its tag."""
        tag = self.sweep.tag if tag is KEEP else tag
        self.sweep = SweepState(list(points), running, tag, failure)
        self.sweep_changed.emit()

    def set_protocol(self, protocol: str) -> None:
        if protocol != self.protocol:
            self.protocol = protocol
            self.protocol_changed.emit(protocol)

    def set_editing(self, which: str) -> None:
        if which in ("a", "b") and which != self.editing:
            self.editing = which
            self.editing_changed.emit(which)

    @property
    def edited_config(self) -> Any:
        """The config the quantization panel edits (B in A-vs-B mode when editing B)."""
        return self.quant_b if self.mode == "ab" and self.editing == "b" else self.quant

    def set_sensitivity_info(self, tag: ResultTag | None, noise: dict[str, float]) -> None:
        """What the sensitivity column was measured on, and its per-layer noise."""
        self.sensitivity_tag, self.sensitivity_noise = tag, dict(noise)
        self.layers_changed.emit()

    def set_hijacks(self, hijacks: tuple, warnings: tuple[str, ...]) -> None:
        if (tuple(warnings), tuple(hijacks)) != (self.hijack_warnings, self.hijacks):
            self.hijacks, self.hijack_warnings = tuple(hijacks), tuple(warnings)
            self.hijacks_changed.emit()

    def set_busy(self, busy: bool) -> None:
        if busy != self.busy:
            self.busy = busy
            self.busy_changed.emit(busy)

    def set_activity(self, computing: bool, scanning: bool) -> None:
        if computing != self.computing:
            self.computing = computing
            self.computing_changed.emit(computing)
        if scanning != self.scanning:
            self.scanning = scanning
            self.scanning_changed.emit(scanning)
