"""Training SqueezeDet from KITTI labels, and quantization-aware fine-tuning.

Entry points::

    result = train(kitti_root, out_dir, steps=1000, batch=20, input_size=(624, 192))
    result = finetune(checkpoint, kitti_root, out_dir, QuantConfig(bits=4), steps=500)

Both are resumable: calling them again with the same out_dir continues after
the last saved step.  TensorFlow is imported only when a model is built.
"""

from squeezelens.engine.train.augment import AugmentConfig
from squeezelens.engine.train.loop import TrainConfig, Trainer, TrainResult, train
from squeezelens.engine.train.loss import LossConfig
from squeezelens.engine.train.monitor import TrainingDiverged
from squeezelens.engine.train.qat import QATTrainer, finetune

__all__ = [
    "AugmentConfig",
    "LossConfig",
    "QATTrainer",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "finetune",
    "train",
]
