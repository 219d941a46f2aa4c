"""Detections in the KITTI result format, written and read back.

One ``<stem>.txt`` per image, one line per detection, 16 fields.  Two writers,
one per evaluation protocol:

* "official" (score-descending)::

      Car -1 -1 -10 x1 y1 x2 y2 -1 -1 -1 -1000 -1000 -1000 -10 score

  (truncation/occlusion -1, alpha -10 = "no orientation", so the devkit skips
  AOS; no 3D box), numbers as the shortest text that reads back to the same
  float32.
* "squeezedet", as SqueezeDet's ``kitti.evaluate_detections`` writes them:
  grouped by class, lower-case names, alpha and 3D fields 0.0, boxes with 2
  decimals and scores with 3 (Python's correctly rounded, ties-to-even
  formatting of the exact binary value)::

      car -1 -1 0.0 x1 y1 x2 y2 0.0 0.0 0.0 0.0 0.0 0.0 0.0 score

The devkit reads every number as a double.  :func:`written_values` gives
exactly those doubles, and the evaluation scores them, so the official devkit
run on the written files reports the same AP as :func:`evaluate_detections`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from squeezelens.engine.atomic import write_text_atomic
from squeezelens.engine.data.kitti import parse_label_line
from squeezelens.engine.errors import InputError
from squeezelens.engine.types import Detections

KITTI_CLASS_NAMES: Mapping[str, str] = {
    "car": "Car",
    "van": "Van",
    "truck": "Truck",
    "pedestrian": "Pedestrian",
    "person_sitting": "Person_sitting",
    "cyclist": "Cyclist",
    "tram": "Tram",
    "misc": "Misc",
    "dontcare": "DontCare",
}


def kitti_class_name(name: str) -> str:
    """The KITTI spelling of a class name ("car" -> "Car", "person_sitting" -> "Person_sitting")."""
    return KITTI_CLASS_NAMES.get(name.lower(), name[:1].upper() + name[1:])


WRITERS: tuple[str, ...] = ("official", "squeezedet")
SQUEEZEDET_BOX_DECIMALS = 2
SQUEEZEDET_SCORE_DECIMALS = 3


def _num(value: float) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="0")


def _check_writer(protocol: str) -> None:
    if protocol not in WRITERS:
        raise InputError(f"unknown KITTI writer {protocol!r} (use one of {', '.join(WRITERS)})")


def _official_lines(dets: Detections) -> list[str]:
    names = [kitti_class_name(n) for n in dets.class_names]
    lines = []
    for box, score, label in zip(dets.boxes_xyxy, dets.scores, dets.labels, strict=True):
        x1, y1, x2, y2 = (_num(v) for v in box)
        lines.append(
            f"{names[int(label)]} -1 -1 -10 {x1} {y1} {x2} {y2} -1 -1 -1 -1000 -1000 -1000 -10 {_num(score)}"
        )
    return lines


def _squeezedet_lines(dets: Detections) -> list[str]:
    b, s = SQUEEZEDET_BOX_DECIMALS, SQUEEZEDET_SCORE_DECIMALS
    lines = []
    for label, name in enumerate(dets.class_names):
        for i in np.flatnonzero(dets.labels == label):
            x1, y1, x2, y2 = (f"{float(v):.{b}f}" for v in dets.boxes_xyxy[i])
            lines.append(
                f"{name.lower()} -1 -1 0.0 {x1} {y1} {x2} {y2} "
                f"0.0 0.0 0.0 0.0 0.0 0.0 0.0 {float(dets.scores[i]):.{s}f}"
            )
    return lines


def format_kitti_lines(dets: Detections, protocol: str = "official") -> list[str]:
    """KITTI result lines of one image as the ``protocol``'s writer makes them.

    "official": the Detections' (score-descending) order; "squeezedet": grouped by
    class, score-descending within a class (see the module docstring).
    """
    _check_writer(protocol)
    return _official_lines(dets) if protocol == "official" else _squeezedet_lines(dets)


def written_values(dets: Detections, protocol: str = "official") -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, 4), scores (N,)) float64, in the Detections' order, exactly as the devkit
    reads them (``%lf``) from the lines :func:`format_kitti_lines` writes."""
    _check_writer(protocol)
    values = np.column_stack([dets.boxes_xyxy, dets.scores]).astype(np.float32)
    if protocol == "official":  # numpy's str of a float32 is the same shortest text
        text = values.astype(str)
    else:
        text = np.empty(values.shape, dtype=object)
        text[:, :4] = np.char.mod(f"%.{SQUEEZEDET_BOX_DECIMALS}f", values[:, :4].astype(float))
        text[:, 4] = np.char.mod(f"%.{SQUEEZEDET_SCORE_DECIMALS}f", values[:, 4].astype(float))
    parsed = np.asarray(text, dtype=str).astype(np.float64).reshape(-1, 5)
    return parsed[:, :4], parsed[:, 4]


def write_kitti_detections(
    out_dir: str | Path,
    detections: Mapping[str, Detections],
    stems: Iterable[str] | None = None,
    protocol: str = "official",
) -> list[Path]:
    """Write ``<out_dir>/<stem>.txt`` for every stem (default: every key of ``detections``).

    A stem without detections gets an empty file, as the devkit needs one file
    per evaluated image.  protocol: which writer ("official" or "squeezedet").
    Returns the written paths.
    """
    _check_writer(protocol)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the result folder ({exc.strerror or exc})", out_dir
        ) from exc
    written = []
    for stem in detections if stems is None else stems:
        dets = detections.get(stem) or Detections.empty()
        path = out_dir / f"{stem}.txt"
        text = "".join(line + "\n" for line in format_kitti_lines(dets, protocol))
        try:
            write_text_atomic(path, text)
        except OSError as exc:
            raise InputError(f"cannot write result file ({exc.strerror or exc})", path) from exc
        written.append(path)
    return written


def read_kitti_detection_file(
    path: str | Path, class_names: tuple[str, ...] = ("car", "pedestrian", "cyclist")
) -> Detections:
    """Read one KITTI result file; every line must have 16 fields (score last).

    Lines whose type is not among ``class_names`` (case-insensitive) are
    skipped: a Detections object can only hold the detector's classes.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("detection file not found", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read detection file ({exc})", path) from exc
    index = {n.lower(): i for i, n in enumerate(class_names)}
    boxes, scores, labels = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = parse_label_line(line, path, n)
        if obj.score is None:
            raise InputError(f"line {n}: a detection needs 16 fields (the score is missing)", path)
        label = index.get(obj.type.lower())
        if label is not None:
            boxes.append(obj.box_xyxy)
            scores.append(obj.score)
            labels.append(label)
    return Detections(
        np.reshape(boxes, (-1, 4)), np.asarray(scores), np.asarray(labels), tuple(class_names)
    )


def read_kitti_detections(
    folder: str | Path,
    stems: Iterable[str] | None = None,
    class_names: tuple[str, ...] = ("car", "pedestrian", "cyclist"),
) -> dict[str, Detections]:
    """Read a folder of KITTI result files into {stem: Detections}.

    folder: the folder of ``<stem>.txt`` files (or a devkit result folder whose
    ``data`` sub-folder holds them).  stems: the images to read (a missing file
    is an InputError); default every ``*.txt`` in the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("detection folder not found", folder)
    if stems is None and not any(folder.glob("*.txt")) and (folder / "data").is_dir():
        folder = folder / "data"
    if stems is None:
        stems = sorted(p.stem for p in folder.glob("*.txt"))
    return {s: read_kitti_detection_file(folder / f"{s}.txt", class_names) for s in stems}
