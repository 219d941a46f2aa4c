"""Car drawer: a low-poly 3D car projected through the camera.

A car is a body box, a cabin frustum on top of it and four wheel cylinders,
all in the car's local frame (x forward, y down, z across), turned by
``rotation_y`` and projected.  Because the geometry is 3D, front, back, side
and every oblique view come out of the same code with correct perspective,
and the label's 3D box is the box the body was built from.

Faces of the two convex solids are drawn when they face the camera
(back-face culling), which is enough for a correct picture: the cabin sits on
top of the body and the camera is always above the body's top.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from squeezelens.engine.synth.camera import Camera, to_camera
from squeezelens.engine.synth.canvas import Color, Layer, mix, shade
from squeezelens.engine.synth.specs import ObjectSpec

# BGR paint colours with rough real-world frequencies (white/grey/black dominate).
PAINTS: tuple[tuple[Color, float], ...] = (
    ((228, 230, 232), 0.2),
    ((185, 187, 190), 0.14),
    ((115, 115, 118), 0.12),
    ((62, 62, 64), 0.1),
    ((32, 32, 34), 0.12),
    ((105, 45, 25), 0.06),
    ((175, 100, 45), 0.05),
    ((40, 40, 165), 0.07),
    ((45, 30, 105), 0.04),
    ((60, 95, 55), 0.03),
    ((150, 180, 200), 0.04),
    ((40, 185, 225), 0.03),
)

# Hexahedron corner i = 4*front + 2*bottom + right; faces list corners as
# (top-a, top-b, bottom-b, bottom-a) so face (u, v) runs across, top to bottom.
FACES = {
    "front": (4, 5, 7, 6),
    "back": (1, 0, 2, 3),
    "left": (0, 4, 6, 2),
    "right": (1, 5, 7, 3),
    "top": (0, 4, 5, 1),
}
TYRE: Color = (24, 24, 26)


@dataclass(frozen=True)
class CarLook:
    """Proportions and colours of one car, chosen from its style seed."""

    paint: Color
    glass: Color
    belt: float  # body top, fraction of height
    cabin_bottom: tuple[float, float]  # cabin x range at the belt, fraction of length
    cabin_top: tuple[float, float]  # cabin x range at the roof
    windows: int  # side windows per side


def car_look(rng: np.random.Generator, height: float) -> CarLook:
    """Pick a body shape (sedan, hatchback, van) and colours."""
    colours, weights = zip(*PAINTS)
    base = colours[rng.choice(len(colours), p=np.array(weights) / sum(weights))]
    paint = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in base)
    glass = tuple(int(v) for v in rng.integers(38, 70) + rng.integers(-6, 7, size=3))
    if height > 1.75:
        return CarLook(paint, glass, 0.5, (-0.49, 0.27), (-0.48, 0.12), 3)
    if rng.random() < 0.35:
        return CarLook(paint, glass, 0.55, (-0.47, 0.2), (-0.43, -0.02), 2)
    return CarLook(paint, glass, 0.56, (-0.36, 0.22), (-0.25, -0.03), 2)


def hexahedron(
    x_bottom: tuple[float, float],
    x_top: tuple[float, float],
    y_top: float,
    y_bottom: float,
    half_widths: tuple[float, float],
) -> np.ndarray:
    """(8, 3) local corners of a box-like solid; ``half_widths`` = (bottom, top)."""
    verts = []
    for front in (0, 1):
        for bottom in (0, 1):
            xs, hw = (x_bottom, half_widths[0]) if bottom else (x_top, half_widths[1])
            y = y_bottom if bottom else y_top
            verts += [(xs[front], y, -hw), (xs[front], y, hw)]
    return np.array(verts)


_FACE_NAMES = tuple(FACES)
_FACE_INDEX = np.array([FACES[n] for n in _FACE_NAMES])


def visible_faces(verts: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Faces of a convex camera-frame solid that face the camera: name -> (corners (4, 3), unit normal)."""
    quads = verts[_FACE_INDEX]  # (5, 4, 3)
    normals = np.cross(quads[:, 1] - quads[:, 0], quads[:, 3] - quads[:, 0])
    mids = quads.mean(axis=1)
    outward = np.sign(np.einsum("ij,ij->i", normals, mids - verts.mean(axis=0)))
    normals *= outward[:, None] / (np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12)
    facing = np.einsum("ij,ij->i", normals, -mids) > 1e-9
    return {name: (quads[k], normals[k]) for k, name in enumerate(_FACE_NAMES) if facing[k]}


def face_quad(quad: np.ndarray, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    """(4, 3) sub-rectangle of a face in its bilinear (u, v) coordinates."""
    top = lambda u: quad[0] + (quad[1] - quad[0]) * u  # noqa: E731
    bottom = lambda u: quad[3] + (quad[2] - quad[3]) * u  # noqa: E731
    at = lambda u, v: top(u) + (bottom(u) - top(u)) * v  # noqa: E731
    return np.array([at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)])


def lit(color: Color, normal: np.ndarray, sun: np.ndarray) -> Color:
    """Lambert shading with a strong ambient term: sunlit faces brighter."""
    return shade(color, 0.62 + 0.5 * max(0.0, float(np.dot(normal, sun))))


def _features(name: str, solid: str, look: CarLook) -> list[tuple[tuple, Color]]:
    """Decorations of one face as ((u0, u1, v0, v1), colour) rectangles."""
    dark = shade(look.paint, 0.55)
    if solid == "cabin":
        if name in ("front", "back"):
            glass = mix(look.glass, (150, 145, 140), 0.25 if name == "front" else 0.1)
            return [((0.07, 0.93, 0.08, 0.97), glass)]
        if name == "top":
            return []
        n = look.windows
        cuts = np.linspace(0.05, 0.95, n + 1)
        return [((a + 0.02, b - 0.02, 0.12, 0.96), look.glass) for a, b in zip(cuts, cuts[1:])]
    if name == "front":
        light = (205, 225, 232)
        return [
            ((0.04, 0.24, 0.12, 0.38), light),
            ((0.76, 0.96, 0.12, 0.38), light),
            ((0.3, 0.7, 0.2, 0.5), (45, 45, 48)),
            ((0.0, 1.0, 0.74, 1.0), dark),
            ((0.4, 0.6, 0.56, 0.72), (225, 225, 225)),
        ]
    if name == "back":
        red = (35, 30, 175)
        return [
            ((0.03, 0.21, 0.1, 0.36), red),
            ((0.79, 0.97, 0.1, 0.36), red),
            ((0.0, 1.0, 0.76, 1.0), dark),
            ((0.38, 0.62, 0.42, 0.62), (225, 225, 225)),
        ]
    if name in ("left", "right"):
        return [((0.0, 1.0, 0.82, 1.0), dark), ((0.5, 0.505, 0.05, 0.82), dark)]
    return []


def _draw_solid(layer, camera, verts, solid, look, sun) -> set[str]:
    """Draw the visible faces of a solid with their decorations; return their names.

    All face and decoration quads are collected first and projected in one batch.
    """
    faces = visible_faces(verts)
    quads, colours = [], []
    for name, (quad, normal) in faces.items():
        base = look.paint if solid == "body" or name == "top" else shade(look.paint, 0.85)
        quads.append(quad)
        colours.append(lit(base, normal, sun))
        for (u0, u1, v0, v1), colour in _features(name, solid, look):
            quads.append(face_quad(quad, u0, u1, v0, v1))
            colours.append(lit(colour, normal, sun))
    if quads:
        pixels = camera.project(np.concatenate(quads)).reshape(-1, 4, 2)
        for poly, colour in zip(pixels, colours):
            layer.fill(poly, colour)
    return set(faces)


def _wheel_ring(x: float, radius: float, z: float, centre: float, upper: bool = False):
    """(n, 3) local points on a circle about (x, -centre, z) in the car's side plane.

    ``upper`` gives only the upper half (a closed half-disk outline: an arch).
    """
    n = 14
    t = np.linspace(np.pi, 2 * np.pi, n) if upper else np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([x + radius * np.cos(t), -centre + radius * np.sin(t), np.full(n, z)], axis=1)


def draw_car(layer: Layer, spec: ObjectSpec, camera: Camera, sun: np.ndarray) -> None:
    """Draw a car into ``layer``: wheels, body, cabin, then the near-side wheels on top."""
    h, w, length = spec.dimensions_hwl
    look = car_look(np.random.default_rng(spec.style_seed), h)
    place = lambda pts: to_camera(pts, spec.rotation_y, spec.location)  # noqa: E731
    radius = 0.31 if h < 1.75 else 0.36
    axle = length / 2 - max(0.7, 0.2 * length)
    clearance, belt = 0.55 * radius, look.belt * h
    body = place(
        hexahedron(
            (-length / 2, length / 2),
            (-0.49 * length, 0.48 * length),
            -belt,
            -clearance,
            (w / 2, 0.47 * w),
        )
    )
    cb, ct = look.cabin_bottom, look.cabin_top
    cabin = place(
        hexahedron(
            (cb[0] * length, cb[1] * length),
            (ct[0] * length, ct[1] * length),
            -h,
            -belt,
            (0.46 * w, 0.4 * w),
        )
    )
    for x in (-axle, axle):
        for side in (-1, 1):
            rings = [_wheel_ring(x, radius, side * (w / 2 - d), radius) for d in (0.02, 0.24)]
            pts = camera.project(place(np.concatenate(rings))).astype(np.float32)
            layer.fill(cv2.convexHull(pts).reshape(-1, 2), TYRE)
    faces = _draw_solid(layer, camera, body, "body", look, sun)
    _draw_solid(layer, camera, cabin, "cabin", look, sun)
    for side, name in ((-1, "left"), (1, "right")):
        if name in faces:
            _near_wheels(layer, camera, place, side * (w / 2 + 0.005), axle, radius)


def _near_wheels(layer: Layer, camera: Camera, place, z: float, axle: float, radius: float):
    """Arches, tyres and rims of the wheels on the visible side."""
    for x in (-axle, axle):
        for scale, colour, upper in (
            (1.12, (30, 30, 32), True),
            (1.0, TYRE, False),
            (0.58, (150, 152, 155), False),
        ):
            ring = _wheel_ring(x, radius * scale, z, radius, upper)
            layer.fill(camera.project(place(ring)), colour)
