"""The INT8 layer comparison as a long job: deployed INT8 vs float and vs its simulation.

With "TFLite INT8" on, the Layers tab's activation page compares the converted
INT8 model layer by layer with the float model and with its simulation
(:func:`engine.int8.compare_layers.compare_int8_layers`, what ``squeezelens
compare-int8`` prints) on the image shown and the next ones of the split.  It runs
on the ``long`` lane (progress per image, Esc cancels); the result keeps the key of
the settings it was computed with (model, images, INT8 model, kernels) and turns
stale when they change.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from squeezelens.gui.controller import Controller
from squeezelens.gui.provenance import int8_on, model_key
from squeezelens.gui.state import AppState, Int8LayersState
from squeezelens.gui.workers import JobContext

LABEL = "int8_layers"


def int8_model_path(controller: Controller) -> str:
    """The converted INT8 model's file ('' while there is none): its name carries the
    weights' and calibration's hashes, so another calibration is another file."""
    handle = controller.handle
    int8 = handle.int8 if handle is not None else None
    path = getattr(int8, "model_path", None)
    return "" if path is None else str(path)


def comparison_images(state: AppState, count: int) -> tuple[str, ...]:
    """The image shown and the ``count - 1`` after it in the split (fewer at its end)."""
    ds, index = state.dataset, state.index
    if ds is None or not 0 <= index < len(ds.records):
        return ()
    return tuple(str(r.path) for r in ds.records[index : index + max(1, count)])


def int8_layers_key(state: AppState, controller: Controller, count: int, kernels: str) -> tuple:
    """What a comparison started now would be computed with."""
    return (*model_key(state), int8_model_path(controller), comparison_images(state, count),
            kernels)  # fmt: skip


class Int8LayerJobs(QObject):
    """Starts the comparison on the long lane and publishes it to AppState."""

    def __init__(self, state: AppState, controller: Controller, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.controller = state, controller

    def why_not(self) -> str:
        """Why a comparison cannot start now ('' when it can)."""
        if self.controller.handle is None or self.state.record is None:
            return "Open a checkpoint and images first"
        if not int8_on(self.state):
            return "Tick TFLite INT8 (float vs quantized) to compare the INT8 model"
        if not int8_model_path(self.controller):
            return "The INT8 model is still converting; compare when it is ready"
        return ""

    def run(self, count: int = 1, kernels: str = "xnnpack") -> bool:
        """Compare on the image shown and the next ``count - 1``; False when it cannot start."""
        why = self.why_not()
        if why:
            self.state.error.emit(why)
            return False
        handle, model = self.controller.handle, int8_model_path(self.controller)
        images = comparison_images(self.state, count)
        key = int8_layers_key(self.state, self.controller, count, kernels)

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine.data.images import read_image_bgr
            from squeezelens.engine.int8.compare_layers import compare_int8_layers

            bgr = [read_image_bgr(p) for p in images]
            result = compare_int8_layers(handle.detector, model, bgr, kernels,
                                         progress=ctx.progress, cancel=ctx.token)  # fmt: skip
            return Int8LayersState(result, images, kernels, key)

        text = f"Comparing INT8 with float and its simulation on {len(images)} image(s)"
        return self.controller.long.submit(job, LABEL, text, on_done=self._done)

    def _done(self, value: Int8LayersState) -> None:
        self.state.set_int8_layers(value)
        first = value.comparison.first_parting if value.comparison else None
        self.state.message.emit(
            "INT8 layer comparison: " + (f"parts first at {first}" if first else "never parts")
        )
