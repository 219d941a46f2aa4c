"""TensorFlow's import is kind to other threads: its big libraries are mapped with the
interpreter lock released, and what initialises holding the lock can be imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from squeezelens.engine import tf_runtime
tf_runtime.import_lock_holders()
print("ml_dtypes" in sys.modules, "tensorflow" in sys.modules)
print(",".join(tf_runtime.preload_libraries()))
maps = open("/proc/self/maps").read()
print("libtensorflow_cc" in maps, "tensorflow" in sys.modules)
tf = tf_runtime.import_tf()
print(float(tf.constant(2.0) * 3))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="dlopen preload is Linux only")
def test_libraries_are_mapped_before_the_import_and_it_still_works():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split("\n")  # fmt: skip
    assert out[0] == "True False"  # ml_dtypes imported, TensorFlow not
    assert "libtensorflow_cc" in out[1] and "libtensorflow_framework" in out[1]
    assert out[2] == "True False"  # mapped, not yet imported
    assert out[3] == "6.0"  # the import then works on the mapped libraries
