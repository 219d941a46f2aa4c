"""Deterministic synthetic KITTI-format road scenes (numpy + OpenCV only).

KITTI images cannot be redistributed, so SqueezeLens ships and trains on
scenes drawn here instead: perspective road scenes with cars, pedestrians
and cyclists placed on the road plane, labelled from the drawing itself.

Public API:

* :func:`generate_scene` ``(seed, width=1242, height=375) -> (image, labels)``
* :func:`write_kitti_tree` writes ``training/image_2``, ``training/label_2``
  and ``ImageSets`` for ``count`` scenes.
* :func:`render_objects` draws given :class:`ObjectSpec` s on any background
  and labels them (the lower-level API behind the scenes, used by tests).
* :func:`format_label` / :func:`parse_label`: one KITTI label_2 line.
"""

from squeezelens.engine.synth.camera import Camera
from squeezelens.engine.synth.dataset import split_indices, write_kitti_tree
from squeezelens.engine.synth.labels import format_label, parse_label
from squeezelens.engine.synth.render import RenderedObject, render_objects
from squeezelens.engine.synth.scene import Scene, build_scene, generate_scene, scene_seed
from squeezelens.engine.synth.specs import ObjectSpec

__all__ = [
    "Camera",
    "ObjectSpec",
    "RenderedObject",
    "Scene",
    "build_scene",
    "format_label",
    "generate_scene",
    "parse_label",
    "render_objects",
    "scene_seed",
    "split_indices",
    "write_kitti_tree",
]
