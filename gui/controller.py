"""Controller: turns user requests into engine jobs and job results into AppState.

Three workers: ``model`` owns the detector (one thread, prioritised lanes:
load > detect > activations > export > long > scan), ``io`` reads
datasets and images and recounts the browser's rows when the score threshold
moves, so the image list fills while TensorFlow is still loading and the UI
thread never loops over a whole split, and ``analysis`` computes the layer table
and histograms (numpy only, no TensorFlow), so a slider release never waits for
them: they wait for the detection instead (:meth:`Controller.yield_to_detection`).
The ``long`` lane runs one job at a time (:class:`gui.long_jobs.LongJobs`).  Every result is
checked twice before it touches the state: its generation must still be the
lane's latest, and the configuration it was computed for must still be the
current one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from squeezelens.engine.compare import compare_detections
from squeezelens.engine.types import Detections
from squeezelens.gui import heap
from squeezelens.gui.facts import model_info
from squeezelens.gui.long_jobs import LongJobs
from squeezelens.gui.split_scan import SplitScan
from squeezelens.gui.state import AppState, ImageResult
from squeezelens.gui.workers import JobContext, JobResult, LatestJobRunner

MODEL_LANES = ("load", "detect", "activations", "export", "long", "scan")
IO_LANES = ("dataset", "image", "recount")
ANALYSIS_LANES = ("layers", "warm")
# The UI thread (and Qt's raster threads, which it waits on while painting) must win
# the CPU over the model's threads at once.  Measured during an evaluation, the
# longest UI stall was 43-65 ms at nice 4, 32-43 ms at nice 10 and 24-39 ms at
# nice 17, with the same evaluation time; 10 keeps the model from being starved by
# other programs on a busy desktop.
WORKER_NICE = 10
ANALYSIS_NICE = WORKER_NICE + 2  # the layer table gives way to detections and the scan
SCAN_DELAY_MS = 300  # after a config change the split's scan waits for the user to pause


@dataclass
class ModelHandle:
    """The loaded detector and worker-only caches that live as long as it does."""

    detector: Any
    generation: int
    float_dets: dict[str, Detections] = field(default_factory=dict)
    int8: Any = None
    prepared: tuple = ()  # (path, image, network input, scale) of the last image shown
    calibrated_on: tuple[str, ...] = ()  # the images the activation ranges come from

    def calibrate(self, calibration: Any) -> None:
        """Calibrate activation ranges on ``calibration`` (a CalibrationSet) unless done."""
        if self.calibrated_on != calibration.paths:
            self.detector.calibrate_activations(calibration.images())
            self.calibrated_on = calibration.paths

    def network_input(
        self, path: str, image: Any, keep: bool = True
    ) -> tuple[Any, tuple[float, float]]:
        """The preprocessed input of ``image``; the shown one (``keep``) is prepared once."""
        if self.prepared and self.prepared[0] == path and self.prepared[1] is image:
            return self.prepared[2], self.prepared[3]
        x, scale = self.detector.preprocess(image)
        if keep:
            self.prepared = (path, image, x, scale)
        return x, scale


class Controller(SplitScan, QObject):
    """Owns the workers and the detector; the only writer of AppState besides setters."""

    model_loaded = Signal()
    failed = Signal(str)  # label of a job that failed (after the error was shown)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model_runner = LatestJobRunner(
            MODEL_LANES, "squeezelens-model", self, nice=WORKER_NICE
        )
        self.io_runner = LatestJobRunner(IO_LANES, "squeezelens-io", self, nice=WORKER_NICE)
        self.analysis_runner = LatestJobRunner(
            ANALYSIS_LANES, "squeezelens-analysis", self, nice=ANALYSIS_NICE
        )
        self.runners = (self.model_runner, self.io_runner, self.analysis_runner)
        self.handle: ModelHandle | None = None
        self._model_gen = 0
        self._requested_index = -1
        self._int8_pending = -1
        self._pairs: dict[int, tuple[Detections, Detections]] = {}
        self._pairs_key: tuple = ()
        self._results: dict[str, Callable[[JobResult], None]] = {}
        self.long = LongJobs(state, self.model_runner, self)
        self.long.stopped.connect(self._on_long_stopped)
        for runner in self.runners:
            runner.finished.connect(self._on_finished)
            runner.partial.connect(self._on_partial)
            runner.failed.connect(self._on_failed)
            runner.busy_changed.connect(self._on_busy)
        self.model_runner.lanes_changed.connect(self._update_activity)
        self._recount = QTimer(self, singleShot=True, interval=150)
        self._recount.timeout.connect(self._recount_all)
        self._scan_timer = QTimer(self, singleShot=True, interval=SCAN_DELAY_MS)
        self._scan_timer.timeout.connect(self._restart_scan)
        self.idle_timers = [self._scan_timer, self._recount]  # delayed work still to come
        state.quant_changed.connect(self._on_config_changed)
        state.threshold_changed.connect(self._on_threshold)

    # ------------------------------------------------------------- lifecycle
    def shutdown(self, timeout: float = 1.0) -> bool:
        """Cancel every job and stop both workers (bounded by ``timeout`` seconds)."""
        self._scan_timer.stop()
        for runner in self.runners:
            runner.cancel()
        ok_io = self.io_runner.shutdown(timeout / 8)
        ok_analysis = self.analysis_runner.shutdown(timeout / 8)
        return self.model_runner.shutdown(timeout * 3 / 4) and ok_io and ok_analysis

    def is_idle(self) -> bool:
        """No job pending or running on any worker, and no delayed scan or recount waiting."""
        return not (
            any(r.is_busy() for r in self.runners) or any(t.isActive() for t in self.idle_timers)
        )

    def yield_to_detection(self, ctx: JobContext) -> None:
        """Called by analysis jobs between their steps: wait while the model worker loads
        or detects (the boxes of a slider release come first), then go on unless cancelled."""
        while self.model_runner.is_busy("detect") or self.model_runner.is_busy("load"):
            ctx.cancel.raise_if_cancelled()
            time.sleep(0.004)
        ctx.checkpoint()

    def _on_busy(self, _busy: bool) -> None:
        self.state.set_busy(any(r.is_busy() for r in self.runners))

    def _update_activity(self) -> None:
        """The quant panel's indicator: this image's result; the list's: the scan."""
        runner = self.model_runner
        computing = runner.is_busy("detect") or self._int8_pending >= 0
        self.state.set_activity(computing, runner.is_busy("scan"))

    # ------------------------------------------------------------ dispatching
    def _runner_of(self, lane: str) -> LatestJobRunner:
        if lane in MODEL_LANES:
            return self.model_runner
        return self.io_runner if lane in IO_LANES else self.analysis_runner

    def _route(self, result: JobResult, kind: str) -> None:
        runner = self._runner_of(result.lane)
        if kind != "failed" and not runner.is_current(result.lane, result.generation):
            return
        handler = getattr(self, f"_{kind}_{result.label}", None)
        if handler is not None:
            handler(result)

    def _on_finished(self, result: JobResult) -> None:
        self._route(result, "done")

    def _on_partial(self, result: JobResult) -> None:
        self._route(result, "partial")

    def _on_failed(self, result: JobResult) -> None:
        if not self._runner_of(result.lane).is_current(result.lane, result.generation):
            return
        if result.label == "load":
            self.state.loading.emit("")
        self.state.error.emit(result.error)
        self.failed.emit(result.label)

    # ------------------------------------------------------------------ model
    def open_checkpoint(self, path: str | os.PathLike) -> None:
        """Load a checkpoint in the background; the old model stays until it succeeds."""
        path = str(path)
        self.state.loading.emit(f"Loading TensorFlow and {Path(path).name}…")

        def load(ctx: JobContext) -> Any:
            from squeezelens.engine.detector import Detector

            detector = Detector.from_checkpoint(path)
            return detector, model_info(detector)

        self.model_runner.submit("load", load, "load")

    def use_detector(self, detector: Any) -> None:
        """Adopt an already built Detector (tests, embedding); its info is read on the worker."""
        self.state.loading.emit("Preparing model…")

        def adopt(ctx: JobContext) -> Any:
            return detector, model_info(detector)

        self.model_runner.submit("load", adopt, "load")

    def _done_load(self, result: JobResult) -> None:
        detector, info = result.value
        replaced = self.handle is not None
        self._model_gen += 1
        self.handle = ModelHandle(detector, self._model_gen)
        self._pairs, self._pairs_key = {}, ()
        # full collections of these objects would otherwise stall the UI; the replaced
        # model's are freed first (on this thread: see gui.heap)
        heap.settle(replaced)
        self.state.loading.emit("")
        self.state.set_model(info)
        self.state.message.emit(f"Loaded {Path(info.checkpoint_path).name}: {info.summary}")
        self.model_loaded.emit()
        self.refresh()
        self.analysis_runner.submit("warm", lambda ctx: self._warm_up(), "warm")

    @staticmethod
    def _warm_up() -> bool:
        """Compile the quantization kernels while the user looks at the float boxes."""
        from squeezelens.engine.quant.kernels import warm_up

        return warm_up()

    # ---------------------------------------------------------------- dataset
    def open_dataset(self, root: str | os.PathLike, split: str = "val") -> None:
        """Open a KITTI folder (or a plain image folder) in the background."""
        root = str(root)

        def load(ctx: JobContext) -> Any:
            from squeezelens.engine.data.kitti import available_splits, open_dataset

            dataset = open_dataset(root, split)
            return dataset, () if dataset.split == "images" else tuple(
                available_splits(dataset.root)
            )

        self.state.message.emit(f"Opening {root}…")
        self.io_runner.submit("dataset", load, "dataset")

    def calibration(self) -> Any:
        """The calibration set of the open folder, by the one rule of engine.calibration (its
        train split; the bundled sample's for a plain image folder).  Lists files: call it on
        a worker."""
        from squeezelens.engine.calibration import default_calibration

        dataset = self.state.dataset
        kitti = dataset is not None and dataset.split != "images"
        return default_calibration(dataset.root if kitti else None)

    def _done_dataset(self, result: JobResult) -> None:
        dataset, splits = result.value
        self._pairs, self._pairs_key = {}, ()
        if self.handle is not None:  # calibrated on another folder's train split
            self.handle.calibrated_on, self.handle.int8 = (), None
        self.state.set_dataset(dataset, splits)
        kind = "images" if dataset.split == "images" else f"KITTI {dataset.split}"
        self.state.message.emit(f"Opened {dataset.root} ({kind}, {len(dataset)} images)")
        if len(dataset):
            self.go_to(0)
        self._restart_scan()

    # ----------------------------------------------------------------- images
    def go_to(self, index: int) -> None:
        """Show image ``index`` of the dataset (read in the background)."""
        dataset = self.state.dataset
        if dataset is None or not len(dataset):
            return
        index = max(0, min(int(index), len(dataset) - 1))
        self._requested_index = index
        path = dataset.records[index].path

        def read(ctx: JobContext) -> Any:
            from squeezelens.engine.data.images import read_image_bgr

            return index, read_image_bgr(path)

        self.io_runner.submit("image", read, "image")

    def step(self, delta: int) -> None:
        """Previous (-1) / next (+1) image, relative to the last requested one."""
        base = self._requested_index if self._requested_index >= 0 else self.state.index
        self.go_to(base + delta)

    def _done_image(self, result: JobResult) -> None:
        index, image = result.value
        self.state.set_image(index, image)
        self.request_detection()

    # -------------------------------------------------------------- detection
    def _config_key(self) -> tuple:
        s = self.state
        return (self._model_gen, s.ref_config, s.other_config, s.int8 and s.mode == "float")

    def request_detection(self) -> None:
        """Detect the current image with both configurations (latest request wins)."""
        handle, record = self.handle, self.state.record
        if handle is None or record is None or self.state.image is None:
            return
        key, index, path = self._config_key(), self.state.index, record.path
        ref_cfg, other_cfg, int8 = key[1], key[2], key[3]
        records, image = self.state.dataset.records, self.state.image
        if int8 and handle.int8 is None:
            self.convert_int8()
            return

        def detect(ctx: JobContext) -> Any:  # the image shown is already decoded: no re-read
            ref = self._detect(handle, path, ref_cfg, records, image=image)
            ctx.checkpoint()
            other = self._detect(handle, path, other_cfg, records, int8=int8, image=image)
            return key, index, ref, other

        self.model_runner.submit("detect", detect, "detect")

    def _detect(self, handle: ModelHandle, path: str, config: Any, records: Any,
                int8: bool = False, image: Any = None, keep: bool = True) -> Detections:  # fmt: skip
        """One detection on the worker thread (float results cached per path).

        With ``image`` (the decoded file at ``path``) its network input is prepared once
        and, with ``keep`` (the image shown), reused: a slider release costs no PNG decode
        or resize.
        """
        from squeezelens.engine.evaluate import has_stages

        det = handle.detector
        if not self._needs_image(handle, path, config, int8):
            return handle.float_dets[path]
        staged = image is not None and has_stages(det)
        if int8:
            if not staged:
                return handle.int8.detect(path)
            x, scale = handle.network_input(path, image, keep)
            return handle.int8.decode(handle.int8.forward(x[None])[0], scale)
        if getattr(config, "activation_bits", None):
            handle.calibrate(self.calibration())
        if staged:
            x, scale = handle.network_input(path, image, keep)
            dets = det.decode(det.forward(x[None], config)[0], scale)
        else:
            dets = det.detect(path, config)
        if config is None:
            handle.float_dets[path] = dets
        return dets

    @staticmethod
    def _needs_image(handle: ModelHandle, path: str, config: Any, int8: bool) -> bool:
        return int8 or config is not None or path not in handle.float_dets

    def convert_int8(self) -> None:
        """Convert the model to TFLite INT8 once (cached on disk by the engine), then re-detect."""
        handle, dataset = self.handle, self.state.dataset
        if handle is None or dataset is None or self._int8_pending == handle.generation:
            return
        self._int8_pending = handle.generation
        calibration = self.calibration

        def convert(ctx: JobContext) -> Any:
            from squeezelens.engine.int8 import Int8Detector

            images = calibration().images()
            # in a child process: TensorFlow's graph building beside the UI thread crashed
            return handle, Int8Detector.from_detector(handle.detector, images, progress=ctx.progress,
                                                      cancel=ctx.token, isolated=True)  # fmt: skip

        text = "Converting to TFLite INT8 (calibrating on the train split)"
        if not self.long.submit(convert, "int8", text):  # another long job runs: no INT8 now
            self._int8_pending = -1
            self.state.set_int8(False)

    def _done_int8(self, result: JobResult) -> None:
        handle, int8 = result.value
        self._int8_pending = -1
        handle.int8 = int8
        self._update_activity()
        if handle is self.handle:
            self.state.message.emit(f"INT8 model ready: {int8.summary()}")
            self.refresh()

    def _on_long_stopped(self, label: str) -> None:
        """A cancelled or failed INT8 conversion: back to float vs quantized, retry later."""
        if label == "int8":
            self._int8_pending = -1
            self.state.set_int8(False)
            self._update_activity()

    def _done_detect(self, result: JobResult) -> None:
        key, index, ref, other = result.value
        if key != self._config_key():
            return
        self._store_pair(key, index, ref, other)
        if index == self.state.index:
            self._publish_result(index, ref, other)

    def _publish_result(self, index: int, ref: Detections, other: Detections) -> None:
        t = self.state.threshold
        comparison = compare_detections(ref.above(t), other.above(t))
        self.state.set_result(ImageResult(index, ref, other, comparison, t))

    def _on_config_changed(self) -> None:
        """This image's boxes at once; the split's scan once the user pauses (a burst of
        releases costs no stale scan steps in front of the next detection)."""
        self.request_detection()
        self.model_runner.cancel("scan")  # it was scanning for the old config
        self._reset_pairs(self._config_key())
        self._scan_timer.start()

    def refresh(self) -> None:
        """Recompute everything that depends on the model, image and configs."""
        self.request_detection()
        self._restart_scan()
