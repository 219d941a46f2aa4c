"""Controller: turns user requests into engine jobs and job results into AppState.

Three workers: ``model`` owns the detector (one thread, prioritised lanes:
load > detect > activations > export > long > scan), ``io`` reads
datasets and images and recounts the browser's rows when the score threshold
moves, so the image list fills while TensorFlow is still loading and the UI
thread never loops over a whole split, and ``analysis`` computes the layer table,
histograms and range hijacks (numpy only, no TensorFlow), so a slider release never
waits for them: they wait for the detection instead
(:meth:`Controller.yield_to_detection`).
The ``long`` lane runs one job at a time (:class:`gui.long_jobs.LongJobs`).  Every result is
checked twice before it touches the state: its generation must still be the
lane's latest, and the configuration it was computed for must still be the
current one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from squeezelens.engine.compare import compare_detections
from squeezelens.engine.types import Detections
from squeezelens.gui import heap
from squeezelens.gui.compute_pool import RayCompute
from squeezelens.gui.facts import model_info
from squeezelens.gui.image_facts import FactsJobs, ImageFacts, explain_image, with_facts
from squeezelens.gui.long_jobs import LongJobs
from squeezelens.gui.model_handle import ConfigKey, ModelHandle
from squeezelens.gui.provenance import int8_on
from squeezelens.gui.remedy_jobs import RemedyGate
from squeezelens.gui.split_scan import SplitScan
from squeezelens.gui.state import AppState, ImageResult, ModelInfo
from squeezelens.gui.workers import WORKER_NICE, JobContext, JobResult, LatestJobRunner

if TYPE_CHECKING:
    from squeezelens.engine.calibration import CalibrationSet
    from squeezelens.engine.data.kitti import Dataset
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.int8 import Int8Detector

MODEL_LANES = ("load", "detect", "activations", "head", "export", "long", "scan")
IO_LANES = ("dataset", "image", "recount", "front")  # front: a search read from disk
ANALYSIS_LANES = ("reasons", "layers", "hijacks", "warm")
ANALYSIS_NICE = WORKER_NICE + 2  # the layer table gives way to detections and the scan


class Controller(QObject):
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
        self.long = LongJobs(state, self.model_runner, self)
        self.compute = RayCompute()  # where sweeps and sensitivity runs compute
        self.long.stopped.connect(self._on_long_stopped)
        self.remedies = RemedyGate(self)
        self.scan = SplitScan(state, self.model_runner, self.io_runner,
                              lambda: (self.handle, self.config_key()), self.calibration, self)  # fmt: skip
        for runner in self.runners:
            runner.failed.connect(self._on_failed)
            runner.busy_changed.connect(self._on_busy)
        self.model_runner.lanes_changed.connect(self._update_activity)
        self.idle_timers = list(self.scan.timers)  # delayed work still to come
        self.facts = FactsJobs(state, self.analysis_runner, self)
        state.quant_changed.connect(self._on_config_changed)
        state.threshold_changed.connect(self._on_threshold)
        state.protocol_changed.connect(self._republish)

    # ------------------------------------------------------------- lifecycle
    def shutdown(self, timeout: float = 1.0) -> bool:
        """Cancel every job and stop both workers (bounded by ``timeout`` seconds)."""
        self.scan.stop()
        for runner in self.runners:
            runner.cancel()
        ok_io = self.io_runner.shutdown(timeout / 8)
        ok_analysis = self.analysis_runner.shutdown(timeout / 8)
        ok_model = self.model_runner.shutdown(timeout * 3 / 4)
        self.compute.shutdown()  # a Ray pool kept between jobs
        return ok_model and ok_io and ok_analysis

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

    def _on_failed(self, result: JobResult) -> None:
        """Every runner's failures: the error is shown (a stale job's is not)."""
        runner = next(r for r in self.runners if result.lane in r.lanes)
        if not runner.is_current(result.lane, result.generation):
            return
        if result.label == "load":
            self.state.set_loading("")
        self.state.error.emit(result.error)
        self.failed.emit(result.label)

    # ------------------------------------------------------------------ model
    def open_checkpoint(self, path: str | os.PathLike) -> None:
        """Load a checkpoint in the background; the old model stays until it succeeds."""
        path = str(path)
        self.state.set_loading(f"Loading TensorFlow and {Path(path).name}…")

        def load(ctx: JobContext) -> tuple[Detector, ModelInfo]:
            from squeezelens.engine.detector import Detector

            with heap.loading():  # no collection of the half-built heap on any thread
                detector = Detector.from_checkpoint(path)
                detector.trace_forward()  # now, not beside the first boxes' painting
                return detector, model_info(detector)

        self.model_runner.submit("load", load, "load", on_done=self._loaded)

    def use_detector(self, detector: Detector) -> None:
        """Adopt an already built Detector (tests, embedding); its info is read on the worker."""
        self.state.set_loading("Preparing model…")

        def adopt(ctx: JobContext) -> tuple[Detector, ModelInfo]:
            return detector, model_info(detector)

        self.model_runner.submit("load", adopt, "load", on_done=self._loaded)

    def _loaded(self, value: tuple[Detector, ModelInfo]) -> None:
        detector, info = value
        replaced = self.handle is not None
        self._model_gen += 1
        self.handle = ModelHandle(detector, self._model_gen)
        # full collections of these objects would otherwise stall the UI; the replaced
        # model's are freed first (on this thread: see gui.heap)
        heap.settle(replaced)
        self.state.set_loading("")
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
    def open_dataset(self, root: str | os.PathLike, split: str = "val", *,
                     remembered: bool = False) -> None:  # fmt: skip
        """Open a KITTI folder (or a plain image folder) in the background.

        ``remembered``: ``split`` is a remembered preference, not the user's request now; a
        folder without it opens its val split (else its first) and a note says so."""
        root = str(root)

        def load(ctx: JobContext) -> tuple[Dataset, tuple[str, ...], str]:
            from squeezelens.engine.data.kitti import available_splits, open_dataset

            splits, chosen, note = tuple(available_splits(root)), split, ""
            if remembered and splits and split not in splits:
                chosen = "val" if "val" in splits else splits[0]
                note = f"{root} has no split '{split}' any more: opened '{chosen}' instead"
            return open_dataset(root, chosen), splits, note

        self.state.message.emit(f"Opening {root}…")
        self.io_runner.submit("dataset", load, "dataset", on_done=self._dataset_opened)

    def calibration(self) -> CalibrationSet:
        """The calibration set of the open folder, by the one rule of engine.calibration (its
        train split; the bundled sample's for a plain image folder).  Lists files: call it on
        a worker."""
        from squeezelens.engine.calibration import default_calibration

        dataset = self.state.dataset
        kitti = dataset is not None and dataset.split != "images"
        return default_calibration(dataset.root if kitti else None)

    def _dataset_opened(self, value: tuple[Dataset, tuple[str, ...], str]) -> None:
        dataset, splits, note = value
        if self.handle is not None:  # calibrated on another folder's train split
            self.handle.forget_calibration()
        self.state.set_dataset(dataset, splits)
        kind = "images" if dataset.split == "images" else f"KITTI {dataset.split}"
        self.state.message.emit(f"Opened {dataset.root} ({kind}, {len(dataset)} images)")
        if note:
            self.state.notice.emit(note)
        if len(dataset):
            self.go_to(0)
        self.scan.restart()

    # ----------------------------------------------------------------- images
    def go_to(self, index: int) -> None:
        """Show image ``index`` of the dataset (read in the background)."""
        dataset = self.state.dataset
        if dataset is None or not len(dataset):
            return
        index = max(0, min(int(index), len(dataset) - 1))
        self._requested_index = index
        path = dataset.records[index].path

        def read(ctx: JobContext) -> tuple[int, Any]:
            from squeezelens.engine.data.images import read_image_bgr

            return index, read_image_bgr(path)

        self.io_runner.submit("image", read, "image", on_done=self._image_read)

    def step(self, delta: int) -> None:
        """Previous (-1) / next (+1) image, relative to the last requested one."""
        base = self._requested_index if self._requested_index >= 0 else self.state.index
        self.go_to(base + delta)

    def _image_read(self, value: tuple[int, Any]) -> None:
        index, image = value
        self.state.set_image(index, image)
        self.request_detection()

    # -------------------------------------------------------------- detection
    def config_key(self) -> ConfigKey:
        """The model load and the configs the shown boxes (and the scan) are computed for."""
        s = self.state
        return ConfigKey(self._model_gen, s.ref_config, s.other_config, int8_on(s))

    def request_detection(self) -> None:
        """Detect the current image with both configurations (latest request wins)."""
        if self._detectable() and self.remedies.admit():  # else: once its remedies are ready
            self._detect()

    def _detectable(self) -> bool:
        return not (self.handle is None or self.state.record is None or self.state.image is None)

    def _detect(self) -> None:
        handle, record = self.handle, self.state.record
        key, index, path, image = self.config_key(), self.state.index, record.path, self.state.image
        if key.int8 and handle.int8 is None:
            self.convert_int8()
            return
        calibration, threshold, protocol = (
            self.calibration,
            self.state.threshold,
            self.state.protocol,
        )

        def detect(ctx: JobContext) -> tuple[ConfigKey, int, Detections, Detections, ImageFacts]:
            # the image shown is already decoded: no re-read
            ref = handle.detect(path, key.ref, calibration, image=image)
            ctx.checkpoint()
            other = handle.detect(path, key.other, calibration, int8=key.int8, image=image)
            return key, index, ref, other, explain_image(ref, other, threshold, record, protocol)

        self.model_runner.submit("detect", detect, "detect", on_done=self._detected)

    def _detected(self, value: tuple[ConfigKey, int, Detections, Detections, ImageFacts]) -> None:
        key, index, ref, other, facts = value
        if key != self.config_key():
            return
        self.scan.store(key, index, ref, other)
        if index == self.state.index:
            self._publish_result(index, ref, other, facts)

    def _publish_result(self, index: int, ref: Detections, other: Detections,
                        facts: ImageFacts | None = None) -> None:  # fmt: skip
        """The image's boxes with their reasons: those computed with the detection when the
        threshold and protocol are still theirs, else at once without and then with them."""
        s = self.state
        if facts is not None and (facts.threshold, facts.protocol) == (s.threshold, s.protocol):
            s.set_result(with_facts(index, ref, other, facts))
            return
        t = s.threshold
        a, b = ref.above(t), other.above(t)
        s.set_result(ImageResult(index, ref, other, compare_detections(a, b), t))
        self.facts.request(s.result)

    def _on_threshold(self, _value: float) -> None:
        """The current image follows at once; the browser's counts after a short pause."""
        self._republish()
        self.scan.recount_later()

    def _republish(self) -> None:
        """The current image's boxes again, compared at the threshold (and explained with the
        protocol) chosen now."""
        result = self.state.result
        if result is not None:
            self._publish_result(result.index, result.ref, result.other)

    def _on_config_changed(self) -> None:
        """This image's boxes at once; the split's scan once the user pauses.  Remedies that
        need calibration images and are not cached go first, as a long job (the previous
        boxes stay shown meanwhile: see gui.remedy_jobs)."""
        if not self.remedies.admit():
            self.scan.stop()
            self.model_runner.cancel("scan")
            return
        if self._detectable():  # admitted just above: not asked twice per slider release
            self._detect()
        self.scan.config_changed()

    def refresh(self) -> None:
        """Recompute everything that depends on the model, image and configs."""
        self.request_detection()
        self.scan.restart()

    # ------------------------------------------------------------------- INT8
    def convert_int8(self) -> None:
        """Convert the model to TFLite INT8 once (cached on disk by the engine), then re-detect."""
        handle, dataset = self.handle, self.state.dataset
        if handle is None or dataset is None or self._int8_pending == handle.generation:
            return
        self._int8_pending = handle.generation
        calibration = self.calibration

        def convert(ctx: JobContext) -> tuple[ModelHandle, Int8Detector]:
            from squeezelens.engine.int8 import Int8Detector

            images = calibration().images()
            # in a child process: TensorFlow's graph building beside the UI thread crashed
            return handle, Int8Detector.from_detector(handle.detector, images, progress=ctx.progress,
                                                      cancel=ctx.token, isolated=True)  # fmt: skip

        text = "Converting to TFLite INT8 (calibrating on the train split)"
        if not self.long.submit(convert, "int8", text, on_done=self._int8_ready):
            self._int8_pending = -1  # another long job runs: no INT8 now
            self.state.set_int8(False)

    def _int8_ready(self, value: tuple[ModelHandle, Int8Detector]) -> None:
        handle, int8 = value
        self._int8_pending = -1
        handle.int8 = int8
        self._update_activity()
        if handle is self.handle:
            self.state.message.emit(f"INT8 model ready: {int8.summary()}")
            self.refresh()

    def _on_long_stopped(self, label: str, _why: str) -> None:
        """A cancelled or failed INT8 conversion: back to float vs quantized, retry later."""
        if label == "int8":
            self._int8_pending = -1
            self.state.set_int8(False)
            self._update_activity()
