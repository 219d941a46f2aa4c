"""TensorFlow's log chatter, and how it is kept off the user's terminal.

It comes from three places:

1. C++ logging written straight to file descriptor 2: absl/glog lines
   (``I0000 00:00:1796580786.887 1044 reader.cc:83] Reading SavedModel ...``, ``W0000 ...``),
   the ``WARNING: All log messages before absl::InitializeLog() ...`` banner, the oneDNN
   and CPU-feature notices (with their ``To enable the following instructions: ...``
   continuation).  ``TF_CPP_MIN_LOG_LEVEL`` hides some of TensorFlow's own, not absl's
   start-up lines nor the TFLite converter's.
2. The TFLite converter and runtime printing to the process's stdout/stderr:
   ``fully_quantize: 0, inference_type: 6, ...``, ``INFO: Created TensorFlow Lite XNNPACK
   delegate for CPU.``.
3. Python: the ``tensorflow`` and ``absl`` loggers and warnings raised in TensorFlow,
   Keras, absl or LiteRT modules.

:func:`quiet_tensorflow` (what the CLI runs every command in, unless ``--verbose``)
filters 1 and 2 at the file-descriptor level: descriptors 1 and 2 are pointed at pipes
whose lines are dropped when :func:`is_chatter` says so and passed on unchanged otherwise
(absl ``E``/``F`` lines, crash reports, anything unknown: errors still reach the user),
while Python's ``sys.stdout`` / ``sys.stderr`` keep writing to the terminal directly, so
progress bars and messages are neither delayed nor filtered; and 3 is set to errors only.
:func:`import_quietly` (used by :func:`engine.tf_runtime.import_tf`) keeps the import's
start-up lines off stderr in every program, the GUI included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator

_ABSL_LINE = re.compile(rb"^[IW]\d{4} [\d:.]+ +\d+ [^\]]+\] ")
_CHATTER_LINES = (
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(rb"^To enable the following instructions: .* rebuild TensorFlow with"),
    re.compile(rb"^fully_quantize: \d+, inference_type: "),
    re.compile(rb"^INFO: (Created TensorFlow Lite|Initialized TensorFlow Lite)"),
)
_PYTHON_MODULES = r"(tensorflow|keras|tf_keras|absl|ai_edge_litert|google\.protobuf)(\.|$)"
_verbose = False


def is_chatter(line: bytes) -> bool:
    """Whether one line of native output is TensorFlow/TFLite chatter (see the module doc):
    absl INFO/WARNING lines and the known notices; blank lines too."""
    line = line.rstrip(b"\r\n")
    if not line.strip():
        return True
    return bool(_ABSL_LINE.match(line)) or any(p.match(line) for p in _CHATTER_LINES)


def verbose() -> bool:
    """True inside ``quiet_tensorflow(verbose=True)``: nothing is silenced."""
    return _verbose


@contextlib.contextmanager
def import_quietly() -> Iterator[None]:
    """Point descriptor 2 at the null device while the block runs (TensorFlow's import
    prints absl/oneDNN lines that no setting silences); a no-op when verbose."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None or _verbose:
        yield
        return
    saved = os.dup(fd)
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _quiet_python() -> None:
    """The tensorflow and absl loggers to errors only; their modules' warnings ignored."""
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=_PYTHON_MODULES)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy the lines of a pipe to ``out_fd``, dropping chatter, until the pipe closes."""
    pending = b""
    while chunk := os.read(read_fd, 1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        _write_all(out_fd, b"".join(line + b"\n" for line in lines if not is_chatter(line)))
    if pending and not is_chatter(pending):
        _write_all(out_fd, pending)
    os.close(read_fd)


def _python_stream(fd: int):
    """The Python stream (sys.stdout / sys.stderr) that writes to descriptor ``fd``, or None."""
    stream = sys.stdout if fd == 1 else sys.stderr
    try:
        return stream if stream is not None and stream.fileno() == fd else None
    except (AttributeError, OSError, ValueError):
        return None


@contextlib.contextmanager
def _filtered(fd: int) -> Iterator[None]:
    """Filter descriptor ``fd`` through a chatter-dropping pipe; Python's stream of that
    descriptor is replaced by one on a copy of the original, so it bypasses the filter."""
    try:
        os.fstat(fd)
    except OSError:  # no such descriptor (a windowed program): nothing to filter
        yield
        return
    stream = _python_stream(fd)
    if stream is not None:
        stream.flush()
    original = os.dup(fd)
    read_end, write_end = os.pipe()
    pump = threading.Thread(target=_pump, args=(read_end, original), name=f"quiet-fd{fd}",
                            daemon=True)  # fmt: skip
    pump.start()
    direct = None
    if stream is not None:
        direct = open(os.dup(original), "w", buffering=1, encoding=stream.encoding,  # noqa: SIM115
                      errors=stream.errors)  # fmt: skip
        setattr(sys, "stdout" if fd == 1 else "stderr", direct)
    os.dup2(write_end, fd)
    os.close(write_end)
    try:
        yield
    finally:
        if direct is not None:
            direct.flush()
            setattr(sys, "stdout" if fd == 1 else "stderr", stream)
            direct.close()
        os.dup2(original, fd)  # the pipe's last writer here is gone: the pump sees its end
        pump.join(timeout=2.0)
        if not pump.is_alive():  # else a child still holds the pipe: leave the pump its fd
            os.close(original)


@contextlib.contextmanager
def quiet_tensorflow(verbose: bool = False, native: bool = True) -> Iterator[None]:
    """Run the block with TensorFlow's chatter filtered out (see the module doc), or, with
    ``verbose``, with everything shown (``TF_CPP_MIN_LOG_LEVEL`` 0 unless set).
    native=False leaves descriptors 1 and 2 alone (only the log level and Python's side)."""
    global _verbose
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        _verbose = True
        try:
            yield
        finally:
            _verbose = False
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _quiet_python()
    if not native:
        yield
        return
    with _filtered(2), _filtered(1):
        yield
