"""KITTI object labels and folder layouts.

A KITTI label line has 15 whitespace-separated fields (16 in a result file,
where the last one is the detection score)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

The official devkit reads them with ``fscanf`` and silently drops lines it
cannot parse; here a malformed line is an :class:`InputError` naming the file
and the line number, because a silently shortened ground truth changes every
AP without a trace.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from squeezelens.engine.data.images import IMAGE_SUFFIXES, list_images
from squeezelens.engine.errors import InputError
from squeezelens.engine.types import GroundTruthObject, ImageRecord

FIELD_NAMES: tuple[str, ...] = (
    "type",
    "truncated",
    "occluded",
    "alpha",
    "x1",
    "y1",
    "x2",
    "y2",
    "h",
    "w",
    "l",
    "x",
    "y",
    "z",
    "rotation_y",
    "score",
)
SPLITS: tuple[str, ...] = ("train", "val", "trainval", "all")


def _number(token: str, index: int, where: str, path: str | Path) -> float:
    """Parse field ``index`` of a label line as a finite float."""
    try:
        value = float(token)
    except ValueError:
        value = math.nan
        bad = True
    else:
        bad = not math.isfinite(value)
    if bad:
        raise InputError(
            f"{where}: field {index + 1} ({FIELD_NAMES[index]}) is not a number: {token!r}", path
        )
    return value


def parse_label_line(line: str, path: str | Path = "<label>", lineno: int = 1) -> GroundTruthObject:
    """Parse one non-empty KITTI label line (15 fields, or 16 with a score)."""
    fields = line.split()
    where = f"line {lineno}"
    if len(fields) not in (15, 16):
        raise InputError(f"{where}: expected 15 fields (16 with a score), got {len(fields)}", path)
    values = [_number(tok, i, where, path) for i, tok in enumerate(fields[1:], start=1)]
    occluded = values[1]
    if occluded != int(occluded):
        raise InputError(f"{where}: field 3 (occluded) must be an integer, got {fields[2]!r}", path)
    return GroundTruthObject(
        type=fields[0],
        truncated=values[0],
        occluded=int(occluded),
        alpha=values[2],
        box_xyxy=(values[3], values[4], values[5], values[6]),
        dimensions_hwl=(values[7], values[8], values[9]),
        location_xyz=(values[10], values[11], values[12]),
        rotation_y=values[13],
        score=values[14] if len(values) == 15 else None,
    )


def parse_label_text(text: str, path: str | Path = "<label>") -> tuple[GroundTruthObject, ...]:
    """Parse the text of a label file; blank lines are skipped."""
    return tuple(
        parse_label_line(line, path, n)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    )


def parse_label_file(path: str | Path) -> tuple[GroundTruthObject, ...]:
    """Read every object of one KITTI ``label_2/<stem>.txt`` file (file order kept)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("label file not found", path) from exc
    except UnicodeDecodeError as exc:
        raise InputError("label file is not UTF-8 text", path) from exc
    except OSError as exc:
        raise InputError(f"cannot read label file ({exc.strerror or exc})", path) from exc
    return parse_label_text(text, path)


@dataclass(frozen=True)
class Dataset:
    """An ordered, immutable set of images with their (possibly absent) labels.

    root: the folder the user gave (resolved).
    split: "train", "val", "trainval", "all" (every image), or "images" for a
    plain folder of images without labels.
    records: one :class:`ImageRecord` per image, in split-file order.
    """

    root: Path
    split: str
    records: tuple[ImageRecord, ...]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ImageRecord:
        return self.records[index]

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(r.stem for r in self.records)

    @property
    def has_labels(self) -> bool:
        """True when every image has a label file (so it can be evaluated)."""
        return bool(self.records) and all(r.has_labels for r in self.records)

    def record(self, stem: str) -> ImageRecord:
        """The record of an image by file stem; KeyError when absent."""
        for r in self.records:
            if r.stem == stem:
                return r
        raise KeyError(stem)


@dataclass(frozen=True)
class _Layout:
    image_dir: Path
    label_dir: Path | None
    imagesets_dir: Path | None


def _find_layout(root: Path) -> _Layout | None:
    """Locate image_2 / label_2 / ImageSets for the usual ways of naming a KITTI root.

    Accepted: the KITTI root (``root/training/image_2``), the ``training``
    folder itself (``root/image_2``), or the ``image_2`` folder with a sibling
    ``label_2``.  ``testing/image_2`` (no labels) is used when no training exists.
    """
    candidates = [root / "training", root, root / "testing"]
    if root.name == "image_2":
        candidates.append(root.parent)
    for base in candidates:
        image_dir = base / "image_2"
        if not image_dir.is_dir():
            continue
        label_dir = base / "label_2"
        sets = [base.parent / "ImageSets", base / "ImageSets", root / "ImageSets"]
        return _Layout(
            image_dir=image_dir,
            label_dir=label_dir if label_dir.is_dir() else None,
            imagesets_dir=next((s for s in sets if s.is_dir()), None),
        )
    return None


def _images_by_stem(image_dir: Path) -> dict[str, Path]:
    """Map file stem -> image path; .png wins over .jpg etc. for the same stem."""
    rank = {s: i for i, s in enumerate(IMAGE_SUFFIXES)}
    found: dict[str, Path] = {}
    for path in list_images(image_dir):
        old = found.get(path.stem)
        if old is None or rank[path.suffix.lower()] < rank[old.suffix.lower()]:
            found[path.stem] = path
    return found


def _read_split(layout: _Layout, split: str, root: Path) -> tuple[Path, list[tuple[int, str]]]:
    """The split file and its (line number, stem) entries (blank lines skipped)."""
    where = layout.imagesets_dir or (layout.image_dir.parent.parent / "ImageSets")
    split_file = where / f"{split}.txt"
    if not split_file.is_file():
        raise InputError(
            f"split file {split_file} not found; use split 'all' to take every image", root
        )
    try:
        lines = split_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read split file ({exc})", split_file) from exc
    entries: list[tuple[int, str]] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        stem = line.strip()
        if not stem:
            continue
        if stem in seen:
            raise InputError(f"line {n}: image {stem!r} is listed twice", split_file)
        seen.add(stem)
        entries.append((n, stem))
    return split_file, entries


def _split_stems(layout: _Layout, split: str, root: Path, images: dict[str, Path]) -> list[str]:
    """Stems of the split, each checked to have an image file."""
    if split == "all":
        return sorted(images)
    split_file, entries = _read_split(layout, split, root)
    for n, stem in entries:
        if stem not in images:
            raise InputError(
                f"line {n}: image {stem!r} not found in {layout.image_dir}", split_file
            )
    return [stem for _, stem in entries]


def _kitti_records(
    layout: _Layout, stems: list[str], images: dict[str, Path]
) -> tuple[ImageRecord, ...]:
    records = []
    for stem in stems:
        objects: tuple[GroundTruthObject, ...] = ()
        if layout.label_dir is not None:
            objects = parse_label_file(layout.label_dir / f"{stem}.txt")
        records.append(ImageRecord(stem, str(images[stem]), objects, layout.label_dir is not None))
    return tuple(records)


def available_splits(root: str | Path) -> list[str]:
    """The splits :func:`open_dataset` can open for ``root``: those with a split file, then "all".

    Split files are looked up where :func:`open_dataset` looks (ImageSets
    beside or above ``training``, or in ``root``): train, val and trainval
    first (in that order) when present, then any other ``ImageSets/*.txt``
    by name, then "all".  A plain image folder (no KITTI layout) has no
    splits: [].  Raises InputError when ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError("dataset folder not found" if not root.exists() else
                         "dataset path is not a folder", root)  # fmt: skip
    layout = _find_layout(root.resolve())
    if layout is None:
        return []
    where = layout.imagesets_dir or (layout.image_dir.parent.parent / "ImageSets")
    files = where.glob("*.txt") if where.is_dir() else ()
    found = {p.stem for p in files if p.is_file() and not p.stem.startswith(".")}
    known = [s for s in SPLITS if s in found and s != "all"]
    return [*known, *sorted(found - set(known) - {"all"}), "all"]


def open_dataset(root: str | Path, split: str = "val") -> Dataset:
    """Open a KITTI object folder (or a plain folder of images) as a :class:`Dataset`.

    root: a KITTI root holding ``training/image_2``, ``training/label_2`` and
    ``ImageSets/{train,val,trainval}.txt``; or the ``training`` folder; or its
    ``image_2`` folder; or any folder of .png/.jpg images (then the split is
    ignored and ``has_labels`` is False).
    split: "train", "val", "trainval" (read from ImageSets) or "all".

    Raises InputError for a missing folder, a folder that is neither KITTI nor
    holds images, a missing split file, a split naming a missing image, a
    missing or malformed label file.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError("dataset folder not found", root)
    if not root.is_dir():
        raise InputError("dataset path is not a folder", root)
    if not split or any(c in split for c in "/\\") or split.startswith("."):
        raise InputError(f"invalid split name {split!r} (use one of {', '.join(SPLITS)})")
    root = root.resolve()
    layout = _find_layout(root)
    if layout is None:
        paths = list_images(root)
        if not paths:
            raise InputError("not a KITTI folder (no training/image_2) and holds no images", root)
        return Dataset(root, "images", tuple(ImageRecord(p.stem, str(p)) for p in paths))
    images = _images_by_stem(layout.image_dir)
    if not images:
        raise InputError("image folder holds no .png/.jpg images", layout.image_dir)
    stems = _split_stems(layout, split, root, images)
    return Dataset(root, split, _kitti_records(layout, stems, images))
