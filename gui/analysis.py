"""Analysis jobs: per-layer diagnostics, activations, evaluation, sweeps, sensitivity.

Layer tables and histograms need no TensorFlow: they run on the controller's
``analysis`` worker (live, latest wins), step by step, each step waiting while
the model worker detects, so a slider release gets its boxes first.  The rest
runs on the model worker (the detector's only thread): activations on the
``activations`` lane; exports the
``export`` lane (cheap, never in the way of a long job); evaluation, sweeps and
sensitivity the ``long`` lane through :class:`gui.long_jobs.LongJobs` (one at a
time, progress, cancellation and a :class:`~gui.workers.ServicingToken`, so
slider moves stay live meanwhile).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal

from squeezelens.engine.errors import InputError
from squeezelens.gui.controller import Controller
from squeezelens.gui.facts import (
    first_quantized,
    layer_histogram,
    quant_report,
    same_grids,
    sensitivity_columns,
)
from squeezelens.gui.state import AppState, EvalState
from squeezelens.gui.workers import JobContext

SENSITIVITY_IMAGES = 20
ACTIVATIONS_DELAY_MS = 300  # two forward passes: after the user pauses, never before a release


def default_sweep_root() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".squeezelens") / "sweeps"


def sweep_dir(root: Path, sha256: str, kitti_root: str, split: str) -> Path:
    """One resumable sweep folder per checkpoint, dataset folder and split."""
    where = hashlib.sha256(f"{kitti_root}\n{split}".encode()).hexdigest()[:8]
    return root / f"{sha256[:16]}_{split}_{where}"


class Analysis(QObject):
    """Submits analysis jobs and publishes their results to AppState."""

    recommendation_changed = Signal(bool)  # whether a recommendation can be applied now

    def __init__(self, state: AppState, controller: Controller, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.runner = controller.model_runner
        self.layers_runner = controller.analysis_runner
        self.sweep_root = default_sweep_root()
        self.layers_active = False
        self.activations_active = False
        self._eval_cache: dict[tuple, Any] = {}
        self.report: dict | None = None
        self.recommendation: dict | None = None  # for the config the sensitivity ran on
        self._sensitivity: tuple[Any, Any] | None = None  # (result, config it was measured on)
        self.channel: int | None = None  # per-channel histogram: None = the widest channel
        self._histogram_of = ""  # the layer whose histogram was computed last
        controller.long.stopped.connect(self._on_stopped)
        state.quant_changed.connect(self._on_config)
        state.model_changed.connect(self._on_model)
        state.layer_selected.connect(self._on_layer)
        self._activations_key: tuple = ()
        self._activations_timer = QTimer(self, singleShot=True, interval=ACTIVATIONS_DELAY_MS)
        self._activations_timer.timeout.connect(self.request_activations)
        controller.idle_timers.append(self._activations_timer)
        state.result_changed.connect(self._on_result)

    # ---------------------------------------------------------------- general
    def _on_stopped(self, label: str) -> None:
        """The tracked long job was cancelled or failed."""
        if label == "sweep":
            self.state.set_sweep(self.state.sweep.points, running=False)

    def cancel(self) -> None:
        """Cancel the running long job (evaluation, sweep, sensitivity, INT8)."""
        self.controller.long.cancel()

    def _on_model(self) -> None:
        self._eval_cache.clear()
        self._sensitivity = None
        self._clear_recommendation()
        self.request_layers()

    def _on_config(self) -> None:
        self._activations_timer.stop()  # they would be for the old config
        self._clear_recommendation()  # it was for the old bits / config
        self._refresh_sensitivity()
        self.request_layers()

    def _refresh_sensitivity(self) -> None:
        """Re-read the measured drops at the new config's bits, or clear them when the new config
        differs in more than bits and per-layer bits (the drops were measured on other grids)."""
        if self._sensitivity is None:
            return
        result, measured = self._sensitivity
        config = self.state.other_config
        if config is not None and same_grids(config, measured):
            self.state.set_sensitivity(*sensitivity_columns(result, config))
        else:
            self._sensitivity = None
            self.state.set_sensitivity({}, {})

    def _on_layer(self, name: str) -> None:
        """Another layer chosen: its histogram (not again for the one just computed)."""
        if name != self._histogram_of:
            self.channel = None
            self.request_layers()

    def set_channel(self, channel: int) -> None:
        """Show channel ``channel``'s histogram and levels (per-channel grids)."""
        if channel != self.channel:
            self.channel = channel
            self.request_layers()

    def _clear_recommendation(self) -> None:
        if self.recommendation is not None:
            self.recommendation = None
            self.recommendation_changed.emit(False)

    # ------------------------------------------------------------ layer table
    def request_layers(self) -> None:
        """Per-layer table and the selected layer's histogram for the current config."""
        handle = self.controller.handle
        if handle is None or not self.layers_active:
            return
        config, layer, channel = self.state.other_config, self.state.selected_layer, self.channel
        pause = self.controller.yield_to_detection

        def job(ctx: JobContext) -> Any:  # numpy only: the float weights are never changed
            from squeezelens.engine.diagnostics import layer_table

            det = handle.detector
            pause(ctx)
            qw = det.quantized_weights(config)
            pause(ctx)
            rows = layer_table(det.float_weights, qw, None)
            pause(ctx)
            report = quant_report(det.float_weights, config)
            name = layer or first_quantized(rows, report)
            pause(ctx)
            hist, shown = layer_histogram(det.float_weights, qw, config, name, channel)
            return rows, report, name, hist, shown

        self.layers_runner.submit("layers", job, "layers", on_done=self._layers_ready)

    def _layers_ready(self, value: Any) -> None:
        rows, report, name, hist, shown = value
        self.report = report
        self._histogram_of = name
        self.state.set_layer_rows(rows)
        if not self.state.selected_layer and report is not None:
            self.state.select_layer(name)  # keep the first quantized layer once chosen
        self.state.set_histogram(hist, shown)

    def _activations_for(self) -> tuple:
        handle = self.controller.handle
        record = self.state.record
        return (handle and handle.generation, record and record.path, self.state.other_config)

    def _on_result(self) -> None:
        """New boxes (or only a new threshold): activations follow once the user pauses."""
        if self.activations_active and self._activations_for() != self._activations_key:
            self._activations_timer.start()

    def request_activations(self) -> None:
        """Float vs quantized activations per layer on the current image."""
        self._activations_timer.stop()
        handle, image = self.controller.handle, self.state.image
        if handle is None or image is None or not self.activations_active:
            return
        if self.state.other_config is None:
            self._activations_key = ()
            self.state.set_activations(None)
            return
        config = self.state.other_config
        calibration = self.controller.calibration
        self._activations_key = self._activations_for()

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine.diagnostics import compare_activations

            if config.activation_bits:
                handle.calibrate(calibration())
            return compare_activations(handle.detector, image, config)

        self.runner.submit("activations", job, "activations", on_done=self.state.set_activations)

    # ------------------------------------------------------------- evaluation
    def evaluate(self) -> None:
        """Evaluate the reference and the other model on the dataset (background)."""
        handle, dataset = self.controller.handle, self.state.dataset
        if handle is None or dataset is None:
            self.state.error.emit("Open a checkpoint and a KITTI folder first")
            return
        if not dataset.has_labels:
            self.state.error.emit(
                f"{dataset.root}: cannot evaluate, the folder has no KITTI labels"
            )
            return
        s = self.state
        jobs = [("ref", s.ref_config, False, s.ref_label), ("other", s.other_config,
                s.int8 and s.mode == "float", s.other_label)]  # fmt: skip
        cache, gen = self._eval_cache, handle.generation
        if jobs[1][2] and handle.int8 is None:
            self.state.error.emit("The INT8 model is still converting; evaluate when it is ready")
            return

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine.evaluate import evaluate

            out = {}
            for which, config, int8, label in jobs:
                key = (gen, str(dataset.root), dataset.split, repr(config), int8)
                if key not in cache:
                    ctx.set_text(f"Evaluating {label.lower()} on {len(dataset)} images")
                    det = handle.int8 if int8 else handle.detector
                    cache[key] = evaluate(det, dataset, None if int8 else config,
                                          progress=ctx.progress, cancel=ctx.token)  # fmt: skip
                out[which] = cache[key]
            return out, jobs[0][3], jobs[1][3]

        self.controller.long.submit(job, "evaluate", f"Evaluating on {len(dataset)} images",
                                    on_done=self._evaluated)  # fmt: skip

    def _evaluated(self, value: Any) -> None:
        out, ref_label, other_label = value
        self.state.set_evaluation(EvalState(out["ref"], out["other"], ref_label, other_label))
        ref, other = out["ref"].map["r11"]["all"], out["other"].map["r11"]["all"]
        self.state.message.emit(
            f"mAP R11: {ref_label} {ref:.4f}, {other_label} {other:.4f} ({other - ref:+.4f})"
        )

    # ------------------------------------------------------------------ sweep
    def sweep(self, configs: list, repeats: int = 1) -> None:
        """mAP vs bits for the given configs; points appear as they finish."""
        handle, dataset = self.controller.handle, self.state.dataset
        if handle is None or dataset is None or not dataset.has_labels:
            self.state.error.emit("A sweep needs a checkpoint and a labelled KITTI folder")
            return
        from squeezelens.engine.sweep import run_sweep, sweep_meta, sweep_points

        det = handle.detector
        sha = det.checkpoint.sha256 if det.checkpoint else "random"
        points = sweep_points(configs, repeats=repeats)
        out_dir = sweep_dir(self.sweep_root, sha, str(dataset.root), dataset.split)
        activations = any(p.quant is not None and p.quant.activation_bits for p in points)
        calibrate = self.controller.calibration if activations else None

        def job(ctx: JobContext) -> Any:
            def progress(done: int, total: int, row: dict | None) -> None:
                if row is not None:
                    ctx.emit_partial(row)
                ctx.progress(done, total)

            calibration = calibrate() if calibrate else None
            if calibration is not None:
                handle.calibrate(calibration)
            meta = sweep_meta(det, dataset, "official", calibration)
            keys = {p.key for p in points}
            rows = run_sweep(
                det, dataset, points, out_dir, meta, progress=progress, cancel=ctx.token
            )
            return [r for r in rows if r["key"] in keys]

        if self.controller.long.submit(job, "sweep", f"Sweeping {len(points)} points",
                                       on_done=self._swept, on_partial=self._sweep_point):  # fmt: skip
            self.state.set_sweep([], running=True)

    def _sweep_point(self, row: dict) -> None:
        self.state.set_sweep([*self.state.sweep.points, row], running=True)

    def _swept(self, rows: list) -> None:
        self.state.set_sweep(rows, running=False)
        self.state.message.emit(f"Sweep finished: {len(rows)} points")

    # ------------------------------------------------------------ sensitivity
    def sensitivity(self) -> None:
        """mAP drop of each layer quantized alone at the current bits and the few below them
        (engine.sensitivity, on a subset of images); the engine's recommendation is kept."""
        handle, dataset, config = (
            self.controller.handle,
            self.state.dataset,
            self.state.other_config,
        )
        if handle is None or dataset is None or not dataset.has_labels or config is None:
            self.state.error.emit(
                "Sensitivity needs a model, a labelled KITTI folder and a quantized config"
            )
            return
        subset = dataclasses.replace(dataset, records=dataset.records[:SENSITIVITY_IMAGES])

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine.sensitivity import (
                apply_recommendation,
                layer_sensitivity,
                sensitivity_bits,
            )

            result = layer_sensitivity(handle.detector, subset, config, bits=sensitivity_bits(config),
                                       progress=ctx.progress, cancel=ctx.token)  # fmt: skip
            return result, apply_recommendation(config, result), handle, config

        self.controller.long.submit(job, "sensitivity", f"Sensitivity on {len(subset)} images",
                                    on_done=self._sensitivity_ready)  # fmt: skip

    def _sensitivity_ready(self, value: Any) -> None:
        result, recommended, handle, config = value
        if handle is not self.controller.handle or config != self.state.other_config:
            self.state.message.emit(
                "Sensitivity discarded: the model or the config changed while it ran"
            )
            return
        self._sensitivity = (result, config)
        self.state.set_sensitivity(*sensitivity_columns(result, config))
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

    def _set_other(self, config: Any) -> None:
        """Make ``config`` the compared config (B in A-vs-B mode, else the quantized one)."""
        if self.state.mode == "ab":
            self.state.set_quant(self.state.quant, config)
        else:
            self.state.set_quant(config, self.state.quant_b)

    # ----------------------------------------------------------------- export
    def export_quantized(self, path: str) -> None:
        """Write the current quantized parameters as the quantize command does (``export`` lane):
        FILE.npz and FILE.json with the grids and provenance (engine.quant.export)."""
        handle, config = self.controller.handle, self.state.other_config
        if handle is None or config is None:
            why = "nothing quantized to export: choose bits first" if handle else "no model loaded"
            self.state.error.emit(f"Cannot export quantized parameters: {why}")
            return
        calibrate = self.controller.calibration if config.activation_bits else None

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine.quant.export import write_quantized

            calibration = calibrate() if calibrate else None
            return tuple(map(str, write_quantized(path, handle.detector, config, calibration)))

        self.state.message.emit(f"Writing quantized parameters to {path}…")
        self.runner.submit("export", job, "export", on_done=self._exported)

    def _exported(self, paths: tuple[str, str]) -> None:
        self.state.message.emit(f"Wrote {paths[0]} and {paths[1]}")
