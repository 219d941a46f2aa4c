"""Quantization-aware fine-tuning, Ristretto style.

The network keeps float "shadow" weights.  Every step:

1. the shadow weights are quantized in numpy with the project's quantizer
   (:func:`engine.quant.quantize_weights`, the very code the evaluation uses,
   so training sees exactly the grid it will be scored on);
2. the quantized values are assigned to the model's variables, and the
   compiled step runs forward and backward there: the gradient is taken at the
   quantized point;
3. the update (momentum, clipping, schedule as in :mod:`engine.train.loop`) is
   applied to the float shadow weights: the straight-through estimator, i.e.
   d quantize(w) / dw taken as 1.

Why not an in-graph straight-through estimator (``w + stop_gradient(q(w) - w)``)?
It would need a second, TensorFlow implementation of every grid, range and
rounding rule of :mod:`engine.quant` that must stay bit-identical to the numpy
one; assigning numpy results costs one quantization per step (tens of ms for
SqueezeDet) and cannot drift from what is evaluated.

With stochastic rounding (the default for fine-tuning) each step draws fresh
rounding noise: the config's seed is combined with the step number.  Tensors
the config leaves in float (conv1 by default) train as plain float weights.
Checkpoints hold the float shadow weights; quantize them with the same config
to use them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.model.spec import ArchSpec
from squeezelens.engine.tf_runtime import import_tf
from squeezelens.engine.train.data import Batch
from squeezelens.engine.train.loop import (
    TrainConfig,
    Trainer,
    TrainResult,
    launch,
    open_training_set,
    prepare_run,
)
from squeezelens.engine.train.state import json_safe


def step_config(quant, step: int):
    """The QuantConfig of one step: a per-step seed for stochastic rounding, else unchanged."""
    if quant.rounding != "stochastic":
        return quant
    seed = np.random.SeedSequence([int(quant.seed), int(step)]).generate_state(1, np.uint64)[0]
    return quant.replace(seed=int(seed >> np.uint64(1)))


class QATTrainer(Trainer):
    """A Trainer whose forward/backward run on quantized weights and whose updates hit float copies."""

    def __init__(self, spec: ArchSpec, weights: dict[str, np.ndarray], config: TrainConfig, quant):
        if getattr(quant, "activation_bits", None):
            raise InputError("fine-tuning quantizes weights only; leave --activation-bits off")
        self.quant = quant
        super().__init__(spec, weights, config)

    def _make_targets(self) -> list:
        if not hasattr(self, "shadow"):
            tf = import_tf()
            self.shadow = [tf.Variable(v.numpy(), trainable=False) for v in self.variables]
        return self.shadow

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        super().set_weights(weights)
        for name, var in zip(self.names, getattr(self, "shadow", ())):
            var.assign(np.asarray(weights[name], np.float32))

    def float_weights(self) -> dict[str, np.ndarray]:
        """The float shadow weights (what checkpoints hold)."""
        return {n: v.numpy() for n, v in zip(self.names, self.shadow)}

    def load_quantized(self, quant) -> dict[str, np.ndarray]:
        """Quantize the shadow weights with ``quant`` and put them in the model; returns them."""
        from squeezelens.engine.quant import quantize_weights

        q = quantize_weights(self.float_weights(), quant)
        for name, var in zip(self.names, self.variables):
            var.assign(np.asarray(q[name], np.float32))
        return q

    def step(self, batch: Batch, lr: float) -> dict[str, float]:
        """Quantize, then forward/backward at the quantized point, update the float weights."""
        self.load_quantized(step_config(self.quant, batch.step))
        return super().step(batch, lr)

    def evaluate(self, batch: Batch) -> dict[str, float]:
        """Loss at the shadow weights quantized with the config as given (its own seed)."""
        self.load_quantized(self.quant)
        return super().evaluate(batch)


def _checked_config(config: TrainConfig | None, overrides: dict) -> TrainConfig:
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    config.validate()
    if config.precision != "float32":
        raise InputError(
            "fine-tuning runs its forward pass on the exact grid values, which bfloat16 "
            "would round again: leave out --bf16"
        )
    return config


def finetune(
    checkpoint: str | Path,
    dataset_root: str | Path,
    out_dir: str | Path,
    quant,
    input_size: tuple[int, int] | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
    say=print,
    cancel=None,
    **overrides,
) -> TrainResult:
    """Quantization-aware fine-tuning of a checkpoint on a KITTI folder (resumable like train).

    quant: an :class:`engine.quant.QuantConfig`.  config / overrides: as
    :func:`engine.train.loop.train` (the learning rate defaults to the
    original's 0.01; fine-tuning usually wants less, e.g. 0.001).  cancel: an
    :class:`engine.jobs.CancelToken` that stops the run after the current step.
    """
    from squeezelens.engine.checkpoint import load_checkpoint

    config = _checked_config(config, overrides)
    out = Path(out_dir)
    ckpt = load_checkpoint(checkpoint, input_size=input_size)
    fresh = (ckpt.spec, ckpt.weights, f"fine-tuning {ckpt.path} for {quant.describe()}")
    spec, weights, state, note = prepare_run(out, "qat", fresh)
    if state is not None and state.meta.get("quant") != quant.to_dict():
        raise InputError(
            f"{out} holds a fine-tuning run with other quantization settings; use another --out",
            out,
        )
    meta = {"kind": "qat", "spec": spec.to_dict(), "seed": config.seed, "batch": config.batch,
            "quant": quant.to_dict(), "config": json_safe(dataclasses.asdict(config))}  # fmt: skip
    source = open_training_set(dataset_root, spec, config)
    trainer = QATTrainer(spec, weights, config, quant)
    return launch(source, out, trainer, state, meta, note, progress, say, cancel)
