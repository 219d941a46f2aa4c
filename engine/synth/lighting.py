"""Time of day and the camera's response: exposure, tint, blur, vignette, noise.

A :class:`Lighting` fixes the sky colours, the haze that far things fade
into, the sun direction used to shade surfaces, and how the sensor renders
the scene.  :func:`camera_response` is applied to the finished picture, so
one scene geometry can look like noon, an overcast day or an evening, which
keeps a detector trained on these images from keying on absolute brightness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from squeezelens.engine.synth.canvas import Color


@dataclass(frozen=True)
class Lighting:
    """Sky, haze, sun and sensor settings of one scene."""

    name: str
    sky_top: Color
    sky_horizon: Color
    haze: Color
    sun: tuple[float, float, float]  # unit vector toward the sun, camera frame (y down)
    clouds: float  # cloud cover, 0..1
    gain: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # B, G, R multipliers
    noise: float = 2.5  # sensor noise standard deviation, grey levels
    blur: float = 0.6  # optics blur sigma, pixels
    vignette: float = 0.25  # darkening at the corners


PRESETS = (
    Lighting(
        "noon",
        (205, 150, 95),
        (235, 222, 208),
        (225, 215, 205),
        (-0.35, -0.85, 0.4),
        0.3,
        contrast=1.05,
    ),
    Lighting(
        "overcast",
        (182, 180, 176),
        (214, 213, 211),
        (205, 205, 203),
        (0.0, -1.0, 0.1),
        0.85,
        gain=0.95,
        contrast=0.85,
    ),
    Lighting(
        "evening",
        (165, 125, 100),
        (140, 188, 236),
        (165, 185, 215),
        (0.75, -0.3, 0.6),
        0.35,
        gain=0.82,
        tint=(0.9, 1.0, 1.1),
    ),
    Lighting(
        "morning",
        (215, 175, 135),
        (222, 226, 230),
        (215, 215, 215),
        (-0.7, -0.45, 0.55),
        0.2,
        gain=1.05,
        tint=(1.04, 1.0, 0.97),
    ),
    Lighting(
        "dim",
        (150, 140, 130),
        (180, 178, 176),
        (170, 170, 170),
        (0.2, -0.9, 0.4),
        0.7,
        gain=0.6,
        contrast=0.9,
        noise=4.0,
    ),
)


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """A preset picked at random, with its exposure and sensor jittered."""
    base = PRESETS[rng.choice(len(PRESETS), p=[0.35, 0.25, 0.15, 0.15, 0.1])]
    sun = np.asarray(base.sun) + rng.normal(0.0, 0.15, size=3)
    sun[1] = -abs(sun[1]) - 0.2
    return replace(
        base,
        sun=tuple(float(v) for v in sun / np.linalg.norm(sun)),  # type: ignore[arg-type]
        clouds=float(np.clip(base.clouds + rng.normal(0, 0.15), 0.0, 1.0)),
        gain=float(base.gain * rng.uniform(0.85, 1.15)),
        contrast=float(base.contrast * rng.uniform(0.9, 1.1)),
        gamma=float(rng.uniform(0.85, 1.15)),
        tint=tuple(float(t * rng.uniform(0.96, 1.04)) for t in base.tint),  # type: ignore[arg-type]
        noise=float(base.noise + rng.uniform(0.0, 2.5)),
        blur=float(rng.uniform(0.4, 0.9)),
        vignette=float(rng.uniform(0.1, 0.35)),
    )


def tone_curve(lighting: Lighting) -> np.ndarray:
    """(1, 256, 3) uint8 lookup table: gamma, contrast about mid-grey, gain and tint."""
    x = (np.arange(256, dtype=np.float64) / 255.0) ** lighting.gamma
    x = (x - 0.5) * lighting.contrast + 0.5
    table = np.stack([x * lighting.gain * t for t in lighting.tint], axis=1)
    return np.clip(np.round(table * 255.0), 0, 255).astype(np.uint8)[None]


@lru_cache(maxsize=8)
def _vignette(height: int, width: int, strength_pct: int) -> np.ndarray:
    """(H, W, 3) uint8 gain map, 255 at the centre, darker toward the corners."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    gain = 1.0 - strength_pct / 100.0 * np.clip(r2 / 2.0, 0.0, 1.0) ** 1.5
    gain8 = np.round(gain * 255).astype(np.uint8)
    out = np.repeat(gain8[:, :, None], 3, axis=2)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _normal_quantiles() -> np.ndarray:
    """(256,) standard normal quantiles at (k + 0.5) / 256, by bisection on erf."""
    q = (np.arange(256) + 0.5) / 256.0
    erf = np.vectorize(math.erf)
    lo, hi = np.full(256, -6.0), np.full(256, 6.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        below = 0.5 * (1 + erf(mid / math.sqrt(2))) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def _noise_tables(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(1, 256) uint8 tables mapping a uniform byte to the +/- parts of N(0, sigma) noise.

    Indexing Gaussian quantiles with uniform random bytes is several times
    cheaper than drawing normals, which matters at 1.4 M samples per image.
    """
    z = np.round(_normal_quantiles() * sigma)
    return np.clip(z, 0, 255).astype(np.uint8)[None], np.clip(-z, 0, 255).astype(np.uint8)[None]


def camera_response(image: np.ndarray, lighting: Lighting, rng: np.random.Generator) -> np.ndarray:
    """Apply the tone curve, lens blur, vignetting and sensor noise to (H, W, 3) uint8."""
    out = cv2.LUT(image, tone_curve(lighting))
    out = cv2.GaussianBlur(out, (0, 0), lighting.blur)
    strength = 5 * int(round(lighting.vignette * 20))  # a few levels, so the cache hits
    out = cv2.multiply(out, _vignette(out.shape[0], out.shape[1], strength), scale=1.0 / 255.0)
    plus, minus = _noise_tables(lighting.noise)
    raw = rng.integers(0, 256, size=out.shape, dtype=np.uint8)
    return cv2.subtract(cv2.add(out, cv2.LUT(raw, plus)), cv2.LUT(raw, minus))
