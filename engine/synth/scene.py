"""One synthetic KITTI-style road scene from one integer seed.

:func:`generate_scene` is deterministic: each stage (camera, road, light,
background, road users, sensor noise) draws from its own child of
``numpy.random.SeedSequence(seed)``, so the same seed gives the same bytes
on every run and platform NumPy supports, and tuning one stage does not
reshuffle the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.errors import InputError
from squeezelens.engine.synth.background import draw_ground, draw_sky
from squeezelens.engine.synth.camera import Camera
from squeezelens.engine.synth.layout import RoadLayout, sample_layout
from squeezelens.engine.synth.lighting import Lighting, camera_response, sample_lighting
from squeezelens.engine.synth.placement import sample_specs
from squeezelens.engine.synth.render import RenderedObject, render_objects
from squeezelens.engine.synth.scenery import draw_scenery
from squeezelens.engine.types import GroundTruthObject

MIN_SIZE = (64, 32)
MAX_SIZE = (8192, 8192)
OBJECTS_PER_SCENE = (2, 12)


@dataclass(frozen=True)
class Scene:
    """A generated scene with everything that went into it.

    image: (H, W, 3) uint8 BGR.  labels: the KITTI ground truth, in the
    order of ``objects`` (objects with no visible pixel are left out).
    ``objects`` are in sampling order; they were drawn far to near.
    """

    image: np.ndarray
    labels: list[GroundTruthObject]
    objects: list[RenderedObject]
    camera: Camera
    layout: RoadLayout
    lighting: Lighting


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> 1)


def _check(seed: int, width: int, height: int) -> None:
    """Reject seeds and sizes the generator cannot honour."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value, lo, hi in (
        ("width", width, MIN_SIZE[0], MAX_SIZE[0]),
        ("height", height, MIN_SIZE[1], MAX_SIZE[1]),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or not lo <= value <= hi
        ):
            raise InputError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def build_scene(seed: int, width: int = 1242, height: int = 375) -> Scene:
    """Generate a scene and keep its camera, layout, lighting and per-object render data."""
    _check(seed, width, height)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(6)]
    cam_rng, layout_rng, light_rng, bg_rng, obj_rng, noise_rng = rngs
    camera = Camera.kitti_like(width, height, cam_rng.normal(0.0, 5.0), cam_rng.uniform(1.58, 1.72))
    layout, lighting = sample_layout(layout_rng), sample_lighting(light_rng)
    image = np.empty((height, width, 3), np.uint8)
    draw_sky(image, int(np.floor(camera.cy)), lighting, bg_rng)
    draw_ground(image, layout, camera, lighting, bg_rng)
    draw_scenery(image, camera, layout, lighting, bg_rng)
    count = int(obj_rng.integers(OBJECTS_PER_SCENE[0], OBJECTS_PER_SCENE[1] + 1))
    specs = sample_specs(obj_rng, layout, camera, count)
    image, _, objects = render_objects(image, specs, camera, np.asarray(lighting.sun))
    image = camera_response(image, lighting, noise_rng)
    labels = [o.label for o in objects if o.label is not None]
    return Scene(image, labels, objects, camera, layout, lighting)


def generate_scene(
    seed: int, width: int = 1242, height: int = 375
) -> tuple[np.ndarray, list[GroundTruthObject]]:
    """A road scene and its KITTI labels, identical for identical arguments.

    Returns (image, labels): image is (height, width, 3) uint8 BGR; labels
    are :class:`GroundTruthObject` with types 'Car', 'Pedestrian', 'Cyclist'
    or 'DontCare'.  Raises InputError for a negative seed or an absurd size.
    """
    scene = build_scene(seed, width, height)
    return scene.image, scene.labels


__all__ = ["Scene", "build_scene", "generate_scene", "scene_seed"]
