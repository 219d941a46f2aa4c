"""SqueezeLens engine: pure computation (numpy, OpenCV, TensorFlow), no GUI toolkit.

TensorFlow is imported lazily, by the modules that build or run a model, so
``import engine`` stays cheap for the GUI's start-up and for tools that only
read labels or quantize numpy arrays.
"""

from squeezelens.engine.errors import InputError

__all__ = ["InputError"]
