"""Sweeps of quantization configs against KITTI mAP, written point by point.

Each finished point is appended to ``sweep.csv`` at once (flushed and synced),
keyed by the full config and seed, so a killed sweep resumes where it stopped.
Deterministic (nearest) points are keyed with seed 0 whatever the seed, so a
rerun with another ``--seed`` redoes only the stochastic points (rows of older
csvs are read with the same rule).  ``sweep_meta.json`` records the checkpoint
hash, dataset, protocol and, for points with quantized activations, the hash of
the calibration image list; a folder made for another checkpoint, split or
calibration set is refused.  Inputs are decoded and pre-processed once and
reused by every point; only the weights change.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_json_atomic
from squeezelens.engine.errors import InputError
from squeezelens.engine.jobs import CancelToken, check

CSV_NAME, META_NAME = "sweep.csv", "sweep_meta.json"
# images per forward call; a task shard is cut at a multiple of it (engine.distributed.tasks),
# so that every batch, hence every number, is the single-process run's
BATCH = 4
FIELDS = (
    "key", "label", "bits", "rounding", "reserve_zero", "scale", "range", "grid", "seed",
    "map_r11", "map_r40", "map_r11_easy", "map_r11_moderate", "map_r11_hard",
    "map_r40_easy", "map_r40_moderate", "map_r40_hard", "config",
)  # fmt: skip


CHECKED_META = ("checkpoint_sha256", "kitti_root", "split", "protocol", "input_size")
CALIBRATION = "calibration_sha256"


def config_key(config: dict) -> str:
    """Sorted JSON of a config dict; nearest rounding draws nothing, so its seed is keyed as 0.
    Fields missing from an older row's config take their defaults (so its key is the same)."""
    from squeezelens.engine.quant.config import QuantConfig

    try:
        config = QuantConfig.from_dict(config).to_dict()
    except (InputError, TypeError):
        pass  # not a plain QuantConfig dict: keyed as it is
    if config.get("rounding") == "nearest" and config.get("seed", 0) != 0:
        config = {**config, "seed": 0}
    return json.dumps(config, sort_keys=True)


def _calibrated(config: dict) -> bool:
    """Whether a row's config used calibration images (activation bits, bias correction,
    AdaRound)."""
    return bool(
        config.get("activation_bits")
        or config.get("bias_correction")
        or config.get("rounding") == "adaround"
    )


@dataclass(frozen=True)
class SweepPoint:
    """One quantization config to score (quant None = the float baseline)."""

    quant: object | None

    @property
    def key(self) -> str:
        """The row key: the config as sorted JSON (seed 0 for nearest rounding), or 'float'."""
        return "float" if self.quant is None else config_key(self.quant.to_dict())

    @property
    def method(self) -> str:
        """The curve this point belongs to: everything but bits and seed."""
        if self.quant is None:
            return "float"
        q = self.quant
        zero = "zero" if q.reserve_zero else "no zero"
        label = f"{q.rounding}, {zero}, {q.scale}" + ("" if q.grid == "linear" else f", {q.grid}")
        extras = [
            f"range {q.range}" if q.range not in ("minmax", "symmetric") else "",
            "equalized" if q.equalize else "",
            "bias corrected" if q.bias_correction else "",
        ]
        return ", ".join([label, *filter(None, extras)])


def sweep_points(
    configs: Iterable, repeats: int = 1, include_float: bool = True
) -> list[SweepPoint]:
    """Expand configs: stochastic ones repeated over seeds seed..seed+repeats-1, deterministic
    ones once (with seed 0: their seed changes nothing)."""
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    points = [SweepPoint(None)] if include_float else []
    seen = {p.key for p in points}
    for q in configs:
        seeds = range(q.seed, q.seed + repeats) if q.rounding == "stochastic" else [0]
        for s in seeds:
            p = SweepPoint(replace(q, seed=s))
            if p.key not in seen:
                seen.add(p.key)
                points.append(p)
    return points


def _refuse(field: str, old: object, new: object, out_dir: Path) -> None:
    raise InputError(
        f"this folder was made for another {field.replace('_', ' ')} "
        f"({old!r}, now {new!r}); use a new --out", out_dir
    )  # fmt: skip


def _calibration_meta(old: dict, meta: dict, out_dir: Path) -> bool:
    """Check the calibration set; True when the folder's metadata should record ours.

    Only points with quantized activations depend on it: a sweep without any
    (meta value None) is never refused, and a folder without a recorded set
    takes ours unless it already holds activation rows (made with an unknown set).
    """
    new, before = meta.get(CALIBRATION), old.get(CALIBRATION)
    if new is None:
        return False
    if before is not None:
        if before != new:
            raise InputError(
                "this sweep folder was made with another calibration image set "
                "(--calib); use a new --out or the same images", out_dir
            )  # fmt: skip
        return False
    if any(_calibrated(_row_config(r)) for r in read_rows(out_dir)):
        raise InputError(
            "this sweep folder holds activation rows of an unrecorded calibration set; "
            "use a new --out", out_dir
        )  # fmt: skip
    return True


def sweep_meta(detector, dataset, protocol: str, calibration=None) -> dict:
    """What a sweep folder's sweep_meta.json records and a resumed sweep must match: the
    checkpoint (path, sha256), the dataset (root, split), the protocol, the input size, the
    calibration set of activation-bits points (a CalibrationSet, or None) and the versions.
    The CLI and the GUI both build it here."""
    from squeezelens.engine.provenance import versions

    checkpoint = getattr(detector, "checkpoint", None)
    record = calibration.record() if calibration is not None else None
    return {
        "checkpoint_sha256": checkpoint.sha256 if checkpoint else None,
        "checkpoint": checkpoint.path if checkpoint else None,
        "kitti_root": str(dataset.root), "split": dataset.split, "protocol": protocol,
        "input_size": list(detector.spec.input_size), "versions": versions(),
        CALIBRATION: record["sha256"] if record else None, "calibration": record,
    }  # fmt: skip


def check_or_write_meta(out_dir: Path, meta: dict, checked: Sequence[str] = CHECKED_META) -> None:
    """Refuse a folder made for another checkpoint, split, protocol or calibration set
    (or other ``checked`` fields); else record ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / META_NAME
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"unreadable sweep metadata ({exc})", path) from None
        for field in checked:
            if old.get(field) != meta.get(field):
                _refuse(field, old.get(field), meta.get(field), out_dir)
        if not _calibration_meta(old, meta, out_dir):
            return
        meta = {**old, CALIBRATION: meta[CALIBRATION], "calibration": meta.get("calibration")}
    write_json_atomic(path, meta)


def _row_config(row: dict) -> dict:
    """The config dict of a csv row ({} for the float row or an unreadable cell)."""
    try:
        config = json.loads(row.get("config") or "{}")
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def read_rows(out_dir: Path) -> list[dict]:
    """Rows already in sweep.csv, one per key (a torn last line from a kill is ignored).

    Keys are recomputed with :func:`config_key`, so rows of nearest points
    written with another seed by older versions count as done.
    """
    path = out_dir / CSV_NAME
    if not path.exists():
        return []
    with open(path, newline="") as f:
        text = f.read()
    if not text.endswith("\n"):  # killed while writing: the last line is incomplete
        text = text[: text.rfind("\n") + 1]
    rows, seen = [], set()
    for row in csv.DictReader(io.StringIO(text, newline="")):
        if row.get("config") is None or not row.get("map_r11"):
            continue
        config = _row_config(row)
        if config:
            row["key"] = config_key(config)
        if row["key"] not in seen:  # old nearest rows of several seeds: the first counts
            seen.add(row["key"])
            rows.append(row)
    return rows


def _row(point: SweepPoint, result) -> dict:
    m = result.to_json_dict()["map"]
    q = point.quant
    d = q.to_dict() if q is not None else {}
    row = {
        "key": point.key, "label": point.method,
        "bits": d.get("bits", "float"), "rounding": d.get("rounding", ""),
        "reserve_zero": d.get("reserve_zero", ""), "scale": d.get("scale", ""),
        "range": d.get("range", ""), "grid": d.get("grid", ""), "seed": d.get("seed", ""),
        "config": json.dumps(d, sort_keys=True) if d else "",
    }  # fmt: skip
    for proto in ("r11", "r40"):
        row[f"map_{proto}"] = f"{m[proto]['all']:.6f}"
        for diff in ("easy", "moderate", "hard"):
            row[f"map_{proto}_{diff}"] = f"{m[proto][diff]:.6f}"
    return row


def drop_torn_tail(out_dir: Path, name: str = CSV_NAME) -> None:
    """Cut a last line left without its newline by a kill, so the next row starts a line."""
    path = out_dir / name
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def append_row(
    out_dir: Path, row: dict, name: str = CSV_NAME, fields: Sequence[str] = FIELDS
) -> None:
    """Append one row to ``out_dir/name`` (a header first in a new file), synced to disk."""
    path = out_dir / name
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


class PreparedInputs:
    """Decoded, pre-processed network inputs of a dataset, kept for every sweep point.

    inputs: (N, h, w, 3) float32; scales: N (sx, sy) pairs.  read: how a record's
    image is obtained (default from its path; a Ray worker decodes shipped bytes).
    """

    def __init__(
        self,
        detector,
        records: Sequence,
        progress=None,
        cancel: CancelToken | None = None,
        read: Callable | None = None,
    ):
        from squeezelens.engine.evaluate import read_record
        from squeezelens.engine.prefetch import prefetch

        xs, self.scales, self.records = [], [], list(records)
        for i, (rec, image) in enumerate(prefetch(self.records, read or read_record)):
            check(cancel)
            if isinstance(image, BaseException):
                raise image if isinstance(image, InputError) else InputError(str(image), rec.path)
            x, s = detector.preprocess(image)
            xs.append(x)
            self.scales.append(s)
            if progress:
                progress(i + 1, len(self.records))
        self.inputs = np.stack(xs) if xs else np.zeros((0, 1, 1, 3), np.float32)

    def detect_all(
        self, detector, quant, batch: int = BATCH, cancel: CancelToken | None = None, on_raw=None
    ) -> dict:
        """Detections per stem under one quantization config; on_raw(start, raw outputs) sees
        each batch's raw ConvDet outputs (the search measures their noise there)."""
        out = {}
        for start in range(0, len(self.records), batch):
            check(cancel)
            raw = detector.forward(self.inputs[start : start + batch], quant)
            if on_raw is not None:
                on_raw(start, raw)
            for k, r in enumerate(raw):
                out[self.records[start + k].stem] = detector.decode(r, self.scales[start + k])
        return out


DetectPoints = Callable[[Sequence[SweepPoint]], Generator[tuple[SweepPoint, dict], None, None]]
"""A source of detections: a generator function that, given points, yields (point, detections
by stem) for each, in the points' order (closed early when its consumer stops)."""


def prepared_detections(
    detector, dataset, cancel: CancelToken | None = None, batch: int = BATCH
) -> DetectPoints:
    """The single-process source: the dataset's inputs prepared once (on the first point),
    then each point's detections in turn (:meth:`PreparedInputs.detect_all`, the unit of
    work a Ray worker runs on its shard too)."""

    def detect(points: Sequence[SweepPoint]) -> Generator[tuple[SweepPoint, dict], None, None]:
        if not points:
            return
        prepared = PreparedInputs(detector, dataset.records, cancel=cancel)
        for point in points:
            yield point, prepared.detect_all(detector, point.quant, batch=batch, cancel=cancel)

    return detect


def run_sweep(
    detector,
    dataset,
    points: Sequence[SweepPoint],
    out_dir: Path,
    meta: dict,
    protocol: str = "official",
    progress: Callable[[int, int, dict | None], None] | None = None,
    cancel: CancelToken | None = None,
    detect: DetectPoints | None = None,
) -> list[dict]:
    """Score every point not yet in ``out_dir/sweep.csv``; returns all rows (old and new).

    progress(done_points, total_points, row_just_finished_or_None).
    detect: where the detections come from (default :func:`prepared_detections`, in
    this process; :func:`squeezelens.engine.distributed.point_source` runs them on Ray).
    """
    from squeezelens.engine.eval import evaluate_detections

    out_dir = Path(out_dir)
    check_or_write_meta(out_dir, meta)
    drop_torn_tail(out_dir)
    rows = read_rows(out_dir)
    done = {r["key"] for r in rows}
    todo = [p for p in points if p.key not in done]
    if progress:
        progress(len(points) - len(todo), len(points), None)
    if not todo:
        return rows
    detect = detect or prepared_detections(detector, dataset, cancel)
    with closing(detect(todo)) as stream:
        for n, (point, dets) in enumerate(stream, start=1):
            result = evaluate_detections(
                dataset.records, dets, protocol=protocol, classes=tuple(detector.class_names)
            )
            row = _row(point, result)
            append_row(out_dir, row)
            rows.append(row)
            if progress:
                progress(len(points) - len(todo) + n, len(points), row)
    return rows


def summarize(
    rows: Iterable[dict], metric: str = "map_r11"
) -> dict[str, dict[int, tuple[float, float, int]]]:
    """Curve label -> {bits: (mean, std, n)} over seeds; the float baseline under 'float' at bits 32."""
    groups: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        bits = 32 if r["bits"] == "float" else int(r["bits"])
        groups.setdefault(r["label"], {}).setdefault(bits, []).append(float(r[metric]))
    return {
        label: {b: (float(np.mean(v)), float(np.std(v)), len(v)) for b, v in sorted(per.items())}
        for label, per in groups.items()
    }


def iter_product(lists: dict[str, Sequence]) -> Iterator[dict]:
    """Every combination of the given field -> values lists, as dicts."""
    keys = list(lists)
    for values in itertools.product(*(lists[k] for k in keys)):
        yield dict(zip(keys, values))
