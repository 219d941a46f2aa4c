"""The road a synthetic scene is built around, in metres.

Road coordinates: ``x`` across the road (0 = centre of the ego lane,
positive to the right), ``up`` above the road surface, ``z`` forward.  The
road may be slightly yawed against the camera (``slope``) and the camera may
sit off the lane centre (``offset``); :meth:`RoadLayout.world` applies both
and gives KITTI camera-frame points, so a straight road converges to a
vanishing point at ``cx + focal * slope`` on the horizon.

Lateral bands keep the drawing order honest: road users stay on the road
and the inner part of the pavement, scenery (trees, poles, hedges,
buildings) starts at the pavement's outer edge.  Because scenery is always
laterally farther out than any road user, painting all scenery before all
road users never shows a far pedestrian in front of a near tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezelens.engine.synth.camera import Camera

SETTINGS = ("city", "suburb", "rural")


@dataclass(frozen=True)
class RoadLayout:
    """Lanes, pavements and markings of a straight road."""

    setting: str
    lane_width: float
    lanes_left: int  # lanes left of the ego lane
    lanes_right: int  # lanes right of the ego lane
    two_way: bool  # the left lanes carry oncoming traffic
    slope: float  # lateral drift of the road per metre forward (small yaw)
    offset: float  # camera-frame x of the ego lane centre
    pavement: tuple[float, float]  # widths left, right
    kerb_height: float
    dash_period: float
    dash_length: float
    dash_phase: float
    crossing_z: float | None  # a zebra crossing at this distance, or None

    @property
    def left_edge(self) -> float:
        """Road x of the left kerb."""
        return -self.lane_width * (0.5 + self.lanes_left)

    @property
    def right_edge(self) -> float:
        """Road x of the right kerb."""
        return self.lane_width * (0.5 + self.lanes_right)

    def edge(self, side: int) -> float:
        """Road x of the kerb on ``side`` (-1 left, +1 right)."""
        return self.left_edge if side < 0 else self.right_edge

    def scenery_start(self, side: int) -> float:
        """Road x of the pavement's outer edge, where scenery begins."""
        return self.edge(side) + side * self.pavement[0 if side < 0 else 1]

    def lanes(self) -> list[tuple[float, bool]]:
        """(centre x, oncoming) of every lane, left to right."""
        n = self.lanes_left + 1 + self.lanes_right
        xs = self.left_edge + self.lane_width * (np.arange(n) + 0.5)
        return [(float(x), self.two_way and x < -self.lane_width / 2) for x in xs]

    def heading(self, oncoming: bool) -> float:
        """KITTI rotation_y of traffic driving along the road (or towards us)."""
        away = -float(np.arctan2(1.0, self.slope))
        return away + np.pi if oncoming else away

    def world(self, x, up, z, camera: Camera) -> np.ndarray:
        """Road coordinates (scalars or equal-shape arrays) to (N, 3) camera-frame points."""
        x, up, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, up, z)))
        cam_x = x + self.offset + self.slope * z
        return np.stack([cam_x, camera.mount_height - up, z], axis=-1).reshape(-1, 3)


def sample_layout(rng: np.random.Generator) -> RoadLayout:
    """A random straight road: 1-4 lanes, pavements, markings, maybe a crossing."""
    setting = SETTINGS[rng.choice(3, p=[0.45, 0.35, 0.2])]
    lanes_left = int(rng.choice([0, 1, 1, 2]))
    lanes_right = int(rng.choice([0, 0, 1]))
    rural = setting == "rural"
    pavement = tuple(float(v) for v in rng.uniform(2.5, 5.0, size=2) + (1.0 if rural else 0.0))
    return RoadLayout(
        setting=setting,
        lane_width=float(rng.uniform(3.0, 3.7)),
        lanes_left=lanes_left,
        lanes_right=lanes_right,
        two_way=bool(lanes_left > 0 and rng.random() < 0.7),
        slope=float(rng.normal(0.0, 0.06)),
        offset=float(rng.normal(0.0, 0.3)),
        pavement=pavement,  # type: ignore[arg-type]
        kerb_height=0.0 if rural else float(rng.uniform(0.1, 0.16)),
        dash_period=float(rng.uniform(8.0, 13.0)),
        dash_length=float(rng.uniform(2.5, 4.0)),
        dash_phase=float(rng.uniform(0.0, 13.0)),
        crossing_z=float(rng.uniform(14.0, 40.0)) if not rural and rng.random() < 0.25 else None,
    )
