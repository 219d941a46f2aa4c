"""Paint road users onto a background and label them from their masks.

:func:`render_objects` is the lower-level API behind :func:`generate_scene`:
give it any background, a camera and a list of :class:`ObjectSpec`, and it
draws the objects far to near (painter's algorithm, so nearer objects hide
farther ones), each into its own :class:`~engine.synth.canvas.Layer`, then
derives truncation and occlusion from the pixel counts of every layer's mask
(see :mod:`engine.synth.labels`).  Tests use it to build controlled scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from squeezelens.engine.synth.camera import Camera
from squeezelens.engine.synth.canvas import Layer
from squeezelens.engine.synth.labels import clip_box, object_label
from squeezelens.engine.synth.riders import draw_cyclist, draw_pedestrian
from squeezelens.engine.synth.specs import CAR, CYCLIST, DRAW_MARGIN, PEDESTRIAN, ObjectSpec
from squeezelens.engine.synth.vehicles import draw_car
from squeezelens.engine.types import GroundTruthObject

DRAWERS = {CAR: draw_car, PEDESTRIAN: draw_pedestrian, CYCLIST: draw_cyclist}

#: Direction *toward* the sun in the camera frame (y is down): high, to the left.
DEFAULT_SUN = np.array([-0.4, -0.8, 0.45]) / np.linalg.norm([-0.4, -0.8, 0.45])


@dataclass(frozen=True)
class RenderedObject:
    """What was drawn for one spec and what the label code made of it.

    full_box: inclusive pixel bounds (x1, y1, x2, y2) of the whole mask, not
              clipped to the image (None when nothing was drawn).
    mask_pixels / inside_pixels / visible_pixels: the mask's size, the part
              inside the image, and the part not painted over by nearer objects.
    label: the KITTI label, or None when nothing of the object is visible.
    """

    spec: ObjectSpec
    full_box: tuple[int, int, int, int] | None
    mask_pixels: int
    inside_pixels: int
    visible_pixels: int
    label: GroundTruthObject | None

    @property
    def truncation(self) -> float:
        """Fraction of the mask outside the image."""
        return 1.0 - self.inside_pixels / self.mask_pixels if self.mask_pixels else 1.0

    @property
    def hidden(self) -> float:
        """Fraction of the in-image mask covered by nearer objects."""
        return 1.0 - self.visible_pixels / self.inside_pixels if self.inside_pixels else 1.0


def object_layer(spec: ObjectSpec, camera: Camera) -> Layer | None:
    """An empty layer covering everything the spec's drawer may paint.

    None when the object is not in front of the camera (any corner closer
    than 0.5 m), which the scene sampler never produces.
    """
    corners = spec.box_corners(DRAW_MARGIN[spec.kind])
    if corners[:, 2].min() < 0.5:
        return None
    uv = camera.project(corners)
    pad = 3 + math.ceil(0.1 * camera.focal / corners[:, 2].min())
    x0, y0 = np.floor(uv.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + pad
    return Layer(int(x0), int(y0), int(x1), int(y1))


def draw_shadows(
    image: np.ndarray, specs: list[ObjectSpec], camera: Camera, strength: float = 0.45
) -> None:
    """Darken the ground under each object (soft contact shadows), in place."""
    height, width = image.shape[:2]
    for spec in specs:
        car = spec.kind == CAR
        ground = spec.box_corners(0.12 if car else -0.05)[[2, 3, 7, 6]]
        if ground[:, 2].min() < 0.5:
            continue
        uv = camera.project(ground)
        x0, y0 = np.maximum(np.floor(uv.min(axis=0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(uv.max(axis=0)).astype(int) + 3, [width, height])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(mask, [np.round((uv - [x0, y0]) * 16).astype(np.int32)], 1.0, cv2.LINE_8, 4)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, 0.015 * (x1 - x0)))
        patch = image[y0:y1, x0:x1].astype(np.float32)
        patch *= (1.0 - (strength if car else 0.7 * strength) * mask)[:, :, None]
        image[y0:y1, x0:x1] = patch.astype(np.uint8)


def render_objects(
    image: np.ndarray,
    specs: list[ObjectSpec],
    camera: Camera,
    sun: np.ndarray = DEFAULT_SUN,
    shadows: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[RenderedObject]]:
    """Draw ``specs`` onto a copy of ``image`` (H, W, 3) uint8 BGR, far to near.

    Returns (image, ids, rendered): ``ids`` is (H, W) int16 holding, per pixel,
    the index into ``specs`` of the object painted there (-1 for background);
    ``rendered[i]`` describes ``specs[i]``, including its label.
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    height, width = out.shape[:2]
    ids = np.full((height, width), -1, np.int16)
    if shadows:
        draw_shadows(out, specs, camera)
    counts: dict[int, tuple[tuple[int, int, int, int] | None, int, int]] = {}
    for i in sorted(range(len(specs)), key=lambda k: -specs[k].distance):
        layer = object_layer(specs[i], camera)
        if layer is None:
            counts[i] = (None, 0, 0)
            continue
        DRAWERS[specs[i].kind](layer, specs[i], camera, sun)
        total, inside = layer.composite(out, ids, i)
        counts[i] = (layer.mask_box(), total, inside)
    visible = np.bincount(ids.ravel().astype(np.int64) + 1, minlength=len(specs) + 1)[1:]
    rendered = []
    for i, spec in enumerate(specs):
        full_box, total, inside = counts[i]
        label = None
        if full_box is not None and inside > 0 and visible[i] > 0:
            hidden = 1.0 - visible[i] / inside
            label = object_label(
                spec, clip_box(full_box, width, height), 1.0 - inside / total, hidden
            )
        rendered.append(RenderedObject(spec, full_box, total, inside, int(visible[i]), label))
    return out, ids, rendered
