"""Post-training remedies: win back the accuracy quantization loses, without training.

Each is a field of :class:`~engine.quant.config.QuantConfig` and a pure function of
the weights (and, for some, the calibration images' activations):

* range search (``range="mse" | "percentile:P"``; ``activation_range``):
  :mod:`.ranges`, applied inside :func:`engine.quant.apply.plan_quantization`;
* cross-layer equalization (``equalize``): :mod:`.equalize`;
* bias correction (``bias_correction``): :mod:`.bias_correction`;
* AdaRound (``rounding="adaround"``): :mod:`.adaround`;

composed in that order by :func:`.pipeline.remedied_weights` (the last two on one
walk through the network, :mod:`.layerwise`), cached in memory and on disk by
:mod:`.cache` (:func:`.cache.detector_weights`, what ``Detector.quantized_weights``
calls), and carried into the INT8 export by :mod:`.int8`.  Python API::

    det.set_calibration(images)                          # or det.calibrate_activations(images)
    q = QuantConfig(bits=4, scale="channel", range="mse", rounding="adaround")
    weights = det.quantized_weights(q, progress=..., cancel=token)   # minutes, then cached
    dets = det.detect(image, quant=q)                    # instant once cached
"""

from squeezelens.engine.quant.remedies.cache import detector_weights, is_cached
from squeezelens.engine.quant.remedies.equalize import equalize
from squeezelens.engine.quant.remedies.pipeline import model_weights, remedied_weights

__all__ = ["detector_weights", "equalize", "is_cached", "model_weights", "remedied_weights"]
