"""Pinhole camera and rigid transforms of the synthetic scenes.

Coordinates follow KITTI's rectified camera frame: x to the right, y down,
z forward, in metres.  The road is the plane ``y = camera.mount_height``, so an
object standing on it has its KITTI ``location`` (the bottom centre of its 3D
box) at ``y = mount_height``.  Objects are modelled in a local frame whose
x axis points along the object's heading (its length), y down (0 on the
ground, ``-h`` at the top) and z across its width; ``rotation_y`` turns that
frame into the camera frame exactly as KITTI's ``rotation_y`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: KITTI's left colour camera (P2): focal length and principal point, 1242 x 375.
KITTI_FOCAL = 721.5377
KITTI_SIZE = (1242, 375)
KITTI_PRINCIPAL = (609.5593, 172.854)


@dataclass(frozen=True)
class Camera:
    """Intrinsics plus the camera's height above the road (metres)."""

    width: int
    height: int
    focal: float
    cx: float
    cy: float
    mount_height: float = 1.65

    @staticmethod
    def kitti_like(
        width: int, height: int, horizon_shift: float = 0.0, mount_height: float = 1.65
    ) -> Camera:
        """KITTI's intrinsics scaled to ``width`` (same field of view).

        ``horizon_shift`` moves the principal point vertically (pixels at the
        KITTI scale), which mimics a small camera pitch.
        """
        scale = width / KITTI_SIZE[0]
        cy = KITTI_PRINCIPAL[1] / KITTI_SIZE[1] * height + horizon_shift * scale
        return Camera(width, height, KITTI_FOCAL * scale, width / 2.0, cy, mount_height)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project (N, 3) camera-frame points to (N, 2) float pixel coordinates.

        Points closer than 5 cm are pushed to 5 cm so that nothing divides by
        zero; the scene never puts drawable geometry that close.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        scale = self.focal / np.maximum(pts[:, 2], 0.05)
        out = pts[:, :2] * scale[:, None]
        out += (self.cx, self.cy)
        return out

    def pixels_per_metre(self, depth: float) -> float:
        """How many pixels one metre spans at ``depth`` metres (fronto-parallel)."""
        return self.focal / max(depth, 0.05)


def rotation_y(angle: float) -> np.ndarray:
    """(3, 3) rotation about the camera's y axis, KITTI's ``rotation_y`` sense."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def to_camera(local: np.ndarray, rotation: float, location: tuple[float, float, float]):
    """Map (N, 3) object-frame points to the camera frame (N, 3)."""
    pts = np.asarray(local, dtype=np.float64).reshape(-1, 3)
    return pts @ rotation_y(rotation).T + np.asarray(location, dtype=np.float64)


def wrap_angle(angle: float) -> float:
    """Wrap an angle to [-pi, pi), the range KITTI uses for alpha and rotation_y."""
    return float((angle + np.pi) % (2.0 * np.pi) - np.pi)


def observation_angle(rotation: float, x: float, z: float) -> float:
    """KITTI's ``alpha``: the heading relative to the ray from the camera."""
    return wrap_angle(rotation - np.arctan2(x, z))
