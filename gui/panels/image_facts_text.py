"""The lines "This image" shows: each changed box with its reason, the twins, the head split.

Plain text from the engine's records (:class:`engine.box_reasons.ImageReasons`,
:class:`engine.compare.TwinStats`, :class:`engine.diagnostics.ConvDetError`); no Qt.
A lost box's reason is the engine's own text (:meth:`BoxReason.text`); a new box
says what it is in words.
"""

from __future__ import annotations

import math
from typing import Any

from squeezelens.engine.diagnostics import HEADS

NEW_TEXT = {
    "background": "background",
    "duplicate": "duplicate",
    "mislocalized": "mislocalized",
    "misclassified": "misclassified",
    "both": "wrong class and place",
    "correct": "finds an object the reference missed",
    "ignored": "ignored (DontCare / small)",
}
HEAD_NAMES = {"class_probs": "class probs", "confidence": "confidence", "deltas": "box deltas"}


def new_text(reason: Any) -> str:
    """What a new box is: 'background', 'mislocalized, IoU 0.41', ..."""
    iou = "" if reason.iou is None else f", IoU {reason.iou:.2f}"
    return NEW_TEXT.get(reason.kind, reason.kind) + iou


def change_rows(result: Any, ref: Any, other: Any, ref_label: str,
                other_label: str) -> list[tuple[str, str, Any]]:  # fmt: skip
    """(text, kind, box xyxy) per lost, new and class-flipped box of ``result``; ``ref`` and
    ``other`` are its detections above the threshold (what the reasons index)."""
    cmp, reasons = result.comparison, result.reasons
    rows = []
    for i in cmp.lost:
        why = reasons and reasons.of_lost(i)
        tail = f" — {why.text()}" if why else f" ({ref_label} only)"
        rows.append((f"lost: {ref.class_name(i)} {ref.scores[i]:.2f}{tail}", "lost",
                     ref.boxes_xyxy[i]))  # fmt: skip
    for j in cmp.gained:
        what = reasons and reasons.of_new(j)
        tail = f" — {new_text(what)}" if what else f" ({other_label} only)"
        rows.append((f"new: {other.class_name(j)} {other.scores[j]:.2f}{tail}", "gained",
                     other.boxes_xyxy[j]))  # fmt: skip
    for m in cmp.flips:
        rows.append((f"flip: {ref.class_name(m.ref)} → {other.class_name(m.other)} "
                     f"(IoU {m.iou:.2f})", "flipped", ref.boxes_xyxy[m.ref]))  # fmt: skip
    return rows


def twins_text(twins: Any, other_label: str) -> str:
    """'Twins: 5 matched boxes, mean IoU 0.87, score shift median +0.03 (mean +0.02)'."""
    if twins is None:
        return ""
    if not twins.pairs:
        return f"Twins: no box of the reference has a {other_label.lower()} twin"
    median = twins.score_shift_quantiles[2]
    return (f"Twins: {twins.pairs} matched boxes, mean IoU {twins.mean_iou:.2f}, score shift "
            f"median {median:+.3f} (mean {twins.score_shift_mean:+.3f})")  # fmt: skip


def head_text(error: Any) -> str:
    """'Head error (SQNR): class probs 12.3 dB · confidence 8.1 dB · box deltas 20.4 dB'."""
    if error is None:
        return ""
    parts = []
    for h in HEADS:
        db = getattr(error, h).sqnr_db
        parts.append(f"{HEAD_NAMES[h]} {'∞' if math.isinf(db) else f'{db:.1f}'} dB")
    return "Head error (SQNR): " + " · ".join(parts)
