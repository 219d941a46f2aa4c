"""Mixed-precision search: per-layer bit widths (or float) of least size for a given mAP drop.

1. **Sensitivities**: each layer alone at each candidate width
   (:func:`engine.sensitivity.single_layer_config`: that layer rounded on the grid the
   full config gives it, the others float), scored by the noise it adds to the ConvDet
   output (mean squared difference from the float output over the search images,
   :mod:`engine.output_noise`) and, for the record, by its mAP.  The output noise is
   what the proposals use: unlike one layer's mAP drop on a small split, which moves in
   steps of one detection (a layer at 2 bits can score above float by chance), it grows
   steadily as the width falls, and the noise of independent layers adds up.
2. **Proposals**: each trade-off ``lam`` between size and noise gives every layer the
   option (a width or float) of least ``size + lam * noise``; sweeping ``lam`` yields
   the lower convex hull of predicted (size, noise), from all float to all at the
   narrowest width.
3. **Verification**: proposals are scored by full evaluations: :data:`FRONT_POINTS`
   points spread over the hull for the front, then a bisection along the hull for the
   smallest one whose measured mAP drop is within ``max_drop`` (its steps on spread
   points cost nothing).  The front is the verified points no other verified point
   beats in both size and mAP.

The search runs on the ``train`` split by default (the CLI's ``--split``): like
calibration, it never chooses on the split it is evaluated on; evaluate the result
on val afterwards.  Everything is written as it is measured (``sensitivity.csv``,
``search.csv``, ``sweep_meta.json`` as a sweep folder's, see :mod:`engine.sweep`), so a
killed search resumes where it stopped.  Scoring is one plain function of configs ->
:class:`Score` (a :data:`Scorer`: :func:`local_scorer` here,
:class:`engine.distributed.scoring.PoolScorer` on Ray workers, with the same numbers to
the last bit); independent configs are handed to it together (the sensitivities, the
spread points), so workers score them in parallel.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, check
from squeezelens.engine.quant.config import FLOAT, QuantConfig
from squeezelens.engine.sweep import (
    CHECKED_META,
    append_row,
    check_or_write_meta,
    config_key,
    drop_torn_tail,
)

SENSITIVITY_CSV, SEARCH_CSV, RESULT_JSON = "sensitivity.csv", "search.csv", "search.json"
SENSITIVITY_FIELDS = ("layer", "bits", "map_r11", "noise")
POINT_FIELDS = ("key", "size_kb", "map_r11", "drop", "noise", "predicted_noise", "layer_bits",
                "config")  # fmt: skip
FRONT_POINTS = 8  # points spread over the hull, verified for the front


@dataclass(frozen=True)
class Score:
    """A config scored on the search images: mAP (R11, all 9) and ConvDet output noise."""

    map_r11: float
    noise: float


Scorer = Callable[[Sequence[QuantConfig | None]], Iterable[Score]]
"""Scores of configs (None: the float model), in their order, each as soon as it is known
(a generator, so that each is written before the next is computed)."""
NOISE_SUM = "per-image float64 sums, fsum"  # how the folder's noise was summed (its meta)


@dataclass(frozen=True)
class SearchPoint:
    """One verified configuration: its size, measured mAP, drop and noise, predicted noise."""

    config: QuantConfig
    size_kb: float
    map_r11: float
    drop: float
    noise: float
    predicted_noise: float

    @property
    def layer_bits(self) -> str:
        """The ``--layer-bits`` value that, with ``--bits config.bits``, rebuilds the widths."""
        return ",".join(f"{layer}={bits}" for layer, bits in self.config.overrides)

    def to_dict(self) -> dict:
        return {"size_kb": self.size_kb, "map_r11": self.map_r11, "drop": self.drop,
                "noise": self.noise, "predicted_noise": self.predicted_noise,
                "bits": self.config.bits, "layer_bits": self.layer_bits,
                "config": self.config.to_dict(), "cli": self.config.to_cli_args()}  # fmt: skip


def score_of(records, detections: dict, error, protocol: str, classes) -> Score:
    """A config's Score from its detections on ``records`` and its OutputError."""
    from squeezelens.engine.eval import evaluate_detections

    result = evaluate_detections(records, detections, protocol=protocol, classes=tuple(classes))
    return Score(float(result.to_json_dict()["map"]["r11"]["all"]), error.noise())


def local_scorer(detector, dataset, protocol: str = "official", cancel=None) -> Scorer:
    """Score configs on ``dataset`` in this process (inputs decoded once, float outputs
    computed once)."""
    from squeezelens.engine.output_noise import detect_with_error, float_outputs
    from squeezelens.engine.sweep import PreparedInputs

    prepared = PreparedInputs(detector, dataset.records, cancel=cancel)
    reference: list[np.ndarray] = []

    def scores(configs: Sequence[QuantConfig | None]) -> Iterator[Score]:
        for quant in configs:
            if not reference:
                reference.append(float_outputs(detector, prepared, cancel=cancel))
            dets, error = detect_with_error(detector, prepared, quant, reference[0], cancel=cancel)
            yield score_of(dataset.records, dets, error, protocol, detector.class_names)

    return scores


def scored(score: Scorer, configs: Sequence) -> Iterator[tuple[object, Score]]:
    """(config, its Score) in order, as the scorer hands them out (closed when left early)."""
    scores = score(configs)
    try:
        yield from zip(configs, scores, strict=True)
    finally:
        close = getattr(scores, "close", None)
        if close is not None:
            close()


# ------------------------------------------------------------------ csv files
def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text()
    text = text[: text.rfind("\n") + 1]  # a torn last line from a kill is dropped
    return list(csv.DictReader(text.splitlines()))


def _append(path: Path, fields: Sequence[str], row: dict) -> None:
    """Append a row to a csv of the search folder (a torn last line cut first)."""
    drop_torn_tail(path.parent, path.name)
    append_row(path.parent, row, path.name, fields)


# ------------------------------------------------------------------ steps
def measure_sensitivities(
    base: QuantConfig,
    layers: Sequence[str],
    bits: Sequence[int],
    score: Scorer,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> dict[tuple[str, int], float]:
    """noise[(layer, bits)] of every layer alone at every width (step 1)."""
    from squeezelens.engine.sensitivity import single_layer_config

    path = out_dir / SENSITIVITY_CSV
    noise = {(r["layer"], int(r["bits"])): float(r["noise"]) for r in _read(path)}
    tested = [(layer, b) for layer in layers for b in sorted(set(bits), reverse=True)]
    todo = [t for t in tested if t not in noise]
    done = len(tested) - len(todo)
    if progress:
        progress(done, len(tested))
    configs = [single_layer_config(base, *t) for t in todo]  # independent: scored together
    with closing(scored(score, configs)) as stream:
        for (layer, b), (_, found) in zip(todo, stream, strict=True):
            check(cancel)
            noise[(layer, b)] = found.noise
            row = {"layer": layer, "bits": b, "map_r11": repr(found.map_r11),
                   "noise": repr(found.noise)}  # fmt: skip
            _append(path, SENSITIVITY_FIELDS, row)
            done += 1
            if progress:
                progress(done, len(tested))
    return noise


def _options(layer: str, noise: dict, sizes: dict[str, int]) -> list[tuple]:
    """(choice, bits of storage, noise) of one layer: float and each tested width."""
    out: list[tuple] = [(FLOAT, 32.0 * sizes[layer], 0.0)]
    out += [(b, float(b * sizes[layer]), n) for (name, b), n in noise.items() if name == layer]
    return out


def _cost(option: tuple, lam: float) -> tuple[float, float]:
    """What an option costs at trade-off ``lam``: size + lam * noise (noise alone at inf)."""
    _, size, noise = option
    return (noise, size) if lam == float("inf") else (size + lam * noise, noise)


def propose(
    layers: Sequence[str], noise: dict, sizes: dict[str, int]
) -> list[tuple[dict[str, int | str], float]]:
    """The lower convex hull of predicted (size, noise): (layer -> choice, predicted noise)
    for each distinct choice as the trade-off falls, all float first (step 2)."""
    options = {layer: _options(layer, noise, sizes) for layer in layers}
    lams = {0.0, float("inf")}
    for opts in options.values():  # every trade-off where some layer's choice flips
        for i, (_, s1, d1) in enumerate(opts):
            for _, s2, d2 in opts[i + 1 :]:
                if d1 != d2 and (s1 - s2) / (d2 - d1) > 0:
                    lams.add((s1 - s2) / (d2 - d1))
    proposals, seen = [], set()
    for lam in sorted(lams, reverse=True):
        choice = {layer: min(opts, key=lambda o: _cost(o, lam)) for layer, opts in options.items()}
        picked = tuple(str(choice[layer][0]) for layer in layers)
        if picked not in seen:
            seen.add(picked)
            predicted = sum(c[2] for c in choice.values())
            proposals.append(({layer: c[0] for layer, c in choice.items()}, predicted))
    return proposals


def config_of(base: QuantConfig, choice: dict[str, int | str]) -> QuantConfig:
    """``base`` with the chosen per-layer widths: ``bits`` the most common choice, the
    other layers as overrides (the base's overrides of other layers kept)."""
    widths = [c for c in choice.values() if c != FLOAT]
    bits = max(set(widths), key=lambda b: (widths.count(b), b)) if widths else base.bits
    overrides = {k: v for k, v in base.overrides if k not in choice}
    overrides.update({layer: c for layer, c in choice.items() if c != bits})
    return base.replace(bits=bits, overrides=overrides)


def size_kb(detector, config: QuantConfig | None) -> float:
    """Storage of the kernels and biases at the config's widths (float: 32 bits), KB."""
    from squeezelens.engine.quant.report import model_size_bytes

    params = {k: v for k, v in detector.float_weights.items() if k.endswith(("kernels", "biases"))}
    return model_size_bytes(params, config) / 1024


def pareto(points: Sequence[SearchPoint]) -> list[SearchPoint]:
    """The points no other point beats in both size (smaller) and mAP (higher), by size."""
    front, best = [], -1.0
    for point in sorted(points, key=lambda p: (p.size_kb, -p.map_r11)):
        if point.map_r11 > best:
            front.append(point)
            best = point.map_r11
    return front


# ------------------------------------------------------------------ the search
@dataclass(frozen=True)
class SearchResult:
    """The float mAP, every verified point, the front and the smallest point within the drop."""

    float_map: float
    float_kb: float
    points: tuple[SearchPoint, ...]
    front: tuple[SearchPoint, ...]
    best: SearchPoint | None
    max_drop: float

    def to_dict(self) -> dict:
        return {"float_map": self.float_map, "float_kb": self.float_kb,
                "max_drop": self.max_drop, "best": self.best and self.best.to_dict(),
                "front": [p.to_dict() for p in self.front]}  # fmt: skip


class _Verifier:
    """Scores hull points once each, written to search.csv as they come."""

    def __init__(self, detector, base, float_map, score: Scorer, out_dir: Path, hull) -> None:
        self.detector, self.float_map, self.score = detector, float_map, score
        self.path = out_dir / SEARCH_CSV
        self.done = {r["key"]: r for r in _read(self.path)}
        self.hull = [(config_of(base, choice), predicted) for choice, predicted in hull]
        self.points: dict[int, SearchPoint] = {}

    def __call__(self, index: int) -> SearchPoint:
        return self.many([index])[0]

    def many(self, indices: Sequence[int], cancel=None) -> list[SearchPoint]:
        """The points at ``indices``; those not yet verified are scored together."""
        todo = []
        for index in dict.fromkeys(i for i in indices if i not in self.points):
            row = self.done.get(self._key(index))
            if row is None:
                todo.append(index)
            else:
                self._add(index, Score(float(row["map_r11"]), float(row["noise"])), row)
        configs = [self.hull[index][0] for index in todo]
        with closing(scored(self.score, configs)) as stream:
            for index, (_, found) in zip(todo, stream, strict=True):
                check(cancel)
                self._add(index, found, None)
        return [self.points[index] for index in indices]

    def _key(self, index: int) -> str:
        return config_key(self.hull[index][0].to_dict())

    def _add(self, index: int, found: Score, row: dict | None) -> None:
        config, predicted = self.hull[index]
        point = SearchPoint(config, size_kb(self.detector, config), found.map_r11,
                            self.float_map - found.map_r11, found.noise, predicted)  # fmt: skip
        if row is None:
            _append(self.path, POINT_FIELDS, {
                "key": self._key(index), "size_kb": f"{point.size_kb:.3f}",
                "map_r11": repr(point.map_r11), "drop": repr(point.drop),
                "noise": repr(point.noise), "predicted_noise": repr(predicted),
                "layer_bits": point.layer_bits, "config": json.dumps(config.to_dict())})  # fmt: skip
        self.points[index] = point


def _verify(verify: _Verifier, max_drop: float, cancel, progress) -> SearchPoint | None:
    """Spread points over the hull (scored together); then bisect the hull for the smallest
    point within ``max_drop``."""
    last = len(verify.hull) - 1
    steps = max(last, 1).bit_length() + FRONT_POINTS
    verify.many([round(k * last / max(FRONT_POINTS - 1, 1)) for k in range(FRONT_POINTS)], cancel)
    done = FRONT_POINTS
    if progress:
        progress(done, steps)
    lo, hi = 0, last  # index 0 (all float) is within any drop
    while lo < hi:
        check(cancel)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if verify(mid).drop <= max_drop else (lo, mid - 1)
        done += 1
        if progress:
            progress(min(done, steps), steps)
    if progress and done < steps:
        progress(steps, steps)
    best = verify(lo)
    return best if lo > 0 and best.drop <= max_drop else None


def run_search(
    detector,
    dataset,
    base: QuantConfig,
    bits: Sequence[int],
    max_drop: float,
    out_dir: str | Path,
    meta: dict,
    protocol: str = "official",
    score: Scorer | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> SearchResult:
    """The mixed-precision search (module docstring); ``progress(phase, done, total)``.

    meta: what the folder must match to resume (:func:`engine.sweep.sweep_meta`); the
    widths and the base config are added to it.  score: configs -> :class:`Score`
    (default :func:`local_scorer` on ``dataset``).
    """
    from squeezelens.engine.model.spec import layer_names
    from squeezelens.engine.sensitivity import quantized_layers

    if not 0 <= max_drop < 1:
        raise InputError(f"--max-drop must be in [0, 1), got {max_drop}")
    out = Path(out_dir)
    search = {
        "search_bits": sorted(set(bits)),
        "search_base": json.loads(config_key(base.to_dict())),
        "search_noise": NOISE_SUM,
    }
    check_or_write_meta(out, {**meta, **search}, (*CHECKED_META, *search))
    score = score or local_scorer(detector, dataset, protocol, cancel)
    float_map = _float_map(out, score)
    layers = quantized_layers(base, layer_names(detector.spec.variant))
    phase = (lambda name: lambda d, t: progress(name, d, t)) if progress else (lambda name: None)  # noqa: E731
    noise = measure_sensitivities(base, layers, bits, score, out, phase("sensitivity"), cancel)
    sizes = {layer: _parameters(detector, layer) for layer in layers}
    verify = _Verifier(detector, base, float_map, score, out, propose(layers, noise, sizes))
    best = _verify(verify, max_drop, cancel, phase("verification"))
    points = tuple(sorted(verify.points.values(), key=lambda p: p.size_kb))
    result = SearchResult(float_map, size_kb(detector, None), points,
                          tuple(pareto(points)), best, max_drop)  # fmt: skip
    write_json_atomic(out / RESULT_JSON, {**result.to_dict(), "meta": meta})
    return result


def _parameters(detector, layer: str) -> int:
    """A layer's kernel and bias elements."""
    weights = detector.float_weights
    return weights[f"{layer}/kernels"].size + weights[f"{layer}/biases"].size


def _float_map(out: Path, score: Scorer) -> float:
    """The float model's mAP (kept in search.csv under the key 'float')."""
    path = out / SEARCH_CSV
    row = next((r for r in _read(path) if r["key"] == "float"), None)
    if row is not None:
        return float(row["map_r11"])
    with closing(scored(score, [None])) as stream:
        [(_, found)] = list(stream)  # run out: a pool scorer then drops its tasks
    value = found.map_r11
    _append(
        path, POINT_FIELDS, {"key": "float", "map_r11": repr(value), "drop": "0.0", "noise": "0.0"}
    )
    return value
