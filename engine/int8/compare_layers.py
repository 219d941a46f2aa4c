"""``compare-int8``: the table of :mod:`engine.int8.layers` over a set of images.

See :mod:`engine.int8.layers` for what is compared; statistics are summed over
the images (SQNR of the summed signal and noise, cosine of the concatenation).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import atomic_path
from squeezelens.engine.diagnostics import ErrorStats, ErrorSum
from squeezelens.engine.int8 import layers as L
from squeezelens.engine.jobs import CancelToken, Progress, check


@dataclass
class _Pair:
    """Running error sums and dot products of a (reference, other) pair of tensors."""

    err: ErrorSum = field(default_factory=ErrorSum)
    dot: float = 0.0
    aa: float = 0.0
    bb: float = 0.0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        self.err.add(a, b)
        self.dot += float(np.einsum("i,i->", a, b))
        self.aa += float(np.einsum("i,i->", a, a))
        self.bb += float(np.einsum("i,i->", b, b))

    def cosine(self) -> float:
        if self.aa == self.bb == 0:
            return 1.0
        return self.dot / math.sqrt(self.aa * self.bb) if self.aa and self.bb else 0.0


@dataclass(frozen=True)
class Int8LayerRow:
    """One layer: deployed (INT8) vs float, simulated vs float, deployed vs simulated.

    parted_share: share of values where deployed and simulated differ by more than
    PART_LSB steps; local_share / local_max_lsb: the layer recomputed from its deployed
    input against its deployed output: share of values off by at least one step, and
    the largest difference in steps.
    """

    layer: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    deployed_vs_float: ErrorStats
    deployed_float_cosine: float
    simulated_vs_float: ErrorStats
    simulated_float_cosine: float
    deployed_vs_simulated: ErrorStats
    deployed_simulated_cosine: float
    parted_share: float
    local_share: float
    local_max_lsb: int

    @property
    def parted(self) -> bool:
        return self.parted_share > L.PART_SHARE


TOLERANCE = (f"tolerance: a layer parts when more than {L.PART_SHARE:.0%} of its values differ by "
             f"more than {L.PART_LSB} step (LSB) between deployed and simulated")  # fmt: skip

CSV_HEADER = ("layer", "shape", "scale", "zero_point", "sqnr_deployed_float_db",
              "cosine_deployed_float", "sqnr_simulated_float_db", "cosine_simulated_float",
              "sqnr_deployed_simulated_db", "cosine_deployed_simulated", "parted_share",
              "local_share", "local_max_lsb")  # fmt: skip


@dataclass(frozen=True)
class Int8LayerComparison:
    """Every layer's row, in forward order, over ``images`` images run with ``kernels``."""

    rows: tuple[Int8LayerRow, ...]
    images: int
    kernels: str

    @property
    def first_parting(self) -> str | None:
        """The first layer where simulation and deployment part beyond the tolerance."""
        return next((r.layer for r in self.rows if r.parted), None)

    def format_table(self) -> str:
        head = (f"{'layer':<19}|{'deployed vs float':^17}|{'simulated vs float':^18}|"
                f"{'deployed vs simulated':^27}|{'layer alone':^15}")  # fmt: skip
        sub = (f"{'':<19}|{'SQNR dB':>8}{'cosine':>9}|{'SQNR dB':>9}{'cosine':>9}|"
               f"{'SQNR dB':>8}{'cosine':>9}{'>1 LSB':>10}|{'off':>8}{'max':>7}")  # fmt: skip
        lines = [f"INT8 ({self.kernels} kernels) vs float and vs its simulation, layer by layer, "
                 f"{self.images} image(s)", head, sub, "-" * len(sub)]  # fmt: skip
        for r in self.rows:
            lines.append(
                f"{r.layer:<19}|{_db(r.deployed_vs_float.sqnr_db):>8}{r.deployed_float_cosine:>9.5f}|"
                f"{_db(r.simulated_vs_float.sqnr_db):>9}{r.simulated_float_cosine:>9.5f}|"
                f"{_db(r.deployed_vs_simulated.sqnr_db):>8}{r.deployed_simulated_cosine:>9.5f}"
                f"{r.parted_share:>10.3%}|{r.local_share:>8.4%}{r.local_max_lsb:>7d}"
            )
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        """The tolerance and where deployment and simulation part first (or that they never do)."""
        first = self.first_parting
        return f"{TOLERANCE}; " + (f"they part first at {first}" if first else "they never part")

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_HEADER)
            for r in self.rows:
                writer.writerow([
                    r.layer, "x".join(map(str, r.shape)), repr(r.scale), r.zero_point,
                    repr(r.deployed_vs_float.sqnr_db), repr(r.deployed_float_cosine),
                    repr(r.simulated_vs_float.sqnr_db), repr(r.simulated_float_cosine),
                    repr(r.deployed_vs_simulated.sqnr_db), repr(r.deployed_simulated_cosine),
                    repr(r.parted_share), repr(r.local_share), r.local_max_lsb,
                ])  # fmt: skip
        return path


def _db(v: float) -> str:
    return "inf" if math.isinf(v) and v > 0 else f"{v:.1f}"


def _local_codes(codes: dict, interp, op: L.ConvOp, weights: dict, stride: int, padding: str,
                 relu: bool) -> np.ndarray:  # fmt: skip
    """The layer recomputed (float64) from its deployed input, requantized to int8 codes."""
    import tensorflow as tf

    x = L.dequantize(codes[f"{op.layer}:input"], *L.tensor_scale(interp, op.input))
    k = weights[f"{op.layer}/kernels"].astype(np.float64)
    y = tf.nn.conv2d(x.astype(np.float64), k, stride, padding.upper()).numpy()
    y = y + weights[f"{op.layer}/biases"].astype(np.float64)
    if relu:
        y = np.maximum(y, 0.0)
    return np.clip(np.rint(y / op.scale) + op.zero_point, -128, 127)


class _Layer:
    """What one layer accumulates over the images."""

    def __init__(self) -> None:
        self.dep_float, self.sim_float, self.dep_sim = _Pair(), _Pair(), _Pair()
        self.count = self.parted = self.local_off = self.local_max = 0
        self.shape: tuple[int, ...] = ()

    def add(self, ref, dep, sim, dep_codes, local_codes, scale: float) -> None:
        self.shape = tuple(ref.shape[1:])
        self.dep_float.add(ref, dep)
        self.sim_float.add(ref, sim)
        self.dep_sim.add(sim, dep)
        self.count += dep.size
        self.parted += int((np.rint(np.abs(dep - sim) / scale) > L.PART_LSB).sum())
        off = np.abs(local_codes - dep_codes.astype(np.float64))
        self.local_off += int((off >= 1).sum())
        self.local_max = max(self.local_max, int(off.max()) if off.size else 0)

    def row(self, op: L.ConvOp) -> Int8LayerRow:
        n = max(self.count, 1)
        return Int8LayerRow(
            op.layer, self.shape, op.scale, op.zero_point,
            self.dep_float.err.stats(), self.dep_float.cosine(),
            self.sim_float.err.stats(), self.sim_float.cosine(),
            self.dep_sim.err.stats(), self.dep_sim.cosine(),
            self.parted / n, self.local_off / n, self.local_max,
        )  # fmt: skip


def compare_int8_layers(
    detector,
    model_path: str | Path,
    images: Sequence[np.ndarray],
    kernels: str = "xnnpack",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Int8LayerComparison:
    """Compare the INT8 model (``model_path``, converted from ``detector``) with the float
    model and with its simulation, layer by layer, on BGR ``images``."""
    from squeezelens.engine.detector import Detector
    from squeezelens.engine.model.spec import CONV1, layer_names

    interp = L.open_probe(model_path, kernels)
    names = layer_names(detector.spec.variant)
    ops = L.conv_ops(interp, names)
    weights = L.deployed_weights(interp, ops)
    simulated = Detector(detector.spec, weights)
    grids = L.activation_grids(ops)
    acc = {n: _Layer() for n in names}
    for i, image in enumerate(images):
        check(cancel)
        x, _ = detector.preprocess(image)
        codes = L.run_probe(interp, x, ops)
        ref = detector.layer_outputs(x[None])
        sim = simulated.layer_outputs(L.input_as_deployed(interp, x)[None], activation_grids=grids)
        for n, r, s in zip(names, ref, sim, strict=True):
            op = ops[n]
            stride, padding = (2, CONV1[detector.spec.variant][2]) if n == "conv1" else (1, "same")
            local = _local_codes(codes, interp, op, weights, stride, padding, n != "conv12")
            dep = L.dequantize(codes[n], op.scale, op.zero_point)
            acc[n].add(r, dep, s, codes[n], local, op.scale)
        if progress is not None:
            progress(i + 1, len(images))
    return Int8LayerComparison(tuple(acc[n].row(ops[n]) for n in names), len(images), kernels)
