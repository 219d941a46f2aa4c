"""AppState: the one source of truth of the window, as a QObject with signals.

Widgets read from it and ask the :class:`gui.controller.Controller` for
changes; the controller runs engine jobs and writes their results here.  Every
field is read-only from outside (:class:`Field`): the only way to change one is
its setter, which emits the field's signal (most only when the value really
changed), so no change can go unannounced.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar, cast, overload

import numpy as np
from PySide6.QtCore import QObject, Signal

from squeezelens.engine.types import ImageRecord
from squeezelens.gui.provenance import ResultTag
from squeezelens.gui.state_records import (
    EvalState,
    ImageCounts,
    ImageResult,
    Int8LayersState,
    ModelInfo,
    SweepState,
)

if TYPE_CHECKING:
    from squeezelens.engine.data.kitti import Dataset
    from squeezelens.engine.diagnostics import ActivationRow, ConvDetError, Histogram, LayerRow
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.quant.hijack import Hijack

__all__ = ["AppState", "EvalState", "Field", "ImageCounts", "ImageResult", "Int8LayersState",
           "ModelInfo", "SweepState"]  # fmt: skip

Mode = Literal["float", "ab"]  # float vs config A, or config A vs config B
ViewMode = Literal["overlay", "side"]
Editing = Literal["a", "b"]  # the config the quantization panel edits
MODES: tuple[Mode, ...] = ("float", "ab")
VIEW_MODES: tuple[ViewMode, ...] = ("overlay", "side")
LAYERS = ("gt", "ref", "other")
KEEP = object()  # set_sweep: keep the sweep's tag
T = TypeVar("T")


class Field(Generic[T]):
    """A public read-only view of one AppState field, kept in ``_<name>``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, f"_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Field[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | Field[T]:
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj: object, value: T) -> NoReturn:
        raise AttributeError(f"AppState.{self.name} is read-only: change it through its setter")


def _frozen(mapping: Mapping[str, T]) -> Mapping[str, T]:
    return MappingProxyType(dict(mapping))


class AppState(QObject):
    """Everything the window shows; signals announce changes."""

    message = Signal(str)  # transient status text
    error = Signal(str)  # a user-facing error (banner until dismissed + status bar)
    notice = Signal(str)  # something to know that is no error (a fallback): banner + status bar
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
    int8_layers_changed = Signal()
    image_head_changed = Signal()  # the shown image's ConvDet error by head
    remedy_changed = Signal(str)  # "" or what the window waits for (a remedies job)

    model: Field[ModelInfo | None] = Field()
    dataset: Field[Dataset | None] = Field()
    splits: Field[tuple[str, ...]] = Field()  # KITTI splits of the dataset's folder (+ "all")
    index: Field[int] = Field()
    image: Field[np.ndarray | None] = Field()  # current BGR image
    quant: Field[QuantConfig | None] = Field()  # config A (None = float)
    quant_b: Field[QuantConfig | None] = Field()  # config B for mode "ab"
    int8: Field[bool] = Field()
    mode: Field[Mode] = Field()
    threshold: Field[float] = Field()
    view_mode: Field[ViewMode] = Field()
    visible: Field[Mapping[str, bool]] = Field()
    result: Field[ImageResult | None] = Field()
    layer_rows: Field[tuple[LayerRow, ...]] = Field()
    selected_layer: Field[str] = Field()
    histogram: Field[Histogram | None] = Field()  # the selected layer's (with grid levels)
    histogram_channel: Field[tuple[int, int, int] | None] = Field()  # shown, count, widest
    activations: Field[tuple[ActivationRow, ...] | None] = Field()  # float vs quantized
    sensitivity: Field[Mapping[str, float]] = Field()  # mAP drop per layer at its bits
    sensitivity_by_bits: Field[Mapping[str, Mapping[int, float]]] = Field()  # every width
    evaluation: Field[EvalState] = Field()
    sweep: Field[SweepState] = Field()
    protocol: Field[str] = Field()  # "official" or "squeezedet": what Evaluate scores with
    editing: Field[Editing] = Field()
    sensitivity_tag: Field[ResultTag | None] = Field()  # what the sensitivity was measured on
    sensitivity_noise: Field[Mapping[str, float]] = Field()  # bootstrap spread of each drop
    hijacks: Field[tuple[Hijack, ...]] = Field()  # engine.quant.hijack of the compared configs
    hijack_warnings: Field[tuple[str, ...]] = Field()  # their one-line texts (as the CLI's)
    int8_layers: Field[Int8LayersState] = Field()  # INT8 vs float and simulation, per layer
    image_head: Field[tuple[tuple, ConvDetError] | None] = Field()  # (what it is of, error)
    loading_text: Field[str] = Field()
    remedy_pending: Field[str] = Field()  # the previous result is shown while this computes
    busy: Field[bool] = Field()
    computing: Field[bool] = Field()
    scanning: Field[bool] = Field()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model: ModelInfo | None = None
        self._dataset: Dataset | None = None
        self._splits: tuple[str, ...] = ()
        self._index = -1
        self._image: np.ndarray | None = None
        self._quant: QuantConfig | None = None
        self._quant_b: QuantConfig | None = None
        self._int8 = False
        self._mode: Mode = "float"
        self._threshold = 0.4
        self._view_mode: ViewMode = "overlay"
        self._visible: Mapping[str, bool] = _frozen(dict.fromkeys(LAYERS, True))
        self._result: ImageResult | None = None
        self._counts: dict[int, ImageCounts] = {}
        self._layer_rows: tuple[LayerRow, ...] = ()
        self._selected_layer = ""
        self._histogram: Histogram | None = None
        self._histogram_channel: tuple[int, int, int] | None = None
        self._activations: tuple[ActivationRow, ...] | None = None
        self._sensitivity: Mapping[str, float] = _frozen({})
        self._sensitivity_by_bits: Mapping[str, Mapping[int, float]] = _frozen({})
        self._evaluation = EvalState()
        self._sweep = SweepState()
        self._protocol = "official"
        self._editing: Editing = "a"
        self._sensitivity_tag: ResultTag | None = None
        self._sensitivity_noise: Mapping[str, float] = _frozen({})
        self._hijacks: tuple[Hijack, ...] = ()
        self._hijack_warnings: tuple[str, ...] = ()
        self._int8_layers = Int8LayersState()
        self._image_head: tuple[tuple, ConvDetError] | None = None
        self._loading_text = ""
        self._remedy_pending = ""
        self._busy = self._computing = self._scanning = False

    # ----------------------------------------------------------------- labels
    @property
    def counts(self) -> Mapping[int, ImageCounts]:
        """The browser's rows computed so far (a read-only view)."""
        return MappingProxyType(self._counts)

    @property
    def ref_label(self) -> str:
        return "A" if self.mode == "ab" else "Float"

    @property
    def other_label(self) -> str:
        if self.mode == "ab":
            return "B"
        return "INT8" if self.int8 else "Quantized"

    @property
    def ref_config(self) -> QuantConfig | None:
        """The config of the reference boxes (None = float)."""
        return self.quant if self.mode == "ab" else None

    @property
    def other_config(self) -> QuantConfig | None:
        """The config of the compared boxes (None = float)."""
        return self.quant_b if self.mode == "ab" else self.quant

    @property
    def record(self) -> ImageRecord | None:
        if self.dataset is None or not (0 <= self.index < len(self.dataset.records)):
            return None
        return self.dataset.records[self.index]

    # ---------------------------------------------------------------- setters
    def set_model(self, info: ModelInfo | None) -> None:
        """A new model: everything computed with the old one goes."""
        self._model = info
        self._result = None
        self._counts = {}
        self._layer_rows, self._histogram, self._activations = (), None, None
        self._sensitivity, self._sensitivity_by_bits = _frozen({}), _frozen({})
        self._sensitivity_tag, self._sensitivity_noise = None, _frozen({})
        self._evaluation = EvalState()
        self._int8_layers = Int8LayersState()
        self.model_changed.emit()
        self.counts_changed.emit(-1)

    def set_dataset(self, dataset: Dataset | None, splits: tuple[str, ...] = ()) -> None:
        """A new dataset: no image shown yet, no counts, no evaluation."""
        self._dataset = dataset
        self._splits = tuple(splits)
        self._index = -1
        self._image = None
        self._result = None
        self._counts = {}
        self._evaluation = EvalState()
        self.dataset_changed.emit()
        self.counts_changed.emit(-1)

    def set_image(self, index: int, image: np.ndarray | None) -> None:
        self._index = index
        self._image = image
        if self._result is not None and self._result.index != index:
            self._result = None
        self.image_changed.emit()

    def set_quant(self, config: QuantConfig | None, config_b: QuantConfig | None = None, *,
                  mode: Mode | None = None) -> None:  # fmt: skip
        """Replace config A (and B); emits quant_changed when anything differs."""
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"unknown comparison mode {mode!r}")
        if (config, config_b, mode) == (self.quant, self.quant_b, self.mode):
            return
        self._quant, self._quant_b, self._mode = config, config_b, mode
        self.quant_changed.emit()

    def set_int8(self, on: bool) -> None:
        if on != self.int8:
            self._int8 = on
            self.quant_changed.emit()

    def set_result(self, result: ImageResult | None) -> None:
        self._result = result
        self.result_changed.emit()

    def set_counts(self, index: int, counts: ImageCounts) -> None:
        self._counts[index] = counts
        self.counts_changed.emit(index)

    def update_counts(self, counts: Mapping[int, ImageCounts]) -> None:
        """Replace the counts of many rows at once (one signal)."""
        self._counts.update(counts)
        self.counts_changed.emit(-1)

    def reset_counts(self, counts: Mapping[int, ImageCounts] | None = None) -> None:
        self._counts = dict(counts or {})
        self.counts_changed.emit(-1)

    def set_threshold(self, value: float) -> None:
        value = float(min(max(value, 0.0), 1.0))
        if abs(value - self.threshold) > 1e-9:
            self._threshold = value
            self.threshold_changed.emit(value)

    def set_view_mode(self, mode: str) -> None:
        if mode in VIEW_MODES and mode != self.view_mode:
            self._view_mode = mode  # type: ignore[assignment]  # checked just above
            self.view_changed.emit()

    def set_visible(self, layer: str, on: bool) -> None:
        if layer not in LAYERS:
            raise ValueError(f"unknown box layer {layer!r}")
        if self.visible[layer] != on:
            self._visible = _frozen({**self.visible, layer: bool(on)})
            self.view_changed.emit()

    def set_layer_rows(self, rows: list[LayerRow] | tuple[LayerRow, ...]) -> None:
        self._layer_rows = tuple(rows)
        self.layers_changed.emit()

    def set_sensitivity(self, values: Mapping[str, float],
                        by_bits: Mapping[str, Mapping[int, float]] | None = None) -> None:  # fmt: skip
        """Per layer the mAP drop (a fraction) at its bits and, optionally, at each tested width."""
        self._sensitivity = _frozen(values)
        self._sensitivity_by_bits = _frozen(by_bits or {})
        self.layers_changed.emit()

    def select_layer(self, name: str) -> None:
        if name != self.selected_layer:
            self._selected_layer = name
            self.layer_selected.emit(name)

    def set_histogram(self, histogram: Histogram | None,
                      channel: tuple[int, int, int] | None = None) -> None:  # fmt: skip
        """The selected layer's histogram; ``channel`` = (shown, of how many, widest range)
        when the grid is per channel and the histogram shows one channel."""
        self._histogram = histogram
        self._histogram_channel = channel
        self.histogram_changed.emit()

    def set_activations(self, rows: list[ActivationRow] | None) -> None:
        self._activations = None if rows is None else tuple(rows)
        self.activation_changed.emit()

    def set_evaluation(self, evaluation: EvalState) -> None:
        self._evaluation = evaluation
        self.eval_changed.emit()

    def set_sweep(self, points: list[dict[str, Any]] | tuple[dict[str, Any], ...],
                  running: bool, tag: ResultTag | None | object = KEEP,
                  failure: str = "") -> None:  # fmt: skip
        """The sweep's points; ``tag`` (a ResultTag, or None for a sweep without one) is the
        settings of a sweep that starts; left out, the sweep keeps its tag.  ``failure``:
        why it stopped early."""
        kept = self.sweep.tag if tag is KEEP else cast("ResultTag | None", tag)
        self._sweep = SweepState(tuple(points), running, kept, failure)
        self.sweep_changed.emit()

    def set_protocol(self, protocol: str) -> None:
        if protocol != self.protocol:
            self._protocol = protocol
            self.protocol_changed.emit(protocol)

    def set_editing(self, which: str) -> None:
        if which in ("a", "b") and which != self.editing:
            self._editing = which  # type: ignore[assignment]  # checked just above
            self.editing_changed.emit(which)

    @property
    def edited_config(self) -> QuantConfig | None:
        """The config the quantization panel edits (B in A-vs-B mode when editing B)."""
        return self.quant_b if self.mode == "ab" and self.editing == "b" else self.quant

    def set_sensitivity_info(self, tag: ResultTag | None, noise: Mapping[str, float]) -> None:
        """What the sensitivity column was measured on, and its per-layer noise."""
        self._sensitivity_tag, self._sensitivity_noise = tag, _frozen(noise)
        self.layers_changed.emit()

    def set_hijacks(self, hijacks: tuple[Hijack, ...], warnings: tuple[str, ...]) -> None:
        """The range hijacks of the compared configs and their texts (emits when they change)."""
        if (tuple(warnings), tuple(hijacks)) != (self.hijack_warnings, self.hijacks):
            self._hijacks, self._hijack_warnings = tuple(hijacks), tuple(warnings)
            self.hijacks_changed.emit()

    def set_int8_layers(self, value: Int8LayersState) -> None:
        self._int8_layers = value
        self.int8_layers_changed.emit()

    def set_image_head(self, head: tuple[tuple, ConvDetError] | None) -> None:
        """The shown image's ConvDet error by head and the (model, image, configs) it is of."""
        self._image_head = head
        self.image_head_changed.emit()

    def set_loading(self, text: str) -> None:
        """A long load's progress text ('' when it is done)."""
        self._loading_text = text
        self.loading.emit(text)

    def set_remedy_pending(self, text: str) -> None:
        """What a remedies job computes while the previous result stays shown ('' when none)."""
        if text != self.remedy_pending:
            self._remedy_pending = text
            self.remedy_changed.emit(text)

    def set_busy(self, busy: bool) -> None:
        if busy != self.busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def set_activity(self, computing: bool, scanning: bool) -> None:
        if computing != self.computing:
            self._computing = computing
            self.computing_changed.emit(computing)
        if scanning != self.scanning:
            self._scanning = scanning
            self.scanning_changed.emit(scanning)
