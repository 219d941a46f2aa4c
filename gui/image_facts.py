"""What "This image" says about the boxes quantization changed, computed off the UI thread.

:func:`explain_image` runs on the model worker with every detection (after the
two boxes sets, in the same job): the comparison at the display threshold
(:func:`engine.compare.compare_detections`), why each lost box is lost and what
each new box is (:func:`engine.box_reasons.explain_changes`, against the image's
labels; an unlabelled image uses the reference boxes) and the twins
(:class:`engine.compare.TwinStats` of the matched pairs).  When only the threshold
or the protocol moves, :class:`FactsJobs` recomputes them on the analysis worker
and re-publishes the result.

:class:`HeadJobs` splits the ConvDet output error of the shown image into class
probabilities, confidence and box deltas (:class:`engine.diagnostics.HeadSplit`):
two forward passes, so it waits until the user pauses (as the activations do) and
runs on the model worker's ``head`` lane.  No widget here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer

from squeezelens.engine.compare import Comparison, TwinStats, compare_detections
from squeezelens.gui.state import AppState, ImageResult

if TYPE_CHECKING:
    from squeezelens.engine.box_reasons import ImageReasons
    from squeezelens.engine.types import Detections, ImageRecord

HEAD_DELAY_MS = 300  # two forward passes: after the user pauses, never before a release


@dataclass(frozen=True)
class ImageFacts:
    """The comparison of one image's two detection sets at ``threshold`` and what it means."""

    threshold: float
    protocol: str
    comparison: Comparison
    reasons: ImageReasons
    twins: TwinStats


def explain_image(ref: Detections, other: Detections, threshold: float,
                  record: ImageRecord | None, protocol: str) -> ImageFacts:  # fmt: skip
    """Lost/new boxes, their reasons and the twins of one image at ``threshold``."""
    from squeezelens.engine.box_reasons import ImageReasons, explain_changes

    a, b = ref.above(threshold), other.above(threshold)
    comparison = compare_detections(a, b)
    objects = record.objects if record is not None and record.has_labels else None
    if comparison.lost or comparison.gained:
        reasons = explain_changes(a, b, objects, comparison, protocol)
    else:  # nothing lost or new: nothing to explain (most images at 8 bits)
        reasons = ImageReasons((), (), "labels" if objects else "float boxes", "hard")
    return ImageFacts(threshold, protocol, comparison, reasons, TwinStats.of([comparison]))


def with_facts(index: int, ref: Detections, other: Detections, facts: ImageFacts) -> ImageResult:
    return ImageResult(index, ref, other, facts.comparison, facts.threshold, facts.reasons,
                       facts.twins)  # fmt: skip


class FactsJobs(QObject):
    """Reasons and twins again when the threshold or protocol moves (analysis worker)."""

    def __init__(self, state: AppState, runner: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.runner = state, runner

    def request(self, result: ImageResult) -> None:
        """Explain ``result`` (published without reasons) and publish it again with them."""
        s = self.state
        record, protocol = s.record, s.protocol

        def job(ctx: Any) -> tuple[ImageResult, ImageFacts]:
            return result, explain_image(result.ref, result.other, result.threshold, record,
                                         protocol)  # fmt: skip

        self.runner.submit("reasons", job, "reasons", on_done=self._explained)

    def _explained(self, value: tuple[ImageResult, ImageFacts]) -> None:
        result, facts = value
        if self.state.result is result and facts.protocol == self.state.protocol:
            self.state.set_result(replace(result, reasons=facts.reasons, twins=facts.twins))


class HeadJobs(QObject):
    """The shown image's ConvDet error by head, reference vs other (``state.image_head``)."""

    def __init__(self, state: AppState, controller: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self._timer = QTimer(self, singleShot=True, interval=HEAD_DELAY_MS)
        self._timer.timeout.connect(self.request)
        controller.idle_timers.append(self._timer)
        state.result_changed.connect(self._on_result)

    def _key(self) -> tuple:
        handle, s = self.controller.handle, self.state
        return (handle and handle.generation, s.index, *self.controller.config_key()[1:])

    def _on_result(self) -> None:
        head = self.state.image_head
        if self.state.result is not None and (head is None or head[0] != self._key()):
            self._timer.start()

    def request(self) -> None:
        handle, record, image = self.controller.handle, self.state.record, self.state.image
        key = self._key()
        if handle is None or record is None or image is None:
            return
        _, ref, other, int8 = self.controller.config_key()
        if (ref is None and other is None and not int8) or (int8 and handle.int8 is None):
            self.state.set_image_head(None)
            return
        path = record.path

        def job(ctx: Any) -> tuple[tuple, Any]:
            from squeezelens.engine.diagnostics import HeadSplit
            from squeezelens.engine.evaluate import has_stages

            det = handle.detector
            if not has_stages(det):
                return key, None
            x, _ = handle.network_input(path, image)
            raw_ref = det.forward(x[None], ref)[0]
            ctx.checkpoint()
            raw_other = handle.int8.forward(x[None])[0] if int8 else det.forward(x[None], other)[0]
            split = HeadSplit(det.spec.num_classes, det.spec.anchors_per_cell)
            return key, split.add(raw_ref, raw_other).result()

        self.controller.model_runner.submit("head", job, "head", on_done=self._done)

    def _done(self, value: tuple[tuple, Any]) -> None:
        key, error = value
        if key == self._key():
            self.state.set_image_head(None if error is None else (key, error))
