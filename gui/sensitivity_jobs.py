"""The Layers tab's sensitivity: each layer's mAP drop, its noise, and the recommendation.

A collaborator of :class:`gui.analysis.Analysis` with an explicit interface:
:meth:`SensitivityJobs.run` starts :func:`engine.sensitivity.layer_sensitivity` on the
``long`` lane on the first :data:`SENSITIVITY_IMAGES` images, then
:func:`engine.sensitivity.with_noise` (a paired bootstrap over those images), so the
column says how many images it used and how far a drop may move by chance;
:meth:`config_changed` and :meth:`model_changed` keep the column and the recommendation
true to the settings.  A config that differs from the measured one only in bits keeps
the column (every tested width was measured); any other change leaves it, greyed as
stale by the Layers panel (:attr:`AppState.sensitivity_tag`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from squeezelens.engine.errors import InputError
from squeezelens.gui.facts import noise_column, same_grids, sensitivity_columns
from squeezelens.gui.provenance import result_tag, sensitivity_key
from squeezelens.gui.state import AppState
from squeezelens.gui.workers import JobContext

if TYPE_CHECKING:
    from squeezelens.engine.quant import QuantConfig
    from squeezelens.engine.sensitivity import SensitivityResult
    from squeezelens.gui.controller import Controller

SENSITIVITY_IMAGES = 20


class SensitivityJobs(QObject):
    """Sensitivity, its recommendation and per-layer bits of the compared config."""

    recommendation_changed = Signal(bool)  # whether a recommendation can be applied now

    def __init__(self, state: AppState, controller: Controller, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.recommendation: QuantConfig | None = None  # for the config the sensitivity ran on
        self._measured: tuple[SensitivityResult, QuantConfig] | None = None  # result, its config

    # ------------------------------------------------------------- interface
    def model_changed(self) -> None:
        """Another model: nothing measured holds."""
        self._measured = None
        self._clear_recommendation()

    def config_changed(self) -> None:
        """Re-read the measured drops at the new config's bits; when the grids differ, keep
        the measured columns (the panel greys them as stale: sensitivity_tag.key)."""
        self._clear_recommendation()  # it was for the old bits / config
        if self._measured is None:
            return
        result, measured = self._measured
        config = self.state.other_config
        shown = config if config is not None and same_grids(config, measured) else measured
        self.state.set_sensitivity(*sensitivity_columns(result, shown))
        self.state.set_sensitivity_info(self.state.sensitivity_tag, noise_column(result, shown))

    def run(self) -> None:
        """mAP drop of each layer quantized alone at the current bits and the few below them
        (engine.sensitivity, on a subset of images), with the bootstrap spread of each drop;
        the engine's recommendation is kept."""
        s = self.state
        handle, dataset, config = self.controller.handle, s.dataset, s.other_config
        if handle is None or dataset is None or not dataset.has_labels or config is None:
            s.error.emit(
                "Sensitivity needs a model, a labelled KITTI folder and a quantized config"
            )
            return
        subset = dataclasses.replace(dataset, records=dataset.records[:SENSITIVITY_IMAGES])
        protocol = s.protocol
        tag = result_tag(s, sensitivity_key(s, protocol), protocol, images=len(subset))
        compute, choice = self.controller.compute, self.controller.compute.choice
        tag = dataclasses.replace(tag, compute=choice.describe())

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine import sensitivity as sens

            dets: dict = {}
            detect = compute.source(choice, handle.detector, subset, ctx, "Sensitivity")
            result = sens.layer_sensitivity(
                handle.detector, subset, config, bits=sens.sensitivity_bits(config),
                protocol=protocol, progress=None if detect else ctx.progress, cancel=ctx.token,
                on_detections=dets.__setitem__, detect=detect,
            )  # fmt: skip
            ctx.set_text(f"Sensitivity: noise of each drop (bootstrap over {len(subset)} images)")
            result = sens.with_noise(result, subset.records, dets, protocol,
                                     handle.detector.class_names, ctx.progress, ctx.token)  # fmt: skip
            return result, sens.apply_recommendation(config, result), handle, config, tag

        self.controller.long.submit(job, "sensitivity", f"Sensitivity on {len(subset)} images "
                                    f"{choice.place()}",
                                    on_done=self.ready)  # fmt: skip

    def ready(self, value: Any) -> None:
        """A sensitivity finished: (result, recommended config, model handle, config, tag)."""
        result, recommended, handle, config, tag = value
        if handle is not self.controller.handle or config != self.state.other_config:
            self.state.message.emit(
                "Sensitivity discarded: the model or the config changed while it ran"
            )
            return
        self._measured = (result, config)
        self.state.set_sensitivity(*sensitivity_columns(result, config))
        self.state.set_sensitivity_info(tag, noise_column(result, config))
        self.recommendation = recommended if recommended != config else None
        self.recommendation_changed.emit(self.recommendation is not None)
        self.state.message.emit(
            "Sensitivity computed; 'Apply recommendation' sets per-layer bits"
            if self.recommendation is not None
            else "Sensitivity computed; every layer already has the recommended bits"
        )

    def apply_recommendation(self) -> None:
        """Use the engine's recommendation (the config with per-layer bits) as the compared config."""
        if self.recommendation is None or self.state.other_config is None:
            self.state.error.emit("Compute the sensitivity of the current quantized config first")
            return
        self._set_other(self.recommendation)

    def set_overrides(self, overrides: dict) -> bool:
        """Per-layer bits ('float' or int) of the compared config (B in A-vs-B mode);
        False when there is no quantized config to edit or the engine refused them."""
        config = self.state.other_config
        if config is None:
            return False
        try:
            new = config.replace(overrides=dict(overrides))
        except InputError as exc:
            self.state.error.emit(str(exc))
            return False
        self._set_other(new)
        return True

    # -------------------------------------------------------------- internals
    def _clear_recommendation(self) -> None:
        if self.recommendation is not None:
            self.recommendation = None
            self.recommendation_changed.emit(False)

    def _set_other(self, config: QuantConfig) -> None:
        """Make ``config`` the compared config (B in A-vs-B mode, else the quantized one)."""
        if self.state.mode == "ab":
            self.state.set_quant(self.state.quant, config)
        else:
            self.state.set_quant(config, self.state.quant_b)
