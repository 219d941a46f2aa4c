"""KITTI labels from what was actually drawn, and the label_2 text format.

The renderer measures each object's mask: all of it (even outside the
image), the part inside the image and the part still visible after nearer
objects were painted.  From those three pixel counts this module derives
KITTI's fields:

* box: the bounding box of the object's full extent clipped to the image, in
  KITTI's inclusive pixel coordinates (a box touching the right border ends
  at ``width - 1``); occluded parts count, as KITTI's annotators drew them;
* truncated: the fraction of the mask outside the image;
* occluded: 0 when less than 5 % of the in-image mask is hidden by nearer
  objects, 1 up to half hidden, 2 beyond;
* DontCare (KITTI's -1/-10/-1000 placeholders) for objects too small (box
  under 12 px tall or 4 px wide), more than 80 % hidden or more than 90 %
  outside the image, which a detector should neither learn nor be blamed for.
"""

from __future__ import annotations

from pathlib import Path

from squeezelens.engine.errors import InputError
from squeezelens.engine.synth.camera import observation_angle, wrap_angle
from squeezelens.engine.synth.specs import DONT_CARE, ObjectSpec
from squeezelens.engine.types import GroundTruthObject

MIN_BOX_HEIGHT = 12
MIN_BOX_WIDTH = 4
OCCLUSION_LEVELS = (0.05, 0.5)
DONT_CARE_HIDDEN = 0.8
DONT_CARE_TRUNCATED = 0.9

Box = tuple[float, float, float, float]


def occlusion_level(hidden: float) -> int:
    """KITTI occlusion state from the hidden fraction of the in-image mask."""
    return 0 if hidden < OCCLUSION_LEVELS[0] else 1 if hidden < OCCLUSION_LEVELS[1] else 2


def clip_box(full_box: tuple[int, int, int, int], width: int, height: int) -> Box:
    """Clip an inclusive pixel box to the image, as floats."""
    x1, y1, x2, y2 = full_box
    return (
        float(max(x1, 0)),
        float(max(y1, 0)),
        float(min(x2, width - 1)),
        float(min(y2, height - 1)),
    )


def reported_truncation(fraction: float) -> float:
    """Two-decimal truncation that stays > 0 for any cut object and < 1 for any visible one."""
    if fraction <= 0.0:
        return 0.0
    return min(max(round(fraction, 2), 0.01), 0.99)


def dont_care(box: Box) -> GroundTruthObject:
    """A DontCare region with KITTI's placeholder values."""
    return GroundTruthObject(DONT_CARE, -1.0, -1, -10.0, box)


def object_label(spec: ObjectSpec, box: Box, truncation: float, hidden: float) -> GroundTruthObject:
    """The label of a drawn object, or DontCare when it is too small or too hidden."""
    too_small = box[3] - box[1] < MIN_BOX_HEIGHT or box[2] - box[0] < MIN_BOX_WIDTH
    if too_small or hidden > DONT_CARE_HIDDEN or truncation > DONT_CARE_TRUNCATED:
        return dont_care(box)
    x, y, z = spec.location
    r2 = lambda v: round(float(v), 2) + 0.0  # noqa: E731  (+0.0 turns -0.0 into 0.0)
    return GroundTruthObject(
        type=spec.kind,
        truncated=reported_truncation(truncation),
        occluded=occlusion_level(hidden),
        alpha=r2(observation_angle(spec.rotation_y, x, z)),
        box_xyxy=box,
        dimensions_hwl=tuple(r2(v) for v in spec.dimensions_hwl),  # type: ignore[arg-type]
        location_xyz=(r2(x), r2(y), r2(z)),
        rotation_y=r2(wrap_angle(spec.rotation_y)),
    )


def format_label(obj: GroundTruthObject) -> str:
    """One label_2 line: 15 space-separated fields, floats as ``%.2f`` like KITTI."""
    box = " ".join(f"{v:.2f}" for v in obj.box_xyxy)
    if obj.type == DONT_CARE:
        return f"{DONT_CARE} -1 -1 -10 {box} -1 -1 -1 -1000 -1000 -1000 -10"
    dims = " ".join(f"{v:.2f}" for v in obj.dimensions_hwl)
    loc = " ".join(f"{v:.2f}" for v in obj.location_xyz)
    return (
        f"{obj.type} {obj.truncated:.2f} {int(obj.occluded)} {obj.alpha:.2f} "
        f"{box} {dims} {loc} {obj.rotation_y:.2f}"
    )


def parse_label(line: str, path: str | Path | None = None) -> GroundTruthObject:
    """Parse one label_2 line (15 fields, an optional 16th score)."""
    fields = line.split()
    if len(fields) not in (15, 16):
        raise InputError(f"expected 15 label fields, found {len(fields)}", path)
    try:
        v = [float(f) for f in fields[1:]]
    except ValueError as exc:
        raise InputError(f"non-numeric label field ({exc})", path) from None
    return GroundTruthObject(
        type=fields[0],
        truncated=v[0],
        occluded=int(v[1]),
        alpha=v[2],
        box_xyxy=(v[3], v[4], v[5], v[6]),
        dimensions_hwl=(v[7], v[8], v[9]),
        location_xyz=(v[10], v[11], v[12]),
        rotation_y=v[13],
        score=v[14] if len(v) == 15 else None,
    )


def write_labels(path: Path, objects: list[GroundTruthObject]) -> None:
    """Write a label_2 file (an empty file for a scene without objects)."""
    text = "".join(format_label(o) + "\n" for o in objects)
    Path(path).write_text(text, encoding="ascii")
