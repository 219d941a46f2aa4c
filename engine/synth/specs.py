"""What to draw: one :class:`ObjectSpec` per road user of a synthetic scene.

A spec is the object's 3D placement in KITTI terms (bottom-centre location
in the camera frame, ``rotation_y``, height/width/length in metres) plus a
``style_seed`` from which its drawer picks colours and pose, so the same
spec always draws the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.synth.camera import to_camera

CAR, PEDESTRIAN, CYCLIST, DONT_CARE = "Car", "Pedestrian", "Cyclist", "DontCare"
KINDS = (CAR, PEDESTRIAN, CYCLIST)

#: How far (metres) a drawer may reach beyond the labelled 3D box: swinging
#: arms, wheel arches, a cyclist's elbows.  The drawing layer is this much bigger.
DRAW_MARGIN = {CAR: 0.15, PEDESTRIAN: 0.4, CYCLIST: 0.35}


@dataclass(frozen=True)
class ObjectSpec:
    """A road user standing on the road plane.

    location: (x, y, z) bottom centre of the 3D box, camera frame, metres;
              y is the camera's height above the road for a standing object.
    rotation_y: heading about the camera's y axis, KITTI convention
              (0 = facing right, -pi/2 = driving away from the camera).
    dimensions_hwl: KITTI's (height, width, length) in metres.
    style_seed: picks colours and pose; same seed, same look.
    """

    kind: str
    location: tuple[float, float, float]
    rotation_y: float
    dimensions_hwl: tuple[float, float, float]
    style_seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown object kind {self.kind!r}; expected one of {KINDS}")

    @property
    def distance(self) -> float:
        """Distance (m) from the camera to the box centre: the painter's sort key."""
        x, y, z = self.location
        h = self.dimensions_hwl[0]
        return float(np.sqrt(x * x + (y - h / 2) ** 2 + z * z))

    def box_corners(self, margin: float = 0.0) -> np.ndarray:
        """(8, 3) camera-frame corners of the 3D box, grown by ``margin`` metres."""
        h, w, length = self.dimensions_hwl
        xs = (-length / 2 - margin, length / 2 + margin)
        ys = (-h - margin, min(margin, 0.05))
        zs = (-w / 2 - margin, w / 2 + margin)
        local = np.array([(x, y, z) for x in xs for y in ys for z in zs])
        return to_camera(local, self.rotation_y, self.location)

    def footprint(self, margin: float = 0.0) -> np.ndarray:
        """(4, 2) (x, z) corners of the ground footprint, for overlap tests."""
        corners = self.box_corners(margin)
        return corners[[2, 3, 7, 6]][:, [0, 2]]
