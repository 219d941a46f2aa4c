"""Sky, ground, road surface and road markings of a synthetic scene.

Everything on the ground is a polygon in road coordinates (see
:mod:`engine.synth.layout`) projected through the camera, so kerbs, lane
lines and dashes converge to the vanishing point and dashes shrink with
distance exactly as a real road does.  Scenery standing on the ground
(buildings, trees) is drawn by :mod:`engine.synth.scenery`.
"""

from __future__ import annotations

import cv2
import numpy as np

from squeezelens.engine.synth.camera import Camera
from squeezelens.engine.synth.canvas import Color, fill_polys, mix
from squeezelens.engine.synth.layout import RoadLayout
from squeezelens.engine.synth.lighting import Lighting

NEAR, FAR = 1.0, 600.0  # z range of ground polygons, metres
MARKING_FAR = 140.0  # dashes beyond this are sub-pixel noise
PAINT: Color = (215, 222, 225)
VERGE = {"city": (150, 152, 155), "suburb": (138, 140, 140), "rural": (70, 120, 95)}
GRASS = {"city": (95, 110, 105), "suburb": (70, 125, 100), "rural": (75, 135, 110)}


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """(H, W) float32 low-frequency noise in [-1, 1]: a small random grid, upscaled."""
    grid = rng.uniform(-1.0, 1.0, size=cells).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def draw_sky(image: np.ndarray, horizon: int, light: Lighting, rng: np.random.Generator) -> None:
    """Vertical gradient from zenith to horizon colour, with soft clouds, in place.

    The sky is smooth, so it is computed at 1/8 of the width and 1/2 of the
    height and upscaled, which keeps it cheap.
    """
    rows = max(1, min(horizon + 1, image.shape[0]))
    small = (max(2, rows // 2), max(8, image.shape[1] // 8))
    t = (np.linspace(0.0, 1.0, small[0], dtype=np.float32) ** 0.8)[:, None, None]
    sky = (
        np.asarray(light.sky_top, np.float32) * (1 - t)
        + np.asarray(light.sky_horizon, np.float32) * t
    )
    cover = smooth_noise(rng, small, (4, 14)) + smooth_noise(rng, small, (8, 40)) * 0.4
    cloud = np.clip((cover + 1.6 * light.clouds - 0.8) * 1.2, 0.0, 0.85)[:, :, None]
    white = np.asarray(mix(light.sky_horizon, (245, 245, 245), 0.5), np.float32)
    small_sky = np.clip(sky * (1 - cloud) + white * cloud, 0, 255).astype(np.uint8)
    image[:rows] = cv2.resize(small_sky, (image.shape[1], rows), interpolation=cv2.INTER_LINEAR)


def ground_quad(
    layout: RoadLayout, camera: Camera, x0: float, x1: float, z0: float, z1: float, up: float = 0.0
) -> np.ndarray:
    """(4, 2) pixel corners of a flat road-coordinate rectangle at height ``up``."""
    xs, zs = np.array([x0, x0, x1, x1]), np.array([z0, z1, z1, z0])
    return camera.project(layout.world(xs, up, zs, camera))


def draw_ground(
    image: np.ndarray, layout: RoadLayout, camera: Camera, light: Lighting, rng: np.random.Generator
) -> None:
    """Grass/verge everywhere below the horizon, then pavements, kerbs and asphalt."""
    horizon = int(np.clip(np.floor(camera.cy), 0, image.shape[0] - 1))
    cv2.rectangle(image, (0, horizon), (image.shape[1], image.shape[0]), GRASS[layout.setting], -1)
    asphalt = tuple(int(v) for v in rng.integers(78, 112) + rng.integers(-4, 5, size=3))
    shift = rng.integers(-14, 15)
    verge = tuple(int(c + shift + rng.integers(-3, 4)) for c in VERGE[layout.setting])
    for side in (-1, 1):
        edge, outer = layout.edge(side), layout.scenery_start(side)
        fill_polys(
            image, [ground_quad(layout, camera, edge, outer, NEAR, FAR, layout.kerb_height)], verge
        )
        if layout.kerb_height > 0:
            kerb = camera.project(
                layout.world(
                    [edge] * 4,
                    [0, layout.kerb_height, layout.kerb_height, 0],
                    [NEAR, NEAR, FAR, FAR],
                    camera,
                )
            )
            fill_polys(image, [kerb], (175, 178, 180) if rng.random() < 0.9 else (60, 60, 170))
    fill_polys(
        image,
        [ground_quad(layout, camera, layout.left_edge, layout.right_edge, NEAR, FAR)],
        asphalt,
    )
    draw_markings(image, layout, camera)
    _texture_and_haze(image, horizon, light, rng)


def _dashes(layout: RoadLayout, camera: Camera, x: float, width: float) -> list[np.ndarray]:
    """Pixel quads of a dashed line at road x (projected in one batch)."""
    z0 = np.arange(layout.dash_phase % layout.dash_period, MARKING_FAR, layout.dash_period) + 2.0
    xs = np.array([x - width / 2, x - width / 2, x + width / 2, x + width / 2])
    zs = np.stack([z0, z0 + layout.dash_length, z0 + layout.dash_length, z0], axis=1)
    pts = camera.project(layout.world(np.broadcast_to(xs, zs.shape), 0.0, zs, camera))
    return list(pts.reshape(-1, 4, 2))


def draw_markings(image: np.ndarray, layout: RoadLayout, camera: Camera) -> None:
    """Lane dividers (dashed; solid double centre line on two-way roads), edge lines, crossing."""
    w = 0.13
    quads: list[np.ndarray] = []
    for k in range(layout.lanes_left):
        x = -layout.lane_width * (0.5 + k)
        if k == 0 and layout.two_way:
            quads += [
                ground_quad(layout, camera, x + d - w / 2, x + d + w / 2, NEAR, MARKING_FAR)
                for d in (-0.1, 0.1)
            ]
        else:
            quads += _dashes(layout, camera, x, w)
    for k in range(layout.lanes_right):
        quads += _dashes(layout, camera, layout.lane_width * (0.5 + k), w)
    for edge, inward in ((layout.left_edge, 0.3), (layout.right_edge, -0.3)):
        quads.append(
            ground_quad(
                layout, camera, edge + inward - w / 2, edge + inward + w / 2, NEAR, MARKING_FAR
            )
        )
    if layout.crossing_z is not None:
        z = layout.crossing_z
        for x in np.arange(layout.left_edge + 0.6, layout.right_edge - 0.5, 1.0):
            quads.append(ground_quad(layout, camera, x, x + 0.5, z, z + 3.0))
    fill_polys(image, quads, PAINT)


def _texture_and_haze(
    image: np.ndarray, horizon: int, light: Lighting, rng: np.random.Generator
) -> None:
    """Blotchy low-frequency shading on the ground, fading into haze at the horizon."""
    rows, width = image.shape[0] - horizon, image.shape[1]
    if rows <= 0:
        return
    blotch = 1.0 + 0.07 * smooth_noise(rng, (max(2, rows // 4), max(8, width // 8)), (6, 30))
    gain = cv2.resize(
        np.round(blotch * 200).astype(np.uint8), (width, rows), interpolation=cv2.INTER_LINEAR
    )
    ground = image[horizon:]
    ground[:] = cv2.multiply(ground, cv2.merge([gain, gain, gain]), scale=1 / 200)
    reach = max(4.0, 0.06 * image.shape[0])
    band = min(rows, int(6 * reach))
    haze = (np.exp(-np.arange(band, dtype=np.float32) / reach) * 0.85)[:, None, None]
    mixed = (
        ground[:band].astype(np.float32) * (1 - haze) + np.asarray(light.haze, np.float32) * haze
    )
    ground[:band] = np.clip(mixed, 0, 255).astype(np.uint8)
