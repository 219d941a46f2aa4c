"""Analysis jobs: per-layer diagnostics, range hijacks, activations, evaluation, sweeps,
sensitivity (:class:`gui.sensitivity_jobs.SensitivityJobs`).

Layer tables and histograms need no TensorFlow: they run on the controller's
``analysis`` worker (live, latest wins), step by step, each step waiting while
the model worker detects, so a slider release gets its boxes first; so do the range
hijacks of the compared configs (:func:`engine.quant.hijack.hijack_warnings`, the
CLI's warning: the window's hint).  The rest
runs on the model worker (the detector's only thread): activations on the
``activations`` lane; exports the
``export`` lane (cheap, never in the way of a long job); evaluation, sweeps and
sensitivity the ``long`` lane through :class:`gui.long_jobs.LongJobs` (one at a
time, progress, cancellation and a :class:`~gui.workers.ServicingToken`, so
slider moves stay live meanwhile).  Every evaluation and sweep keeps the
:class:`~gui.provenance.ResultTag` of the settings it was started with, and is scored
with the protocol chosen in the window.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from squeezelens.gui.controller import Controller
from squeezelens.gui.eval_jobs import evaluations
from squeezelens.gui.facts import first_quantized, layer_clipping, layer_histogram, quant_report
from squeezelens.gui.image_facts import HeadJobs
from squeezelens.gui.int8_layers import Int8LayerJobs
from squeezelens.gui.provenance import ResultTag, eval_key, int8_on, result_tag
from squeezelens.gui.sensitivity_jobs import SensitivityJobs
from squeezelens.gui.state import AppState, EvalState
from squeezelens.gui.workers import JobContext

ACTIVATIONS_DELAY_MS = 300  # two forward passes: after the user pauses, never before a release
HISTOGRAM_DELAY_MS = 30  # after the layer table (see Analysis.__init__)


def default_sweep_root() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".squeezelens") / "sweeps"


def sweep_dir(root: Path, sha256: str, kitti_root: str, split: str, protocol: str) -> Path:
    """One resumable sweep folder per checkpoint, dataset folder, split and protocol."""
    where = hashlib.sha256(f"{kitti_root}\n{split}".encode()).hexdigest()[:8]
    return root / f"{sha256[:16]}_{split}_{protocol}_{where}"


class Analysis(QObject):
    """Submits analysis jobs and publishes their results to AppState."""

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
        self.clipping: dict = {}  # layer -> engine LayerClipping of the compared config
        self.grid_ends: tuple[float, float] | None = None  # of the histogram's grid
        self.sensitivity = SensitivityJobs(state, controller, self)
        self.int8_layers = Int8LayerJobs(state, controller, self)
        self.head = HeadJobs(state, controller, self)  # "This image": ConvDet error by head
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
        # the histogram is drawn a moment after the layer table, so that the table's filling
        # and painting and the plots' drawing and painting (about 20 + 35 ms at start-up)
        # are two stretches of UI work with the event loop running between them
        self._pending_histogram: tuple = ()
        self._histogram_timer = QTimer(self, singleShot=True, interval=HISTOGRAM_DELAY_MS)
        self._histogram_timer.timeout.connect(self._show_histogram)
        controller.idle_timers.append(self._histogram_timer)

    # ---------------------------------------------------------------- general
    def _on_stopped(self, label: str, why: str) -> None:
        """The tracked long job was cancelled or failed: a sweep stops, keeps its points and
        says why in the Sweep tab (one state change: never 'stopped' without its reason)."""
        if label == "sweep":
            self.state.set_sweep(self.state.sweep.points, running=False, failure=why)

    def cancel(self) -> None:
        """Cancel the running long job (evaluation, sweep, sensitivity, INT8)."""
        self.controller.long.cancel()

    def _on_model(self) -> None:
        self._eval_cache.clear()
        self.sensitivity.model_changed()
        self.request_hijacks()
        self.request_layers()

    def _on_config(self) -> None:
        self._activations_timer.stop()  # they would be for the old config
        self.sensitivity.config_changed()
        self.request_hijacks()
        self.request_layers()

    def _hijacked_configs(self) -> tuple:
        """The quantized configs compared now whose ranges the hint checks (none for INT8)."""
        s = self.state
        if int8_on(s):
            return ()
        return tuple(c for c in (s.ref_config, s.other_config) if c is not None)

    def request_hijacks(self) -> None:
        """The range hijacks of the compared configs (engine.quant.hijack.hijack_warnings, the
        CLI's warning) on the analysis worker: tens of milliseconds on a full model."""
        handle, configs = self.controller.handle, self._hijacked_configs()
        if handle is None or not configs:
            self.state.set_hijacks((), ())
            return
        pause = self.controller.yield_to_detection

        def job(ctx: JobContext) -> Any:
            from squeezelens.engine.quant.hijack import hijack_warnings

            pause(ctx)
            return handle, configs, hijack_warnings(handle.detector.float_weights, configs)

        self.layers_runner.submit("hijacks", job, "hijacks", on_done=self._hijacks_found)

    def _hijacks_found(self, value: Any) -> None:
        handle, configs, warnings = value
        if handle is self.controller.handle and configs == self._hijacked_configs():
            self.state.set_hijacks(tuple(w.hijack for w in warnings),
                                   tuple(w.text() for w in warnings))  # fmt: skip

    def _on_layer(self, name: str) -> None:
        """Another layer chosen: its histogram (not again for the one just computed)."""
        if name != self._histogram_of:
            self.channel = None
            self.request_layers()

    @property
    def histogram_layer(self) -> str:
        """The layer whose histogram (and grid ends) was computed last."""
        return self._histogram_of

    def set_channel(self, channel: int) -> None:
        """Show channel ``channel``'s histogram and levels (per-channel grids)."""
        if channel != self.channel:
            self.channel = channel
            self.request_layers()

    # ------------------------------------------------------------ layer table
    def request_layers(self) -> None:
        """Per-layer table and the selected layer's histogram for the current config."""
        handle = self.controller.handle
        if handle is None or not self.layers_active or self.controller.remedies.pending:
            return  # a remedies job computes the weights first (then quant_changed again)
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
            pause(ctx)
            clipping = layer_clipping(det.float_weights, qw, config, [r.name for r in rows])
            name = layer or first_quantized(rows, report)
            pause(ctx)
            hist, shown, ends = layer_histogram(det.float_weights, qw, config, name, channel)
            return rows, report, clipping, name, hist, shown, ends

        self.layers_runner.submit("layers", job, "layers", on_done=self._layers_ready)

    def _layers_ready(self, value: Any) -> None:
        rows, report, clipping, name, hist, shown, ends = value
        self.report, self.clipping, self.grid_ends = report, clipping, ends
        self._histogram_of = name
        self.state.set_layer_rows(rows)
        if not self.state.selected_layer and report is not None:
            self.state.select_layer(name)  # keep the first quantized layer once chosen
        self._pending_histogram = (hist, shown)
        self._histogram_timer.start()

    def _show_histogram(self) -> None:
        self.state.set_histogram(*self._pending_histogram)

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
        if self.controller.remedies.pending:
            return
        if self.state.other_config is None or int8_on(self.state):  # INT8: its own comparison
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
        """Evaluate the reference and the other model on the dataset and explain their
        detection errors (background; :mod:`gui.eval_jobs`)."""
        handle, dataset = self.controller.handle, self.state.dataset
        if handle is None or dataset is None:
            self.state.error.emit("Open a checkpoint and a KITTI folder first")
            return
        if not dataset.has_labels:
            self.state.error.emit(
                f"{dataset.root}: cannot evaluate, the folder has no KITTI labels"
            )
            return
        s, protocol = self.state, self.state.protocol
        int8 = int8_on(s)
        jobs = [("ref", s.ref_config, False, s.ref_label),
                ("other", s.other_config, int8, s.other_label)]  # fmt: skip
        if s.ref_config is not None:  # A vs B: the float baseline too (exports record it)
            jobs.append(("float", None, False, "float"))
        if int8 and handle.int8 is None:
            self.state.error.emit("The INT8 model is still converting; evaluate when it is ready")
            return
        tag = result_tag(s, eval_key(s, protocol), protocol)
        run = evaluations(handle, dataset, jobs, protocol, self._eval_cache,
                          self.controller.calibration)  # fmt: skip
        self.controller.long.submit(lambda ctx: (run(ctx), tag), "evaluate",
                                    f"Evaluating on {len(dataset)} images",
                                    on_done=self._evaluated)  # fmt: skip

    def _evaluated(self, value: Any) -> None:
        (out, errors), tag = value
        float_result = out.get("float", out["ref"] if tag.ref_config == "float" else None)
        self.state.set_evaluation(EvalState(out["ref"], out["other"], tag.ref_label,
                                            tag.other_label, tag, float_result, errors))  # fmt: skip
        ref, other = out["ref"].map["r11"]["all"], out["other"].map["r11"]["all"]
        self.state.message.emit(
            f"mAP R11: {tag.ref_label} {ref:.4f}, {tag.other_label} {other:.4f} "
            f"({other - ref:+.4f}) · {tag.scope()}"
        )

    # ------------------------------------------------------------------ sweep
    def sweep(self, configs: list, repeats: int = 1, protocol: str = "official",
              tag: ResultTag | None = None) -> None:  # fmt: skip
        """mAP vs bits for the given configs, scored with ``protocol``; points appear as they
        finish.  ``tag``: the settings the sweep panel describes (kept with the points)."""
        handle, dataset = self.controller.handle, self.state.dataset
        if handle is None or dataset is None or not dataset.has_labels:
            self.state.error.emit("A sweep needs a checkpoint and a labelled KITTI folder")
            return
        from squeezelens.engine.sweep import sweep_points

        points = sweep_points(configs, repeats=repeats)
        job = self._sweep_job(handle, dataset, points, protocol)
        choice = self.controller.compute.choice
        tag = tag and dataclasses.replace(tag, compute=choice.describe())
        if self.controller.long.submit(job, "sweep", f"Sweeping {len(points)} points ({protocol}) "
                                       f"{choice.place()}",
                                       on_done=self._swept, on_partial=self._sweep_point):  # fmt: skip
            self.state.set_sweep([], running=True, tag=tag)

    def _sweep_job(self, handle: Any, dataset: Any, points: list, protocol: str):
        """The job body: run_sweep into this checkpoint's, folder's and protocol's folder."""
        from squeezelens.engine.sweep import run_sweep, sweep_meta

        det = handle.detector
        sha = det.checkpoint.sha256 if det.checkpoint else "random"
        out_dir = sweep_dir(self.sweep_root, sha, str(dataset.root), dataset.split, protocol)
        activations = any(p.quant is not None and p.quant.activation_bits for p in points)
        calibrate = self.controller.calibration if activations else None
        compute, choice = self.controller.compute, self.controller.compute.choice

        def job(ctx: JobContext) -> Any:
            detect = compute.source(choice, det, dataset, ctx, "Sweep")

            def progress(done: int, total: int, row: dict | None) -> None:
                if row is not None:
                    ctx.emit_partial(row)
                if detect is None:  # on Ray: images done, from the workers
                    ctx.progress(done, total)

            calibration = calibrate() if calibrate else None
            if calibration is not None:
                handle.calibrate(calibration)
            meta = sweep_meta(det, dataset, protocol, calibration)
            keys = {p.key for p in points}
            rows = run_sweep(det, dataset, points, out_dir, meta, protocol=protocol,
                             progress=progress, cancel=ctx.token, detect=detect)  # fmt: skip
            return [r for r in rows if r["key"] in keys]

        return job

    def _sweep_point(self, row: dict) -> None:
        self.state.set_sweep([*self.state.sweep.points, row], running=True)

    def _swept(self, rows: list) -> None:
        self.state.set_sweep(rows, running=False)
        self.state.message.emit(f"Sweep finished: {len(rows)} points")

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
