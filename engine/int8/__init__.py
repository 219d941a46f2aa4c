"""True integer-only INT8 inference of SqueezeDet via TFLite full-integer quantization.

- :func:`convert_int8` -- float Detector + calibration images -> .tflite bytes
- :func:`get_or_convert_int8` -- the same, cached on disk (see :mod:`engine.int8.cache`)
- :class:`Int8Detector` -- runs the model with the LiteRT interpreter, like Detector
"""

from squeezelens.engine.int8.cache import default_cache_dir, get_or_convert_int8
from squeezelens.engine.int8.convert import ConvertOptions, convert_int8, load_calibration_images
from squeezelens.engine.int8.runtime import Int8Detector, SizeReport

__all__ = [
    "ConvertOptions",
    "Int8Detector",
    "SizeReport",
    "convert_int8",
    "default_cache_dir",
    "get_or_convert_int8",
    "load_calibration_images",
]
