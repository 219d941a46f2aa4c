"""Drawing surfaces: an object-local layer with a coverage mask, and helpers.

Every object is drawn into its own :class:`Layer`, a BGRA patch that covers
the object's whole projected extent even where that extent leaves the image.
The alpha channel is the object's mask, so the label code can measure how
much of the object lies outside the image (truncation) and how much of it a
nearer object paints over (occlusion) without any guesswork.

Coordinates passed to the drawing methods are float image pixels; they are
drawn with 4 bits of sub-pixel precision (OpenCV's ``shift``) so that small,
far objects keep their shape.
"""

from __future__ import annotations

import cv2
import numpy as np

SHIFT = 4
_ONE = 1 << SHIFT

Color = tuple[int, int, int]


def _fixed(points: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Float pixel points (N, 2) to OpenCV fixed-point int32 (N, 2), origin-relative.

    No clipping is needed: :meth:`Camera.project` keeps depths >= 5 cm, so
    coordinates stay far inside int32 even at 16x sub-pixel scale.
    """
    rel = np.asarray(points, dtype=np.float64).reshape(-1, 2) - origin
    rel *= _ONE
    return np.rint(rel, out=rel).astype(np.int32)


def bgra(color: Color) -> tuple[int, int, int, int]:
    """An opaque BGRA tuple for drawing on a layer."""
    return (int(color[0]), int(color[1]), int(color[2]), 255)


class Layer:
    """A (h, w, 4) uint8 BGRA patch whose top-left corner is image pixel (x0, y0)."""

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0 = int(x0), int(y0)
        self.rgba = np.zeros((max(1, y1 - y0), max(1, x1 - x0), 4), np.uint8)
        self._origin = np.array([self.x0, self.y0], dtype=np.float64)

    @property
    def mask(self) -> np.ndarray:
        """(h, w) bool: the pixels this object covers."""
        return self.rgba[:, :, 3] > 0

    def fill(self, points: np.ndarray, color: Color) -> None:
        """Fill the polygon with vertices ``points`` (N, 2)."""
        cv2.fillPoly(self.rgba, [_fixed(points, self._origin)], bgra(color), cv2.LINE_8, SHIFT)

    def stroke(self, points: np.ndarray, color: Color, width: float, closed: bool = False) -> None:
        """Draw a polyline of ``width`` pixels (at least 1) through ``points``."""
        thickness = max(1, int(round(width)))
        pts = _fixed(points, self._origin)
        cv2.polylines(self.rgba, [pts], closed, bgra(color), thickness, cv2.LINE_8, SHIFT)

    def disk(self, center: np.ndarray, radius: float, color: Color) -> None:
        """Fill a disk of ``radius`` pixels (at least half a pixel)."""
        c = _fixed(center, self._origin)[0]
        r = max(int(round(radius * _ONE)), _ONE // 2)
        cv2.circle(self.rgba, (int(c[0]), int(c[1])), r, bgra(color), -1, cv2.LINE_8, SHIFT)

    def composite(self, image: np.ndarray, ids: np.ndarray, index: int) -> tuple[int, int]:
        """Paint the layer onto ``image`` (H, W, 3) and stamp ``index`` into ``ids`` (H, W).

        Returns (pixels in the whole mask, mask pixels inside the image).
        """
        alpha = self.rgba[:, :, 3]
        total = cv2.countNonZero(alpha)
        height, width = ids.shape
        ix0, iy0 = max(self.x0, 0), max(self.y0, 0)
        ix1 = min(self.x0 + alpha.shape[1], width)
        iy1 = min(self.y0 + alpha.shape[0], height)
        if ix1 <= ix0 or iy1 <= iy0:
            return total, 0
        rows = slice(iy0 - self.y0, iy1 - self.y0)
        cols = slice(ix0 - self.x0, ix1 - self.x0)
        sub = np.ascontiguousarray(alpha[rows, cols])
        inside = cv2.countNonZero(sub)
        if inside:
            colours = cv2.cvtColor(self.rgba[rows, cols], cv2.COLOR_BGRA2BGR)
            cv2.copyTo(colours, sub, image[iy0:iy1, ix0:ix1])  # writes through the view
            np.putmask(ids[iy0:iy1, ix0:ix1], sub > 0, index)
        return total, inside

    def mask_box(self) -> tuple[int, int, int, int] | None:
        """Inclusive image-pixel bounds (x1, y1, x2, y2) of the mask, unclipped."""
        x, y, w, h = cv2.boundingRect(np.ascontiguousarray(self.rgba[:, :, 3]))
        if w == 0 or h == 0:
            return None
        return (self.x0 + x, self.y0 + y, self.x0 + x + w - 1, self.y0 + y + h - 1)


def shade(color: Color, factor: float) -> Color:
    """Scale a BGR colour's brightness, saturating at 255."""
    b, g, r = color
    return (
        min(255, int(b * factor + 0.5)),
        min(255, int(g * factor + 0.5)),
        min(255, int(r * factor + 0.5)),
    )


def mix(color: Color, other: Color, t: float) -> Color:
    """Blend ``color`` toward ``other`` by ``t`` in [0, 1] (used for haze)."""
    t = min(1.0, max(0.0, t))
    s = 1.0 - t
    return (
        int(color[0] * s + other[0] * t + 0.5),
        int(color[1] * s + other[1] * t + 0.5),
        int(color[2] * s + other[2] * t + 0.5),
    )


def fill_polys(image: np.ndarray, polygons: list[np.ndarray] | np.ndarray, color: Color) -> None:
    """Fill several float-pixel polygons on a plain (H, W, 3) image in one call.

    ``polygons`` is a list of (k, 2) arrays or one (N, k, 2) array (converted
    to fixed point in a single batch, which matters for window grids).
    """
    if len(polygons) == 0:
        return
    if isinstance(polygons, np.ndarray):
        pts = list(_fixed(polygons, np.zeros(2)).reshape(polygons.shape))
    else:
        pts = [_fixed(p, np.zeros(2)) for p in polygons]
    cv2.fillPoly(image, pts, tuple(int(c) for c in color), cv2.LINE_8, SHIFT)


def stroke_image(image: np.ndarray, points: np.ndarray, color: Color, width: float) -> None:
    """Draw an open polyline on a plain (H, W, 3) image."""
    pts = _fixed(points, np.zeros(2))
    thickness = max(1, int(round(width)))
    cv2.polylines(image, [pts], False, tuple(int(c) for c in color), thickness, cv2.LINE_8, SHIFT)


def disk_image(image: np.ndarray, center: np.ndarray, radius: float, color: Color) -> None:
    """Fill a disk on a plain (H, W, 3) image."""
    c = _fixed(center, np.zeros(2))[0]
    r = max(int(round(radius * _ONE)), _ONE // 2)
    cv2.circle(
        image, (int(c[0]), int(c[1])), r, tuple(int(v) for v in color), -1, cv2.LINE_8, SHIFT
    )
