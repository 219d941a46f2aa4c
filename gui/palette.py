"""Colours and line styles of the three box sources (Okabe–Ito, colour-blind safe).

Colour is never the only cue: each source also has its own line style
(ground truth white-on-black dashes, float solid, quantized dotted), and
changes (lost / gained / class flip) get a marker in addition to a colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPen

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "white": "#FFFFFF",
}


@dataclass(frozen=True)
class SourceStyle:
    """How one box source is drawn."""

    key: str
    label: str
    color: str
    style: Qt.PenStyle
    width: float
    backing: str | None = None  # a solid line under the dashes (readable on any image)

    def pen(self, width_scale: float = 1.0, color: str | None = None) -> QPen:
        """A cosmetic pen (constant width on screen whatever the zoom)."""
        pen = QPen(QColor(color or self.color))
        pen.setWidthF(self.width * width_scale)
        pen.setStyle(self.style)
        pen.setCosmetic(True)
        return pen

    def backing_pen(self, width_scale: float = 1.0) -> QPen | None:
        """The solid pen drawn under :meth:`pen` (None when the style has no backing)."""
        if self.backing is None:
            return None
        pen = QPen(QColor(self.backing))
        pen.setWidthF(self.width * width_scale)
        pen.setCosmetic(True)
        return pen


GT = SourceStyle(
    "gt", "Ground truth", OKABE_ITO["white"], Qt.PenStyle.DashLine, 1.6, OKABE_ITO["black"]
)
REF = SourceStyle("ref", "Float", OKABE_ITO["bluish_green"], Qt.PenStyle.SolidLine, 2.0)
OTHER = SourceStyle("other", "Quantized", OKABE_ITO["orange"], Qt.PenStyle.DotLine, 2.6)

# Highlights of what changed (drawn as a thicker outline + badge).
LOST = OKABE_ITO["sky_blue"]
GAINED = OKABE_ITO["vermillion"]
FLIPPED = OKABE_ITO["reddish_purple"]

# Plot series colours (float vs quantized PR curves; sweeps use squeezelens.cli.plots.PALETTE).
CURVE_REF = OKABE_ITO["bluish_green"]
CURVE_OTHER = OKABE_ITO["orange"]
LEVEL_LINES = OKABE_ITO["vermillion"]
HIST_FLOAT = OKABE_ITO["blue"]
HIST_QUANT = OKABE_ITO["orange"]
CLIPPED_TAIL = OKABE_ITO["reddish_purple"]  # shaded beyond the grid's ends (clipped weights)


def styles(ref_label: str = "Float", other_label: str = "Quantized") -> dict[str, SourceStyle]:
    """The three source styles, with the labels of the current comparison mode."""
    from dataclasses import replace

    return {
        "gt": GT,
        "ref": replace(REF, label=ref_label),
        "other": replace(OTHER, label=other_label),
    }
