"""Per-layer diagnostics of a quantized SqueezeDet (after TFLite's quantization debugger).

- weight statistics (min, max, mean, std, fraction of zeros; float and
  quantized) and histograms with the grid's levels to draw over them;
- quantization error per layer: MSE, SQNR (dB), max |error|;
- float vs quantized activations on one image, per layer output: SQNR, cosine;
- the error at the ConvDet output split into class probabilities, confidence
  and box deltas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from squeezelens.engine.model.spec import layer_names


def sqnr_db(signal: float, noise: float) -> float:
    """10 log10(signal / noise) dB: inf when exact, -inf for a zero signal with noise."""
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


@dataclass(frozen=True)
class ErrorStats:
    """How far a quantized tensor is from its float original."""

    mse: float
    sqnr_db: float  # 10 log10(sum x^2 / sum (x - q)^2); inf when exact
    max_abs: float

    @staticmethod
    def of(reference: np.ndarray, other: np.ndarray) -> ErrorStats:
        return ErrorSum().add(reference, other).stats()

    def to_json_dict(self) -> dict:
        """JSON-ready: an infinite SQNR (exact, or a zero signal) becomes null."""
        finite = math.isfinite(self.sqnr_db)
        return {"mse": self.mse, "sqnr_db": self.sqnr_db if finite else None,
                "max_abs": self.max_abs}  # fmt: skip


@dataclass
class ErrorSum:
    """Running sums behind :class:`ErrorStats`, over many tensors (e.g. every image of a split)."""

    signal: float = 0.0
    noise: float = 0.0
    count: int = 0
    max_abs: float = 0.0

    def add(self, reference: np.ndarray, other: np.ndarray) -> ErrorSum:
        ref = np.asarray(reference, dtype=np.float64).ravel()
        err = np.asarray(other, dtype=np.float64).ravel() - ref
        # einsum, not np.dot: BLAS threads contending with TensorFlow's made a dot of
        # 10^5 values take 0.1 to 15 ms; einsum is a steady single-thread loop
        self.signal += float(np.einsum("i,i->", ref, ref))
        self.noise += float(np.einsum("i,i->", err, err))
        self.count += ref.size
        self.max_abs = max(self.max_abs, float(np.max(np.abs(err))) if err.size else 0.0)
        return self

    def stats(self) -> ErrorStats:
        return ErrorStats(
            self.noise / max(self.count, 1), sqnr_db(self.signal, self.noise), self.max_abs
        )


@dataclass(frozen=True)
class WeightStats:
    """Statistics of a set of weights: min, max, mean, std and the fraction exactly 0."""

    min: float
    max: float
    mean: float
    std: float
    zero_fraction: float

    @staticmethod
    def of(values: np.ndarray) -> WeightStats:
        """Statistics of ``values`` (float64 mean and population std; nan when empty)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return WeightStats(math.nan, math.nan, math.nan, math.nan, math.nan)
        return WeightStats(
            float(v.min()), float(v.max()), float(v.mean()), float(v.std()),
            float(np.count_nonzero(v == 0.0)) / v.size,
        )  # fmt: skip


@dataclass(frozen=True)
class LayerRow:
    """One row of the layers table.

    name: official layer name ('fire2/squeeze1x1'); params: kernel + bias count;
    w_min/w_max: float range of kernel and bias; step: grid step (nan when float
    or per channel, then the mean step); levels: number of grid levels (0 = float).
    stats / q_stats: the float and the quantized weights' statistics.
    """

    name: str
    params: int
    w_min: float
    w_max: float
    bits: int | None
    step: float
    levels: int
    error: ErrorStats
    stats: WeightStats | None = None
    q_stats: WeightStats | None = None


def _layer_arrays(weights: dict, layer: str) -> np.ndarray:
    return np.concatenate([weights[f"{layer}/kernels"].ravel(), weights[f"{layer}/biases"].ravel()])


def layer_table(
    float_weights: dict, quant_weights: dict, report: dict | None = None
) -> list[LayerRow]:
    """Per-layer statistics of float vs quantized weights, in forward order.

    report: ``engine.quant.quantization_report`` output (per tensor step/levels), optional.
    """
    variant = "squeezedet+" if float_weights["conv1/kernels"].shape[0] == 7 else "squeezedet"
    rows = []
    for layer in layer_names(variant):
        f, q = _layer_arrays(float_weights, layer), _layer_arrays(quant_weights, layer)
        info = (report or {}).get(f"{layer}/kernels")
        step = (
            float(np.mean(np.atleast_1d(info.step)))
            if info is not None and info.step is not None
            else math.nan
        )
        levels = (
            int(np.max(np.atleast_1d(info.n_levels))) if info is not None and info.n_levels else 0
        )
        bits = getattr(info, "bits", None) if info is not None else None
        rows.append(
            LayerRow(
                layer,
                f.size,
                float(f.min()),
                float(f.max()),
                bits,
                step,
                levels,
                ErrorStats.of(f, q),
                WeightStats.of(f),
                WeightStats.of(q),
            )
        )
    return rows


def grid_levels(float_weights: dict, quant, layer: str) -> np.ndarray:
    """The levels of the grid a layer's kernel is quantized on: (L,) float64.

    Empty when the layer stays float or has one grid per channel (too many to draw).
    """
    if quant is None:
        return np.zeros(0)
    from squeezelens.engine.quant import plan_quantization

    plan = plan_quantization(float_weights, quant).get(f"{layer}/kernels")
    if plan is None or plan.grid is None:
        return np.zeros(0)
    levels = np.asarray(plan.grid.levels, dtype=np.float64)
    return levels if levels.ndim == 1 else np.zeros(0)


@dataclass(frozen=True)
class Histogram:
    """Histogram data of one layer's weights for drawing.

    edges: (B+1,) bin edges; float_counts / quant_counts: (B,) counts of the float
    and quantized values; levels: (L,) the grid's levels inside the plotted range
    (empty when float or when there are too many to draw).
    """

    edges: np.ndarray
    float_counts: np.ndarray
    quant_counts: np.ndarray
    levels: np.ndarray


def weight_histogram(
    float_weights: dict,
    quant_weights: dict,
    layer: str,
    levels: np.ndarray | None = None,
    bins: int = 256,
    max_levels: int = 1024,
) -> Histogram:
    """Histogram of a layer's float and quantized weights (kernel + bias) on shared bins."""
    f, q = _layer_arrays(float_weights, layer), _layer_arrays(quant_weights, layer)
    return values_histogram(f, q, levels, bins, max_levels)


def values_histogram(
    f: np.ndarray,
    q: np.ndarray,
    levels: np.ndarray | None = None,
    bins: int = 256,
    max_levels: int = 1024,
) -> Histogram:
    """Histogram of float values ``f`` and their quantized values ``q`` on shared bins, with
    the grid's ``levels`` inside the plotted range (none when more than ``max_levels``)."""
    f, q = np.asarray(f).ravel(), np.asarray(q).ravel()
    lo, hi = float(min(f.min(), q.min())), float(max(f.max(), q.max()))
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    fc, _ = np.histogram(f, edges)
    qc, _ = np.histogram(q, edges)
    lv = np.zeros(0) if levels is None else np.asarray(levels, dtype=np.float64)
    lv = lv[(lv >= lo - (hi - lo) * 0.01) & (lv <= hi + (hi - lo) * 0.01)]
    if lv.size > max_levels:
        lv = np.zeros(0)
    return Histogram(edges, fc, qc, lv)


@dataclass(frozen=True)
class ActivationRow:
    name: str
    shape: tuple[int, ...]
    sqnr_db: float
    cosine: float
    max_abs_error: float


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two tensors (1 when both are zero, 0 when one is)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    ab, aa, bb = (float(np.einsum("i,i->", x, y)) for x, y in ((a, b), (a, a), (b, b)))
    if aa == bb == 0:
        return 1.0
    return ab / np.sqrt(aa * bb) if aa and bb else 0.0


def compare_activations(detector, image: np.ndarray, quant) -> list[ActivationRow]:
    """Float vs quantized activations of every layer output on one BGR image."""
    x, _ = detector.preprocess(image)
    names = layer_names(detector.spec.variant)
    equalized = bool(getattr(quant, "equalize", False))  # what quant rounds
    ref = detector.layer_outputs(x[None], equalized=equalized)
    got = detector.layer_outputs(x[None], quant)
    rows = []
    for name, r, g in zip(names, ref, got):
        e = ErrorStats.of(r, g)
        rows.append(ActivationRow(name, tuple(r.shape[1:]), e.sqnr_db, cosine(r, g), e.max_abs))
    return rows


HEADS = ("class_probs", "confidence", "deltas")


@dataclass(frozen=True)
class ConvDetError:
    """Error of the quantized ConvDet output against float, split by head."""

    class_probs: ErrorStats
    confidence: ErrorStats
    deltas: ErrorStats

    def to_json_dict(self) -> dict:
        return {h: getattr(self, h).to_json_dict() for h in HEADS}

    def format(self) -> str:
        """One line: SQNR and MSE of each head."""
        parts = [f"{h.replace('_', ' ')} {getattr(self, h).sqnr_db:.1f} dB "
                 f"(MSE {getattr(self, h).mse:.3g})" for h in HEADS]  # fmt: skip
        return "ConvDet error by head (quantized vs float): " + ", ".join(parts)


class HeadSplit:
    """The ConvDet error split by head, summed over images (one image: :func:`convdet_error`).

    add(raw_float, raw_quant): two raw ConvDet outputs (gridH, gridW, K*(C+5)) of one image.
    """

    def __init__(self, num_classes: int, anchors_per_cell: int) -> None:
        self.num_classes, self.anchors_per_cell = num_classes, anchors_per_cell
        self.sums = {h: ErrorSum() for h in HEADS}
        self.images = 0

    def add(self, raw_float: np.ndarray, raw_quant: np.ndarray) -> HeadSplit:
        from squeezelens.engine.postprocess import split_convdet

        a = split_convdet(raw_float, self.num_classes, self.anchors_per_cell)
        b = split_convdet(raw_quant, self.num_classes, self.anchors_per_cell)
        for h in HEADS:
            self.sums[h].add(getattr(a, h), getattr(b, h))
        self.images += 1
        return self

    def result(self) -> ConvDetError:
        return ConvDetError(*(self.sums[h].stats() for h in HEADS))


def convdet_error(detector, image: np.ndarray, quant) -> ConvDetError:
    """Split the ConvDet output error into class probabilities, confidence and box deltas."""
    x, _ = detector.preprocess(image)
    split = HeadSplit(detector.spec.num_classes, detector.spec.anchors_per_cell)
    raw_float, raw_quant = detector.forward(x[None], None)[0], detector.forward(x[None], quant)[0]
    return split.add(raw_float, raw_quant).result()
