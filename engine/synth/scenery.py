"""Roadside scenery: distant skyline, buildings, trees, street lamps, hedges.

All of it stands beyond the pavement's outer edge (``layout.scenery_start``),
so it can be painted before the road users without ever wrongly covering
one (see :mod:`engine.synth.layout`).  Tree canopies start above 2.4 m, higher
than any road user, so the only scenery that overhangs the pavement also
projects above every road user behind it.  Far things are blended toward
the haze colour, which gives the scenes their depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.synth.camera import Camera
from squeezelens.engine.synth.canvas import Color, disk_image, fill_polys, mix, shade, stroke_image
from squeezelens.engine.synth.layout import RoadLayout
from squeezelens.engine.synth.lighting import Lighting

FACADES: tuple[Color, ...] = (
    (170, 198, 214),
    (62, 82, 150),
    (150, 150, 152),
    (212, 214, 210),
    (150, 208, 224),
    (72, 92, 128),
    (120, 140, 160),
    (180, 170, 150),
)
LEAVES: tuple[Color, ...] = ((45, 95, 60), (40, 80, 50), (60, 115, 80), (35, 70, 55), (55, 110, 95))


@dataclass(frozen=True)
class Building:
    """A block with its long facade along the road (road coordinates, metres)."""

    side: int
    x: float  # facade plane
    z0: float
    z1: float
    depth: float
    height: float
    colour: Color
    glass: Color
    floor: float  # storey height
    ground_floor: float  # sill height of the lowest windows
    column: float  # window spacing along the facade
    window: tuple[float, float]  # window height, width as fractions of storey, spacing


@dataclass(frozen=True)
class Tree:
    """A trunk and a canopy of ``blobs`` disks; ``seed`` places the disks."""

    x: float
    z: float
    trunk: float
    trunk_width: float
    crown: float
    blobs: int
    leaf: Color
    seed: int


@dataclass(frozen=True)
class Hedge:
    """A hedge or low wall running along the pavement."""

    side: int
    x: float
    z0: float
    z1: float
    height: float
    colour: Color


@dataclass(frozen=True)
class Lamp:
    """A street lamp whose arm reaches over the road."""

    side: int
    x: float
    z: float


def hazy(color: Color, depth: float, light: Lighting) -> Color:
    """Atmospheric perspective: blend toward the haze colour with distance."""
    return mix(color, light.haze, 1.0 - float(np.exp(-depth / 220.0)))


def _lit(color: Color, normal: tuple[float, float, float], light: Lighting) -> Color:
    """Shade a flat surface by the sun with a generous ambient term."""
    return shade(color, 0.7 + 0.4 * max(0.0, float(np.dot(normal, light.sun))))


def _profile(image: np.ndarray, horizon: float, xs: np.ndarray, heights: np.ndarray, colour: Color):
    """Fill the area between the horizon and a silhouette ``heights`` (pixels) over ``xs``."""
    width = image.shape[1]
    outline = np.stack([xs, horizon - heights], axis=1)
    poly = np.vstack([[[-2, horizon + 3]], outline, [[width + 2, horizon + 3]]])
    fill_polys(image, [poly], colour)


def draw_skyline(
    image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, rng: np.random.Generator
) -> None:
    """A hazy band at the horizon: far city blocks, or hills with a far tree line."""
    width, horizon = image.shape[1], camera.cy
    scale = width / 1242.0
    if layout.setting == "city":
        edges = np.cumsum(rng.uniform(20, 70, size=40) * scale) - 80 * scale
        xs = np.repeat(edges, 2)[1:-1]
        heights = np.repeat(rng.uniform(8, 40, size=39) * scale, 2)
        _profile(
            image, horizon, xs, heights, mix(FACADES[rng.integers(len(FACADES))], light.haze, 0.75)
        )
        return
    xs = np.linspace(-2, width + 2, 64)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    hills = 6 + 5 * np.sin(xs / (97 * scale) + phase[0]) + 4 * np.sin(xs / (41 * scale) + phase[1])
    _profile(image, horizon, xs, hills * 1.8 * scale, mix((110, 125, 110), light.haze, 0.6))
    bumps = (hills * 0.6 + rng.uniform(0, 4, size=xs.size)) * scale
    _profile(image, horizon, xs, bumps, mix((50, 85, 60), light.haze, 0.55))


def _draw_building(
    image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, b: Building
):
    """Facade toward the road, the end wall toward the camera, a cornice and windows."""
    colour = hazy(b.colour, (b.z0 + b.z1) / 2, light)
    world = lambda xs, ups, zs: camera.project(layout.world(xs, ups, zs, camera))  # noqa: E731
    x, far_x, h = b.x, b.x + b.side * b.depth, b.height
    end = world([x, x, far_x, far_x], [0, h, h, 0], [b.z0] * 4)
    fill_polys(image, [end], _lit(shade(colour, 0.85), (0.0, 0.0, -1.0), light))
    facade = world([x] * 4, [0, h, h, 0], [b.z0, b.z0, b.z1, b.z1])
    fill_polys(image, [facade], _lit(colour, (-float(b.side), 0.0, 0.0), light))
    cornice = world([x] * 4, [h - 0.5, h, h, h - 0.5], [b.z0, b.z0, b.z1, b.z1])
    fill_polys(image, [cornice], shade(colour, 0.7))
    _draw_windows(image, camera, layout, light, b)


def _draw_windows(
    image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, b: Building
):
    """A grid of window panes on the facade, projected in one batch."""
    floors = np.arange(b.ground_floor, b.height - 1.5, b.floor)
    cols = np.arange(b.z0 + b.column * 0.6, b.z1 - b.column * 0.5, b.column)
    cols = cols[cols > 1.0]
    if floors.size == 0 or cols.size == 0 or camera.focal * b.column / b.z1 < 3:
        return
    fz, cz = (a.ravel() for a in np.meshgrid(floors, cols, indexing="ij"))
    wh, ww = b.floor * b.window[0], b.column * b.window[1]
    ups = np.stack([fz, fz + wh, fz + wh, fz], 1)
    zs = np.stack([cz, cz, cz + ww, cz + ww], 1)
    pts = camera.project(layout.world(np.full(ups.shape, b.x), ups, zs, camera)).reshape(-1, 4, 2)
    fill_polys(image, pts, hazy(b.glass, (b.z0 + b.z1) / 2, light))


def _new_building(layout: RoadLayout, rng: np.random.Generator, side: int, z: float, length: float):
    """One building with random height, colour and window grid."""
    city = layout.setting == "city"
    setback = rng.uniform(0.3, 1.5) + (0.0 if city else rng.uniform(4.0, 12.0))
    glass = rng.integers(45, 85) + np.array([18, 6, 0]) + rng.integers(-6, 7, size=3)
    return Building(
        side=side,
        x=layout.scenery_start(side) + side * setback,
        z0=max(z, 1.5),
        z1=z + length,
        depth=rng.uniform(8, 18),
        height=rng.uniform(8.0, 28.0) if city else rng.uniform(5.0, 8.0),
        colour=FACADES[rng.integers(len(FACADES))],
        glass=tuple(int(v) for v in glass),  # type: ignore[arg-type]
        floor=rng.uniform(2.9, 3.6),
        ground_floor=rng.uniform(0.8, 1.2),
        column=rng.uniform(2.4, 4.0),
        window=(rng.uniform(0.45, 0.65), rng.uniform(0.4, 0.7)),
    )


def buildings(layout: RoadLayout, rng: np.random.Generator, side: int) -> list[Building]:
    """A row of buildings along one side: a continuous street front in the city,
    scattered houses elsewhere."""
    city = layout.setting == "city"
    out, z = [], rng.uniform(-5.0, 8.0)
    while z < 220.0:
        length = rng.uniform(8.0, 28.0) if city else rng.uniform(8.0, 14.0)
        if city or rng.random() < 0.6:
            out.append(_new_building(layout, rng, side, z, length))
        z += length + (rng.uniform(0.0, 4.0) if city else rng.uniform(6.0, 20.0))
    return [b for b in out if b.z1 > 2.0]


def _draw_tree(image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, t: Tree):
    """A trunk and a canopy of overlapping disks, its bottom above 2.4 m."""
    base = camera.project(layout.world([t.x, t.x], [0.0, t.trunk], [t.z] * 2, camera))
    ppm = camera.focal / t.z
    stroke_image(image, base, hazy((45, 60, 75), t.z, light), t.trunk_width * ppm)
    rng = np.random.default_rng(t.seed)
    radii = t.crown * rng.uniform(0.55, 0.85, size=t.blobs)
    ups = t.trunk + radii + rng.uniform(0.0, t.crown * 0.9, size=t.blobs)
    xs = t.x + rng.uniform(-0.6, 0.6, size=t.blobs) * t.crown
    zs = t.z + rng.uniform(-0.3, 0.3, size=t.blobs) * t.crown
    centres = camera.project(layout.world(xs, ups, zs, camera))
    for k in range(t.blobs):
        leaf = shade(t.leaf, 0.8 + 0.35 * k / max(1, t.blobs - 1))
        disk_image(image, centres[k], radii[k] * ppm, hazy(leaf, t.z, light))


def _draw_lamp(image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, p: Lamp):
    """A street lamp: a pole and an arm reaching over the road."""
    pts = camera.project(
        layout.world([p.x, p.x, p.x - p.side * 1.6], [0.0, 7.5, 7.8], [p.z] * 3, camera)
    )
    colour = hazy((105, 108, 110), p.z, light)
    stroke_image(image, pts[:2], colour, 0.16 * camera.focal / p.z)
    stroke_image(image, pts[1:], colour, 0.1 * camera.focal / p.z)


def _draw_hedge(image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, h: Hedge):
    """A hedge (or low wall) along the pavement: top, road-facing side, near end."""
    colour = hazy(h.colour, (h.z0 + h.z1) / 2, light)
    world = lambda xs, ups, zs: camera.project(layout.world(xs, ups, zs, camera))  # noqa: E731
    x, back, top = h.x, h.x + h.side * 0.8, h.height
    fill_polys(
        image, [world([x, back, back, x], [top] * 4, [h.z0, h.z0, h.z1, h.z1])], shade(colour, 1.15)
    )
    fill_polys(image, [world([x] * 4, [0, top, top, 0], [h.z0, h.z0, h.z1, h.z1])], colour)
    fill_polys(image, [world([x, x, back, back], [0, top, top, 0], [h.z0] * 4)], shade(colour, 0.8))


def _new_tree(rng: np.random.Generator, x: float, z: float) -> Tree:
    """A tree of random size and foliage at road (x, z)."""
    return Tree(
        x=x,
        z=z,
        trunk=rng.uniform(2.4, 3.5),
        trunk_width=rng.uniform(0.25, 0.45),
        crown=rng.uniform(1.6, 3.0),
        blobs=int(rng.integers(4, 8)),
        leaf=LEAVES[rng.integers(len(LEAVES))],
        seed=int(rng.integers(2**31)),
    )


def trees(layout: RoadLayout, rng: np.random.Generator, side: int) -> list[Tree]:
    """Street trees at the pavement's outer edge (scattered further out in the country)."""
    x0, rural = layout.scenery_start(side), layout.setting == "rural"
    gap = rng.uniform(10.0, 30.0) if layout.setting == "city" else rng.uniform(7.0, 18.0)
    out = []
    for z in np.arange(rng.uniform(3.0, 10.0), 160.0, gap):
        if rng.random() < (0.4 if layout.setting == "city" else 0.8):
            x = x0 + side * (0.5 + (rng.uniform(0, 8) if rural else 0.3))
            out.append(_new_tree(rng, x, z + rng.uniform(-2, 2)))
    return out


def lamps_and_hedges(layout: RoadLayout, rng: np.random.Generator, side: int) -> list[Lamp | Hedge]:
    """Street lamps in towns, and sometimes a hedge or wall in the suburbs."""
    x0 = layout.scenery_start(side)
    out: list[Lamp | Hedge] = []
    if layout.setting != "rural":
        for z in np.arange(rng.uniform(4.0, 20.0), 150.0, rng.uniform(25.0, 40.0)):
            out.append(Lamp(side, x0 + side * 0.25, float(z)))
    if layout.setting == "suburb" and rng.random() < 0.6:
        z = rng.uniform(2.0, 10.0)
        colour = (50, 100, 60) if rng.random() < 0.7 else (140, 150, 160)
        out.append(
            Hedge(side, x0 + side * 0.1, z, z + rng.uniform(10, 40), rng.uniform(0.8, 1.5), colour)
        )
    return out


def draw_scenery(
    image: np.ndarray, camera: Camera, layout: RoadLayout, light: Lighting, rng: np.random.Generator
) -> None:
    """Skyline, then both sides' buildings far to near, then trees, lamps, hedges far to near."""
    draw_skyline(image, camera, layout, light, rng)
    blocks = [b for side in (-1, 1) for b in buildings(layout, rng, side)]
    for b in sorted(blocks, key=lambda b: -b.z0):
        _draw_building(image, camera, layout, light, b)
    items: list[Tree | Lamp | Hedge] = []
    for side in (-1, 1):
        items += trees(layout, rng, side) + lamps_and_hedges(layout, rng, side)
    drawers = {Tree: _draw_tree, Lamp: _draw_lamp, Hedge: _draw_hedge}
    near_z = lambda item: item.z0 if isinstance(item, Hedge) else item.z  # noqa: E731
    for item in sorted(items, key=lambda item: -near_z(item)):
        if near_z(item) > 1.5:
            drawers[type(item)](image, camera, layout, light, item)
