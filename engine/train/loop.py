"""Training SqueezeDet on KITTI, with the original optimiser and schedule.

SGD with momentum 0.9 exactly as TF1's MomentumOptimizer (``acc = 0.9 acc + g;
w -= lr acc``; so a learning-rate step does not rescale the velocity as Keras'
SGD would), the learning rate ``0.01 * 0.5 ** floor(step / 10000)`` and every
gradient clipped to norm 1.0 on its own (``clip_by_norm`` per tensor).  The step
is one ``tf.function`` with a fixed input signature (any batch size, the
learning rate a tensor): it is traced once.

A run lives in ``out_dir`` (see :mod:`engine.train.state`).  Running the same
command again continues after the last saved step; a GPU is used when
TensorFlow sees one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from squeezelens.engine.anchors import anchor_grid
from squeezelens.engine.errors import Cancelled, InputError
from squeezelens.engine.jobs import CancelToken
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.model.squeezedet import DROPOUT
from squeezelens.engine.tf_runtime import import_tf, op_determinism
from squeezelens.engine.train.config import TrainConfig, dtype_policy
from squeezelens.engine.train.data import Batch, BatchSource, Prefetcher, dropout_seed
from squeezelens.engine.train.loss import total_loss
from squeezelens.engine.train.monitor import (
    LOG_FILE,
    LossLog,
    check_finite,
    close,
    progress_bar,
    show,
    sigint_cancels,
)
from squeezelens.engine.train.state import (
    TrainState,
    json_safe,
    load_state,
    save_state,
    spec_from_dict,
    write_checkpoint,
)


class Trainer:
    """One SqueezeDet graph, its momentum slots and the compiled training step.

    ``variables`` are the model's conv variables in official-name order
    (``names``); ``targets`` are the variables updates are applied to: the model
    itself here, float shadow copies in :class:`engine.train.qat.QATTrainer`.
    """

    def __init__(self, spec: ArchSpec, weights: dict[str, np.ndarray], config: TrainConfig):
        from squeezelens.engine.model.squeezedet import build_models

        tf = import_tf()
        self.spec, self.config = spec, config
        with dtype_policy(config.precision):
            self.graph = build_models(spec, dropout_rate=config.dropout_rate)
        self.model = self.graph.model
        self.names, self.variables = [], []
        for layer_name, layer in self.graph.layers.items():
            self.names += [f"{layer_name}/kernels", f"{layer_name}/biases"]
            self.variables += [layer.kernel, layer.bias]
        self._kernels = [v for n, v in zip(self.names, self.variables) if n.endswith("/kernels")]
        dropout = self.model.get_layer(DROPOUT)  # rate 0: no seed generator, nothing random
        self._dropout_state = getattr(getattr(dropout, "seed_generator", None), "state", None)
        self.set_weights(weights)
        self.targets = self._make_targets()
        self.slots = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in self.variables]
        self.anchors = anchor_grid(spec)
        a, c = len(self.anchors), spec.num_classes
        w, h = spec.input_size
        sig = [
            tf.TensorSpec([None, h, w, 3], tf.float32),
            tf.TensorSpec([None, a, 1], tf.float32),
            tf.TensorSpec([None, a, 4], tf.float32),
            tf.TensorSpec([None, a, 4], tf.float32),
            tf.TensorSpec([None, a, c], tf.float32),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([2], tf.int64),
        ]
        self._step_fn = tf.function(self._train_step, input_signature=sig, autograph=False)
        self._eval_fn = tf.function(self._eval_step, input_signature=sig[:-2], autograph=False)

    def _make_targets(self) -> list:
        return self.variables

    def _train_step(self, images, input_mask, box_delta, box, labels, lr, dropout_seed):
        """Forward (dropout seeded for the step), loss, per-tensor clipped gradients,
        momentum update of ``targets``."""
        tf = import_tf()
        cfg = self.config
        if self._dropout_state is not None:
            self._dropout_state.assign(dropout_seed)
        targets = {"input_mask": input_mask, "box_delta": box_delta, "box": box, "labels": labels}
        with tf.GradientTape() as tape:
            raw = tf.cast(self.model(images, training=True), tf.float32)
            terms = total_loss(
                raw, targets, self._kernels, self.anchors, self.spec.input_size,
                self.spec.anchors_per_cell, cfg.loss,
            )  # fmt: skip
        grads = tape.gradient(terms["total"], self.variables)
        for g, target, slot in zip(grads, self.targets, self.slots):
            g = tf.clip_by_norm(g, cfg.max_grad_norm)
            slot.assign(cfg.momentum * slot + g)
            target.assign_sub(lr * slot)
        return terms

    def _eval_step(self, images, input_mask, box_delta, box, labels):
        """The loss terms without dropout and without an update."""
        tf = import_tf()
        targets = {"input_mask": input_mask, "box_delta": box_delta, "box": box, "labels": labels}
        raw = tf.cast(self.model(images, training=False), tf.float32)
        return total_loss(
            raw, targets, self._kernels, self.anchors, self.spec.input_size,
            self.spec.anchors_per_cell, self.config.loss,
        )  # fmt: skip

    def evaluate(self, batch: Batch) -> dict[str, float]:
        """Loss terms of a batch at the current weights (inference mode, no update)."""
        terms = self._eval_fn(
            batch.images, batch.input_mask, batch.box_delta, batch.box, batch.labels
        )
        return {k: float(v) for k, v in terms.items()}

    def step(self, batch: Batch, lr: float) -> dict[str, float]:
        """Run one update on a batch; returns the loss terms as floats."""
        terms = self._step_fn(
            batch.images, batch.input_mask, batch.box_delta, batch.box, batch.labels,
            np.float32(lr), dropout_seed(self.config.seed, batch.step),
        )  # fmt: skip
        return {k: float(v) for k, v in terms.items()}

    @property
    def tracing_count(self) -> int:
        return int(self._step_fn.experimental_get_tracing_count())

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for name, var in zip(self.names, self.variables):
            var.assign(np.asarray(weights[name], np.float32))

    def get_weights(self) -> dict[str, np.ndarray]:
        """The weights a checkpoint should hold (the float targets of the updates)."""
        return {n: np.asarray(v.numpy()) for n, v in zip(self.names, self._make_targets())}

    def get_momentum(self) -> dict[str, np.ndarray]:
        return {n: s.numpy() for n, s in zip(self.names, self.slots)}

    def set_momentum(self, momentum: dict[str, np.ndarray]) -> None:
        for name, slot in zip(self.names, self.slots):
            if name in momentum and tuple(momentum[name].shape) == tuple(slot.shape):
                slot.assign(momentum[name])

    def state(self, step: int, meta: dict) -> TrainState:
        return TrainState(step, self.get_weights(), self.get_momentum(), dict(meta))


# --------------------------------------------------------------------- the run
@dataclass
class TrainResult:
    """Where a run ended: step reached, latest checkpoint, log file, last logged losses."""

    step: int
    checkpoint: Path | None
    log: Path
    losses: dict[str, float]
    resumed_from: int


def run_loop(
    trainer: Trainer, source: BatchSource, out_dir: Path, start: int, meta: dict,
    progress: bool, cancel: CancelToken | None = None,
) -> TrainResult:  # fmt: skip
    """Train from step ``start`` to ``config.steps``, logging and checkpointing on the way.

    A cancelled token, or a first Ctrl-C (in the main thread), stops after the
    running step, saves a checkpoint and the state of that step, then raises
    Cancelled, or KeyboardInterrupt.  Any other KeyboardInterrupt also saves
    (best effort) before it propagates.
    """
    cfg = trainer.config
    log = LossLog(out_dir / LOG_FILE, start, cfg.log_every)
    bar, interrupt = progress_bar(cfg.steps, start, progress), CancelToken()
    step, saved, ckpt = start, start, None
    try:
        with sigint_cancels(interrupt), Prefetcher(source.batch_at, start, cfg.steps) as batches:
            for batch in batches:
                lr = cfg.lr_at(step)
                terms = trainer.step(batch, lr)
                check_finite(terms, step)
                step += 1
                log.add(step, terms, lr)
                show(bar, terms)
                stop = interrupt.cancelled or (cancel is not None and cancel.cancelled)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
                    ckpt, saved = _save(trainer, out_dir, step, meta), step
                if stop:
                    raise KeyboardInterrupt if interrupt.cancelled else Cancelled()
    except KeyboardInterrupt:
        if saved < step:
            _save(trainer, out_dir, step, meta)
        raise
    finally:
        close(bar)
        log.flush(step, cfg.lr_at(max(step - 1, 0)))
    return TrainResult(step, ckpt, out_dir / LOG_FILE, log.last, start)


def _save(trainer: Trainer, out_dir: Path, step: int, meta: dict) -> Path:
    """Checkpoint (snapshot + model.npz) first, then the state that points past it."""
    cfg = trainer.config
    path = write_checkpoint(
        out_dir, step, trainer.get_weights(), trainer.spec, cfg.keep_checkpoints
    )
    save_state(out_dir, trainer.state(step, meta))
    return path


def _resume_or_start(out_dir: Path, spec: ArchSpec, kind: str) -> TrainState | None:
    """The saved state of this run folder, checked against what is asked now."""
    state = load_state(out_dir)
    if state is None:
        return None
    if state.meta.get("kind", "train") != kind:
        raise InputError(
            f"{out_dir} holds a {state.meta.get('kind')} run; use another --out", out_dir
        )
    saved = spec_from_dict(state.meta["spec"])
    if saved.to_dict() != spec.to_dict():
        raise InputError(
            f"{out_dir} holds a run of another model ({saved.variant}, "
            f"{saved.input_size[0]}x{saved.input_size[1]}, classes {', '.join(saved.class_names)}); "
            "use another --out",
            out_dir,
        )
    return state


def open_training_set(dataset_root: str | Path, spec: ArchSpec, config: TrainConfig) -> BatchSource:
    """The BatchSource of a KITTI folder's split (``config.split``)."""
    from squeezelens.engine.data.kitti import open_dataset

    dataset = open_dataset(dataset_root, config.split)
    return BatchSource(dataset.records, spec, config.batch, config.seed, config.augmentation)


def _fresh_start(init, spec: ArchSpec | None, input_size, seed: int) -> tuple[ArchSpec, dict, str]:
    """(spec, weights, note) of a new run: from --init (conv12 redrawn if it does not fit) or new."""
    from squeezelens.engine.train.state import init_weights, merge_init

    if init is None:
        spec = spec or ArchSpec()
        spec = spec.with_input_size(input_size) if input_size else spec
        return spec, init_weights(spec, seed), "new weights"
    from squeezelens.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(init, input_size=input_size)
    if spec is not None:
        spec = spec.with_input_size(input_size) if input_size else spec
    else:
        spec = ckpt.spec
    weights, redrawn = merge_init(spec, ckpt.weights, seed)
    return (
        spec,
        weights,
        f"weights from {ckpt.path}" + (" (conv12 re-initialised)" if redrawn else ""),
    )


def prepare_run(
    out: Path, kind: str, fresh: tuple[ArchSpec, dict, str]
) -> tuple[ArchSpec, dict, TrainState | None, str]:
    """(spec, weights, saved state or None, note): the saved state of ``out`` wins over ``fresh``."""
    spec, weights, note = fresh
    state = _resume_or_start(out, spec, kind)
    if state is None:
        return spec, weights, None, note
    return (
        spec_from_dict(state.meta["spec"]),
        state.weights,
        state,
        f"resuming {out} at step {state.step}",
    )


def train(
    dataset_root: str | Path,
    out_dir: str | Path,
    init: str | Path | None = None,
    spec: ArchSpec | None = None,
    input_size: tuple[int, int] | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
    say=print,
    cancel: CancelToken | None = None,
    **overrides,
) -> TrainResult:
    """Train (or continue training) a SqueezeDet on a KITTI folder; see the module doc.

    init: any checkpoint ``load_checkpoint`` reads (ignored when out_dir holds a
    run to resume).  spec: the architecture (default: KITTI SqueezeDet, or the
    init's); input_size (W, H) overrides its input size, anchors scaled.
    cancel: stops the run after the current step (state saved, Cancelled raised).
    overrides: TrainConfig fields, e.g. ``steps=100, batch=4``.
    """
    config = replace(config or TrainConfig(), **overrides)
    config.validate()
    out = Path(out_dir)
    fresh = _fresh_start(init, spec, input_size, config.seed)
    spec, weights, state, note = prepare_run(out, "train", fresh)
    meta = {"kind": "train", "spec": spec.to_dict(), "seed": config.seed, "batch": config.batch,
            "config": json_safe(dataclasses.asdict(config))}  # fmt: skip
    source = open_training_set(dataset_root, spec, config)
    trainer = Trainer(spec, weights, config)
    return launch(source, out, trainer, state, meta, note, progress, say, cancel)


def launch(
    source: BatchSource, out: Path, trainer: Trainer, state: TrainState | None, meta: dict,
    note: str, progress: bool, say, cancel: CancelToken | None = None,
) -> TrainResult:  # fmt: skip
    """Restore momentum from a saved state and run the loop up to ``config.steps``."""
    cfg, spec = trainer.config, trainer.spec
    start = state.step if state is not None else 0
    w, h = spec.input_size
    say(f"{meta['kind']}: {note}; {w}x{h}, batch {cfg.batch}, steps {start} -> {cfg.steps}")
    if state is not None:
        trainer.set_momentum(state.momentum)
    if start >= cfg.steps:
        return TrainResult(start, None, out / LOG_FILE, {}, start)
    out.mkdir(parents=True, exist_ok=True)
    with op_determinism(cfg.deterministic):
        return run_loop(trainer, source, out, start, meta, progress, cancel)
