"""Where road users go: sampling :class:`ObjectSpec` lists for a road layout.

Cars drive in lanes (away from us, or towards us on two-way roads), park
along the kerbs or cross the road far ahead; pedestrians walk or stand on
the pavements or cross the road; cyclists ride near the kerbs, on the
pavement or across.  Depths are log-uniform, so near (big, often truncated)
and far (small) objects both occur, with KITTI-like box heights from about
15 px to 250 px for cars at full resolution.  Footprints never overlap, and
everything stays inside the band that scenery never enters.
"""

from __future__ import annotations

import numpy as np

from squeezelens.engine.synth.camera import Camera, wrap_angle
from squeezelens.engine.synth.layout import RoadLayout
from squeezelens.engine.synth.specs import CAR, CYCLIST, DRAW_MARGIN, PEDESTRIAN, ObjectSpec

CLASS_MIX = {CAR: 0.4, PEDESTRIAN: 0.3, CYCLIST: 0.3}
DEPTH = {CAR: (6.0, 80.0), PEDESTRIAN: (4.5, 45.0), CYCLIST: (5.0, 55.0)}
MAX_TRIES = 25


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A depth with uniform log: as many objects at 5-10 m as at 40-80 m."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sample_dimensions(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    """KITTI-typical (height, width, length) in metres, with vans and children."""
    u = rng.uniform
    if kind == CAR:
        if rng.random() < 0.12:
            return (u(1.85, 2.2), u(1.8, 2.0), u(4.5, 5.5))
        return (u(1.38, 1.62), u(1.6, 1.85), u(3.6, 4.8))
    if kind == PEDESTRIAN:
        h = u(1.1, 1.4) if rng.random() < 0.08 else u(1.5, 1.95)
        return (h, u(0.5, 0.75), u(0.5, 1.0))
    return (u(1.6, 1.85), u(0.5, 0.7), u(1.6, 1.85))


def _crossing(rng: np.random.Generator, layout: RoadLayout) -> float:
    """Heading across the road (to the right or to the left), slightly jittered."""
    base = -float(np.arctan(layout.slope)) + (0.0 if rng.random() < 0.5 else np.pi)
    return base + rng.normal(0.0, 0.15)


def _car_pose(
    rng: np.random.Generator, layout: RoadLayout, width: float
) -> tuple[float, float, float]:
    """(road x, z, rotation_y) of a driving, parked or crossing car."""
    mode = rng.random()
    if mode < 0.62:
        x, oncoming = layout.lanes()[rng.integers(len(layout.lanes()))]
        return (
            x + rng.normal(0, 0.25),
            log_uniform(rng, *DEPTH[CAR]),
            layout.heading(oncoming) + rng.normal(0, 0.04),
        )
    if mode < 0.9:
        side = -1 if rng.random() < 0.5 else 1
        x = layout.edge(side) - side * (width / 2 + rng.uniform(0.1, 0.4))
        return (
            x,
            log_uniform(rng, 5.0, 60.0),
            layout.heading(rng.random() < 0.3) + rng.normal(0, 0.03),
        )
    x = rng.uniform(layout.left_edge + 1.0, layout.right_edge - 1.0)
    return x, rng.uniform(15.0, 60.0), _crossing(rng, layout)


def _person_pose(
    rng: np.random.Generator, layout: RoadLayout, kind: str
) -> tuple[float, float, float]:
    """(road x, z, rotation_y) of a pedestrian or cyclist."""
    z = log_uniform(rng, *DEPTH[kind])
    mode = rng.random()
    if mode < 0.25:  # crossing the road
        if layout.crossing_z is not None and rng.random() < 0.6:
            z = layout.crossing_z + rng.uniform(0.5, 2.5)
        return (
            rng.uniform(layout.left_edge + 0.5, layout.right_edge - 0.5),
            z,
            _crossing(rng, layout),
        )
    side = -1 if rng.random() < 0.5 else 1
    if kind == CYCLIST and mode < 0.75:  # riding near the kerb
        x = layout.edge(side) - side * rng.uniform(0.6, 1.3)
        return x, z, layout.heading(side < 0 and layout.two_way) + rng.normal(0, 0.05)
    width = layout.pavement[0 if side < 0 else 1]
    x = layout.edge(side) + side * rng.uniform(0.5, max(0.6, width - 1.0))
    if rng.random() < 0.7:  # walking along the pavement
        return x, z, layout.heading(rng.random() < 0.5) + rng.normal(0, 0.15)
    return x, z, rng.uniform(-np.pi, np.pi)


def footprints_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex (4, 2) footprints."""
    for poly in (a, b):
        for i in range(len(poly)):
            edge = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _valid(spec: ObjectSpec, layout: RoadLayout, camera: Camera, placed: list[ObjectSpec]) -> bool:
    """In front of the camera, at least partly in view, inside the road-user band, not colliding."""
    corners = spec.box_corners(DRAW_MARGIN[spec.kind])
    if corners[:, 2].min() < 2.0:
        return False
    uv = camera.project(corners)
    if (
        uv[:, 0].max() < 2
        or uv[:, 0].min() > camera.width - 3
        or uv[:, 1].min() > camera.height - 3
    ):
        return False
    road_x = corners[:, 0] - layout.offset - layout.slope * corners[:, 2]
    if (
        road_x.min() < layout.scenery_start(-1) + 0.2
        or road_x.max() > layout.scenery_start(1) - 0.2
    ):
        return False
    mine = spec.footprint(0.3)
    return not any(footprints_overlap(mine, other.footprint(0.3)) for other in placed)


def sample_specs(
    rng: np.random.Generator, layout: RoadLayout, camera: Camera, count: int
) -> list[ObjectSpec]:
    """Up to ``count`` non-colliding road users (fewer when placement keeps failing)."""
    kinds, weights = zip(*CLASS_MIX.items())
    placed: list[ObjectSpec] = []
    for _ in range(count):
        kind = kinds[rng.choice(len(kinds), p=np.array(weights) / sum(weights))]
        for _ in range(MAX_TRIES):
            dims = sample_dimensions(rng, kind)
            x, z, rotation = (
                _car_pose(rng, layout, dims[1]) if kind == CAR else _person_pose(rng, layout, kind)
            )
            on_pavement = x < layout.left_edge or x > layout.right_edge
            location = layout.world(x, layout.kerb_height if on_pavement else 0.0, z, camera)[0]
            spec = ObjectSpec(
                kind,
                tuple(float(v) for v in location),
                wrap_angle(rotation),
                dims,
                int(rng.integers(2**31)),
            )  # type: ignore[arg-type]
            if _valid(spec, layout, camera, placed):
                placed.append(spec)
                break
    return placed
