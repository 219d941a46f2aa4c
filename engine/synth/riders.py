"""Pedestrian and cyclist drawers: articulated 3D stick figures with volume.

A figure is a list of :class:`Part` primitives in the object's local frame
(x forward, y down with 0 on the ground, z across): capsules (limbs, frame
tubes, tyres), flat polygons (torso) and disks (heads, hubs).  Each part is
projected through the camera, its thickness scaled by 1/depth, and the parts
are painted far to near, so the far leg goes behind the torso and the near
arm in front of it from any viewing angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.synth.camera import Camera, to_camera
from squeezelens.engine.synth.canvas import Color, Layer
from squeezelens.engine.synth.specs import ObjectSpec

SKIN: tuple[Color, ...] = (
    (150, 185, 225),
    (120, 160, 205),
    (95, 130, 175),
    (60, 85, 120),
    (45, 60, 85),
)
HAIR: tuple[Color, ...] = (
    (25, 25, 30),
    (30, 45, 70),
    (40, 70, 110),
    (110, 160, 190),
    (140, 140, 145),
)
TROUSERS: tuple[Color, ...] = (
    (110, 70, 40),
    (35, 35, 38),
    (90, 90, 95),
    (120, 150, 165),
    (60, 50, 40),
    (80, 100, 110),
)


@dataclass(frozen=True)
class Part:
    """One primitive: 'line' (capsule of half-width ``radius``), 'poly', 'disk' or 'head'."""

    kind: str
    points: np.ndarray  # (k, 3) local coordinates, metres
    radius: float
    color: Color
    closed: bool = False
    accent: Color | None = None  # a head's hair or helmet colour


def P(x: float, up: float, z: float = 0.0) -> np.ndarray:
    """A local point from (forward, height above ground, across)."""
    return np.array([x, -up, z], dtype=np.float64)


def line(points: list[np.ndarray], radius: float, color: Color, closed: bool = False) -> Part:
    """A capsule through ``points`` of half-width ``radius`` metres."""
    return Part("line", np.array(points), radius, color, closed)


def random_color(rng: np.random.Generator) -> Color:
    """A clothing colour: mostly muted, sometimes bright, sometimes black or white."""
    r = rng.random()
    if r < 0.15:
        return tuple(int(v) for v in rng.integers(20, 45, size=3))  # type: ignore[return-value]
    if r < 0.25:
        return tuple(int(v) for v in rng.integers(200, 240, size=3))  # type: ignore[return-value]
    saturation = 0.75 if r < 0.6 else 0.35
    base = rng.integers(40, 230, size=3).astype(float)
    grey = base.mean()
    return tuple(int(np.clip(grey + (b - grey) * saturation * 1.6, 0, 255)) for b in base)  # type: ignore[return-value]


def draw_parts(layer: Layer, parts: list[Part], spec: ObjectSpec, camera: Camera) -> None:
    """Project and paint ``parts`` far to near (painter's algorithm per part).

    All points are transformed and projected in one batch; a part's depth is
    the distance of its points' mean from the camera.
    """
    counts = np.array([len(p.points) for p in parts])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pts = to_camera(np.concatenate([p.points for p in parts]), spec.rotation_y, spec.location)
    uv = camera.project(pts)
    means = np.add.reduceat(pts, starts, axis=0) / counts[:, None]
    depth = np.sqrt((means**2).sum(axis=1))
    for i in np.argsort(-depth, kind="stable"):
        part, lo, hi = parts[i], starts[i], starts[i] + counts[i]
        ppm = camera.focal / max(float(means[i, 2]), 0.05)
        if part.kind == "line":
            layer.stroke(uv[lo:hi], part.color, 2 * part.radius * ppm, part.closed)
        elif part.kind == "poly":
            layer.fill(uv[lo:hi], part.color)
        elif part.kind == "head":
            _draw_head(layer, uv[lo], part.radius * ppm, part)
        else:
            layer.disk(uv[lo], part.radius * ppm, part.color)


def _faces_away(spec: ObjectSpec) -> bool:
    """True when the camera sees the figure's back (heading points away from it)."""
    x, _, z = spec.location
    heading = np.array([np.cos(spec.rotation_y), -np.sin(spec.rotation_y)])
    return float(np.dot(heading, [x, z])) > 0


def head(centre: np.ndarray, radius: float, skin: Color, cap: Color, back: bool) -> Part:
    """A head: a skin disk with a hair or helmet cap, or all cap seen from behind."""
    if back:
        return Part("disk", centre[None], radius, cap)
    return Part("head", centre[None], radius, skin, accent=cap)


def _draw_head(layer: Layer, centre: np.ndarray, radius: float, part: Part) -> None:
    """Skin disk plus the cap: the disk's top above a hairline, in screen space."""
    layer.disk(centre, radius, part.color)
    t = np.linspace(np.pi + 0.25, 2 * np.pi - 0.25, 10)
    cap = centre + 1.06 * radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    layer.fill(cap, part.accent or part.color)


def _leg(hip: np.ndarray, angle: float, bend: float, thigh: float, shin: float):
    """Knee and ankle of a leg swung ``angle`` (forward +) with knee ``bend`` (radians)."""
    knee = hip + P(thigh * np.sin(angle), -thigh * np.cos(angle))
    ankle = knee + P(shin * np.sin(angle - bend), -shin * np.cos(angle - bend))
    return knee, ankle


def _limbs(h: float, stride: float, phase: float, colours: dict[str, Color]) -> list[Part]:
    """Legs (with shoes) and swinging arms of a walker of height ``h``."""
    parts: list[Part] = []
    for side in (-1.0, 1.0):
        angle = side * stride * np.sin(phase)
        hip = P(0, 0.53 * h, side * 0.085 * h)
        knee, ankle = _leg(hip, angle, 0.08 + 1.6 * max(0.0, -angle), 0.245 * h, 0.245 * h)
        parts += [
            line([hip, knee], 0.042 * h, colours["legs"]),
            line([knee, ankle], 0.034 * h, colours["shins"]),
        ]
        parts.append(line([ankle, ankle + P(0.1 * h, -0.01 * h)], 0.024 * h, (30, 30, 34)))
        swing = -side * stride * 0.9 * np.sin(phase)
        shoulder = P(0, 0.805 * h, side * 0.1 * h)
        elbow = shoulder + P(0.17 * h * np.sin(swing), -0.17 * h * np.cos(swing), side * 0.02 * h)
        fore = swing + 0.25 + 0.5 * stride
        hand = elbow + P(0.15 * h * np.sin(fore), -0.15 * h * np.cos(fore))
        parts += [
            line([shoulder, elbow], 0.028 * h, colours["shirt"]),
            line([elbow, hand], 0.023 * h, colours["forearms"]),
        ]
    return parts


def pedestrian_parts(spec: ObjectSpec) -> list[Part]:
    """A walking or standing person of the spec's height, feet on the ground."""
    rng = np.random.default_rng(spec.style_seed)
    h = spec.dimensions_hwl[0]
    skin, hair = SKIN[rng.integers(len(SKIN))], HAIR[rng.integers(len(HAIR))]
    shirt, legs = random_color(rng), TROUSERS[rng.integers(len(TROUSERS))]
    shins = skin if rng.random() < 0.15 else legs
    forearms = shirt if rng.random() < 0.6 else skin
    stride = 0.0 if rng.random() < 0.25 else rng.uniform(0.15, 0.45)
    colours = {"legs": legs, "shins": shins, "shirt": shirt, "forearms": forearms}
    parts = _limbs(h, stride, rng.uniform(0, 2 * np.pi), colours)
    torso = [
        P(0, 0.82 * h, -0.105 * h),
        P(0, 0.82 * h, 0.105 * h),
        P(0, 0.5 * h, 0.09 * h),
        P(0, 0.5 * h, -0.09 * h),
    ]
    parts += [
        Part("poly", np.array(torso), 0.0, shirt),
        line([P(0, 0.54 * h), P(0, 0.77 * h)], 0.065 * h, shirt),
    ]
    parts.append(line([P(0, 0.8 * h), P(0.005 * h, 0.87 * h)], 0.028 * h, skin))
    if rng.random() < 0.25:
        parts.append(
            line([P(-0.1 * h, 0.62 * h), P(-0.1 * h, 0.77 * h)], 0.065 * h, random_color(rng))
        )
    parts.append(head(P(0.01 * h, 0.925 * h), 0.063 * h, skin, hair, _faces_away(spec)))
    # Swinging legs are shorter than straight ones: put the lowest shoe on the ground.
    lowest = max(float(p.points[:, 1].max() + p.radius) for p in parts if p.kind == "line")
    return [
        Part(p.kind, p.points + P(0, lowest), p.radius, p.color, p.closed, p.accent) for p in parts
    ]


def _pedal_leg(hip: np.ndarray, pedal: np.ndarray, thigh: float, shin: float) -> np.ndarray:
    """Knee position of a leg from ``hip`` to ``pedal`` (two-link IK, knee forward/up)."""
    d_vec = pedal - hip
    d = min(float(np.linalg.norm(d_vec)), thigh + shin - 1e-3)
    cos_a = np.clip((thigh**2 + d**2 - shin**2) / (2 * thigh * d), -1.0, 1.0)
    a = np.arccos(cos_a)
    dx, dy = d_vec[0], d_vec[1]
    base = np.arctan2(dy, dx) - a  # rotate toward forward/up (y is down)
    return hip + np.array([thigh * np.cos(base), thigh * np.sin(base), d_vec[2] * 0.5])


def bicycle_parts(s: float, rng: np.random.Generator) -> list[Part]:
    """Wheels, frame, handlebar and saddle of a bicycle scaled by ``s``."""
    frame = random_color(rng)
    r = 0.34 * s
    rear, front = P(-0.52 * s, r), P(0.53 * s, r)
    bb, seat, head_top, head_low = (
        P(0, 0.3 * s),
        P(-0.17 * s, 0.88 * s),
        P(0.42 * s, 0.92 * s),
        P(0.46 * s, 0.72 * s),
    )
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    parts = []
    for axle in (rear, front):
        ring = [axle + P(r * np.cos(a), r * np.sin(a)) for a in t]
        parts += [
            line(ring, 0.022 * s, (28, 28, 30), closed=True),
            Part("disk", axle[None], 0.03 * s, (120, 120, 125)),
        ]
    for a, b in (
        (rear, bb),
        (rear, seat),
        (bb, seat),
        (seat, head_top),
        (bb, head_low),
        (head_low, front),
        (head_low, head_top),
    ):
        parts.append(line([a, b], 0.018 * s, frame))
    bar = P(0.45 * s, 1.0 * s)
    parts.append(line([head_top, bar], 0.015 * s, (60, 60, 60)))
    parts.append(line([bar + P(0, 0, -0.22 * s), bar + P(0, 0, 0.22 * s)], 0.015 * s, (40, 40, 40)))
    parts.append(
        line([seat + P(-0.06 * s, 0.03 * s), seat + P(0.07 * s, 0.03 * s)], 0.03 * s, (30, 30, 30))
    )
    return parts


def cyclist_parts(spec: ObjectSpec) -> list[Part]:
    """A bicycle with a rider pedalling it, in local coordinates."""
    rng = np.random.default_rng(spec.style_seed)
    s = spec.dimensions_hwl[0] / 1.72
    skin, hair = SKIN[rng.integers(len(SKIN))], HAIR[rng.integers(len(HAIR))]
    jacket, legs = random_color(rng), TROUSERS[rng.integers(len(TROUSERS))]
    helmet = random_color(rng) if rng.random() < 0.6 else None
    parts = bicycle_parts(s, rng)
    crank, lean = rng.uniform(0, 2 * np.pi), rng.uniform(-0.05, 0.08)
    hip_c, shoulder_c = P(-0.18 * s, 0.97 * s), P((0.12 + lean) * s, 1.42 * s)
    for side in (-1.0, 1.0):
        a = crank + (0 if side > 0 else np.pi)
        pedal = P(0.17 * s * np.cos(a), 0.3 * s + 0.17 * s * np.sin(a), side * 0.13 * s)
        hip = hip_c + P(0, 0, side * 0.09 * s)
        knee = _pedal_leg(hip, pedal, 0.44 * s, 0.44 * s)
        parts += [line([hip, knee], 0.05 * s, legs), line([knee, pedal], 0.04 * s, legs)]
        parts.append(line([pedal, pedal + P(0.09 * s, 0)], 0.028 * s, (30, 30, 34)))
        shoulder = shoulder_c + P(0, 0, side * 0.18 * s)
        hand = P(0.45 * s, 1.02 * s, side * 0.2 * s)
        elbow = (shoulder + hand) / 2 + P(-0.02 * s, -0.06 * s, side * 0.04 * s)
        parts += [line([shoulder, elbow], 0.035 * s, jacket), line([elbow, hand], 0.03 * s, jacket)]
    torso = [
        shoulder_c + P(0, 0, -0.18 * s),
        shoulder_c + P(0, 0, 0.18 * s),
        hip_c + P(0, 0, 0.14 * s),
        hip_c + P(0, 0, -0.14 * s),
    ]
    parts += [
        Part("poly", np.array(torso), 0.0, jacket),
        line([hip_c + P(0.02 * s, 0.04 * s), shoulder_c - P(0.02 * s, 0.05 * s)], 0.11 * s, jacket),
    ]
    neck = shoulder_c + P(0.06 * s, 0.08 * s)
    parts.append(line([shoulder_c, neck], 0.045 * s, skin))
    cap = helmet or hair
    return parts + [head(neck + P(0.05 * s, 0.1 * s), 0.11 * s, skin, cap, _faces_away(spec))]


def draw_pedestrian(layer: Layer, spec: ObjectSpec, camera: Camera, sun: np.ndarray) -> None:
    """Draw a pedestrian into ``layer`` (``sun`` is unused: clothes are matte)."""
    draw_parts(layer, pedestrian_parts(spec), spec, camera)


def draw_cyclist(layer: Layer, spec: ObjectSpec, camera: Camera, sun: np.ndarray) -> None:
    """Draw a cyclist (bicycle plus rider) into ``layer``."""
    draw_parts(layer, cyclist_parts(spec), spec, camera)
