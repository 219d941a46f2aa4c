"""SqueezeLens' desktop tool (PySide6 + pyqtgraph): a thin client of the engine.

Data flow of a bits-slider move (details in docs/architecture.md)::

    QuantPanel (debounced while dragging) -> AppState.set_quant -> quant_changed
    -> Controller.request_detection -> model runner: submit("detect", job, on_done=_detected)
    -> worker thread: ModelHandle.detect -> Detector.forward(prepared image, config)
    -> runner delivers on the UI thread unless stale (generation) -> config key check
    -> AppState.set_result -> Canvas / ImageSummary / ImageListPanel redraw

Modules: ``state`` (AppState, the one source of truth; fields change only through
setters that emit), ``workers`` (LatestJobRunner: one thread owns the detector;
prioritised latest-wins lanes; results go to the handlers bound at submit time;
higher lanes run at yield points inside long jobs), ``long_jobs`` (the long lane:
one evaluation, sweep, sensitivity or INT8 conversion at a time, never pre-empted
silently), ``controller`` (model, dataset, image, detection, INT8) with
``model_handle`` (the loaded detector and its worker-side caches) and
``split_scan`` (the browser's per-image counts), ``facts`` (worker-side display
facts), ``analysis`` (layer table, histograms, activations, evaluation, sweeps,
sensitivity, parameter export), ``canvas/``, ``panels/``, ``export`` and
``export_dialogs`` (the Export… menu), ``session`` (the validated file format) and
``session_restore`` (reopening one), ``command`` (Copy as command), ``startup``
(what opens first), ``settings``, ``actions``, ``heap`` (collections kept off the
UI thread's way), ``app`` (entry point) and ``screenshot`` (``--screenshot`` mode).
Widgets never compute: every number shown comes from an engine call made on the
worker.

Departures from the design sketch, and why: the job plumbing is split into
``controller`` and ``analysis`` so ``main_window`` only assembles; the runner
has lanes (load > detect > activations > export > long > scan) instead of one
slot, so an evaluation or the browser's background scan never delays a slider
update by more than one image decode or forward pass; a second runner reads datasets and
images so the list fills while TensorFlow loads; a third computes the layer table and
histograms (numpy only) once the detection is done, pausing whenever a new one starts.
"""
