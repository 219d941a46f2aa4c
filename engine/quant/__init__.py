"""Weight quantization of SqueezeDet, pure numpy (no TensorFlow, no Qt).

Entry points::

    config = QuantConfig(bits=6, reserve_zero=True, scale="groups")
    quantized = quantize_weights(weights, config)      # dict name -> float32 array
    report = quantization_report(weights, config)      # dict name -> TensorQuantInfo

With ``grid="linear"``, ``range="minmax"`` and ``scale`` "global" or "groups"
(``config.fork_exact``) the result is bit-identical to the low-precision
SqueezeDet fork.  The building blocks (grids, rounding functions, draws) are
exported for tests, the GUI's level plots and custom experiments; the named
presets (the fork's four curves, Ristretto) live in :mod:`engine.quant.presets`;
:func:`engine.quant.export.write_quantized` writes quantized parameters with their grids.
"""

from squeezelens.engine.quant.apply import (
    TensorPlan,
    plan_quantization,
    quantization_report,
    quantize_weights,
)
from squeezelens.engine.quant.config import PartialConfig, QuantConfig
from squeezelens.engine.quant.grids import (
    LinearGrid,
    Pow2Grid,
    SymmetricGrid,
    UniformGrid,
    pow2_frac_len,
)
from squeezelens.engine.quant.presets import FORK_BITS, FORK_CURVES, PRESETS, RISTRETTO, Preset
from squeezelens.engine.quant.report import TensorQuantInfo, model_size_bytes
from squeezelens.engine.quant.rounding import round_nearest, round_stochastic, uniform_draws

__all__ = [
    "FORK_BITS",
    "FORK_CURVES",
    "LinearGrid",
    "PRESETS",
    "PartialConfig",
    "Pow2Grid",
    "Preset",
    "QuantConfig",
    "RISTRETTO",
    "SymmetricGrid",
    "TensorPlan",
    "TensorQuantInfo",
    "UniformGrid",
    "model_size_bytes",
    "plan_quantization",
    "pow2_frac_len",
    "quantization_report",
    "quantize_weights",
    "round_nearest",
    "round_stochastic",
    "uniform_draws",
]
