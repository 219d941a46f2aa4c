"""The immutable records :class:`gui.state.AppState` holds: what the window shows about the
model, one image's result and browser row, the evaluation and the sweep.

No engine object is built here; engine results (EvalResult, sweep rows) are carried as
they are.  Each record that is a result keeps the :class:`gui.provenance.ResultTag` of
the settings it was computed with, so its view can say so and turn stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from squeezelens.engine.compare import Comparison
from squeezelens.engine.types import Detections
from squeezelens.gui.provenance import ResultTag

if TYPE_CHECKING:
    from squeezelens.engine.box_reasons import ImageReasons
    from squeezelens.engine.compare import TwinStats
    from squeezelens.engine.error_eval import ErrorEvaluation
    from squeezelens.engine.eval.results import EvalResult
    from squeezelens.engine.int8.compare_layers import Int8LayerComparison


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
    reasons: ImageReasons | None = None  # why each lost box is lost, what each new box is
    twins: TwinStats | None = None  # the matched float/quantized boxes at the threshold


@dataclass(frozen=True)
class EvalState:
    """Evaluation results: reference and other EvalResult (engine objects), the settings
    they were computed with (``tag``), the float model's result (the baseline) and the
    detection errors of the reference and the other model (engine.error_eval, in that order)."""

    ref: EvalResult | None = None
    other: EvalResult | None = None
    ref_label: str = "float"
    other_label: str = "quantized"
    tag: ResultTag | None = None
    float_result: EvalResult | None = None
    errors: ErrorEvaluation | None = None


@dataclass(frozen=True)
class SweepState:
    """Rows of the running/finished sweep (engine.sweep's result rows, as in results.jsonl),
    the settings it runs with and why it stopped early ("" when it finished or runs)."""

    points: tuple[dict[str, Any], ...] = ()
    running: bool = False
    tag: ResultTag | None = None
    failure: str = ""


@dataclass(frozen=True)
class Int8LayersState:
    """The deployed INT8 model vs float and vs its simulation, layer by layer
    (engine.int8.compare_layers), on ``images`` (paths) with ``kernels``; ``key``: the
    settings it was computed with (gui.int8_layers.int8_layers_key), for staleness."""

    comparison: Int8LayerComparison | None = None
    images: tuple[str, ...] = ()
    kernels: str = "xnnpack"
    key: tuple = ()
