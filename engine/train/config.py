"""The training run's hyper-parameters (:class:`TrainConfig`) and its numeric precision.

Defaults are the original KITTI SqueezeDet configuration; :func:`dtype_policy` builds
Keras layers under the precision a config names (``float32``, or ``bfloat16`` mixed
precision).  Used by :mod:`engine.train.loop` and :mod:`engine.train.qat`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from squeezelens.engine.errors import InputError
from squeezelens.engine.train.augment import AugmentConfig
from squeezelens.engine.train.loss import LossConfig

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # -> Keras dtype policy


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build Keras layers under ``precision``'s dtype policy (restored afterwards: the
    policy is global, and a float32 Detector may be built in the same process)."""
    from squeezelens.engine.model.squeezedet import keras_module

    keras = keras_module()
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; defaults are the original KITTI SqueezeDet configuration.

    steps: total number of updates of the run (a resumed run stops there too).
    checkpoint_every / log_every: in steps; keep_checkpoints: snapshots kept (0 = all).
    augmentation: None trains on plain resized images.
    precision: "float32", or "bfloat16": Keras mixed precision (float32 weights,
    updates and loss; convolutions in bfloat16), about 1.7x faster per step on
    CPUs with AVX512-BF16 (measured: 1.2 vs 2.0 s for 8 images at 1248x384).
    deterministic: switch on TensorFlow's op determinism (process-wide) so that GPU
    kernels give bit-identical runs too.  Every random draw of a run is a function of
    (seed, step) (:mod:`engine.train.data`), so on a CPU two runs with the same seed and
    data, and a killed-and-resumed run, are bit-identical without it; it measured free
    there (benchmarks/bench_train_determinism.py).
    """

    steps: int = 1000
    batch: int = 20
    learning_rate: float = 0.01
    decay_steps: int = 10000
    decay_factor: float = 0.5
    momentum: float = 0.9
    max_grad_norm: float = 1.0
    dropout_rate: float = 0.5
    checkpoint_every: int = 1000
    log_every: int = 10
    keep_checkpoints: int = 5
    seed: int = 0
    split: str = "train"
    augmentation: AugmentConfig | None = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    precision: str = "float32"
    deterministic: bool = False

    def validate(self) -> None:
        for name in ("steps", "batch", "decay_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(
                    f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not (self.learning_rate > 0 and 0 < self.decay_factor <= 1 and 0 <= self.momentum < 1):
            raise InputError(
                "learning rate must be > 0, decay factor in (0, 1], momentum in [0, 1)"
            )
        if self.precision not in PRECISIONS:
            raise InputError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )

    def lr_at(self, step: int) -> float:
        """Staircase exponential decay of the learning rate for the update after ``step``."""
        return self.learning_rate * self.decay_factor ** (step // self.decay_steps)
