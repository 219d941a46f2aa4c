"""Detections in the official KITTI result format, written and read back.

One ``<stem>.txt`` per image, one line per detection, 16 fields::

    Car -1 -1 -10 x1 y1 x2 y2 -1 -1 -1 -1000 -1000 -1000 -10 score

(truncation/occlusion -1, alpha -10 = "no orientation", so the devkit skips
AOS; no 3D box).  Numbers are written with the shortest text that reads back
to the same float32, so re-scoring the files gives exactly the in-memory AP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from engine.data.kitti import parse_label_line
from engine.errors import InputError
from engine.types import Detections

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


def _num(value: float) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="0")


def format_kitti_lines(dets: Detections) -> list[str]:
    """KITTI result lines of one image, in the Detections' (score-descending) order."""
    names = [kitti_class_name(n) for n in dets.class_names]
    lines = []
    for box, score, label in zip(dets.boxes_xyxy, dets.scores, dets.labels, strict=True):
        x1, y1, x2, y2 = (_num(v) for v in box)
        lines.append(
            f"{names[int(label)]} -1 -1 -10 {x1} {y1} {x2} {y2} -1 -1 -1 -1000 -1000 -1000 -10 {_num(score)}"
        )
    return lines


def write_kitti_detections(
    out_dir: str | Path,
    detections: Mapping[str, Detections],
    stems: Iterable[str] | None = None,
) -> list[Path]:
    """Write ``<out_dir>/<stem>.txt`` for every stem (default: every key of ``detections``).

    A stem without detections gets an empty file, as the devkit needs one file
    per evaluated image.  Returns the written paths.
    """
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
        text = "".join(line + "\n" for line in format_kitti_lines(dets))
        try:
            path.write_text(text, encoding="utf-8")
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
