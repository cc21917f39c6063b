"""Procedural frost texture, standing in for the -C scripts' frost photographs.

The scripts blend the image with crops of six photographs of frosted glass. They
are not redistributed here, so this module synthesises a look-alike from the
Generator alone (fully deterministic per seed): a dim, smooth blue-grey haze
covered by fern-like ice dendrites (curved stems with alternating side branches),
bright thin crystal lines with a soft glow, plus sparse ice grains.

The texture is drawn at *photograph scale* (crystal stems tens to a couple of
hundred pixels long); the caller resizes it with the scripts' per-benchmark factor.
The photographs' statistics could not be measured here; the targets are visual
estimates from published -C frost samples: mean intensity about 0.4-0.5 of full
scale (measured on this texture: 0.41-0.50), per-pixel standard deviation about
0.15 (measured: 0.13-0.17), slightly blue (B > G > R), dense fine structure. Frost
results therefore follow the benchmark's blend and severities but will not equal
the published frost numbers.
"""

from __future__ import annotations

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # cv2 drawing precision: coordinates in 1/16 pixel
_STEP = 3.0  # stem step length, pixels
_TINT = np.array([0.86, 0.94, 1.0])  # R, G, B gains: bluish white


def _smooth_field(height: int, width: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to [0, 1]. Wide blurs are done on a
    coarser grid and upsampled (same look, a fraction of the cost)."""
    factor = max(1, int(sigma // 4))
    shape = (-(-height // factor) + 1, -(-width // factor) + 1)
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma / factor)
    field = cv2.resize(field, (shape[1] * factor, shape[0] * factor), interpolation=cv2.INTER_LINEAR)
    field = field[:height, :width]
    field -= field.min()
    return field / max(float(field.max()), 1e-12)


def _random_walks(starts: np.ndarray, headings: np.ndarray, n_steps: int, wiggle: float,
                  step: float, rng: np.random.Generator) -> np.ndarray:
    """Paths of ``n_steps`` points from ``starts`` with slowly turning headings; (n, steps, 2) as (x, y)."""
    turns = rng.normal(0.0, wiggle, size=(len(starts), n_steps))
    turns[:, 0] = 0.0
    angle = headings[:, None] + np.cumsum(turns, axis=1)
    moves = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * step
    moves[:, 0] = 0.0
    return starts[:, None, :] + np.cumsum(moves, axis=1)


def _draw(canvas: np.ndarray, paths: list[np.ndarray], value: int) -> None:
    polylines = [np.round(p * (1 << _SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2) for p in paths]
    cv2.polylines(canvas, polylines, False, value, 1, cv2.LINE_AA, _SUBPIXEL_BITS)


def _dendrites(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 canvas of anti-aliased fern-like crystal lines."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    density = rng.uniform(0.7, 1.3)
    n_stems = max(1, int(round(density * height * width / 1600)))
    n_steps = int(rng.integers(20, 60))
    margin = 0.2 * np.array([width, height])
    starts = rng.uniform(-margin, np.array([width, height]) + margin, size=(n_stems, 2))
    stems = _random_walks(starts, rng.uniform(0, 2 * np.pi, n_stems), n_steps, 0.12, _STEP, rng)
    _draw(canvas, list(stems), 255)

    # side branches every other stem point, alternating sides, shorter towards the tip
    points = stems[:, 1:-1:2]
    n_branch = points.shape[1]
    tangent = stems[:, 2::2][:, :n_branch] - stems[:, 0:-2:2][:, :n_branch]
    heading = np.arctan2(tangent[..., 1], tangent[..., 0])
    side = np.where(np.arange(n_branch) % 2 == 0, 1.0, -1.0)
    spread = np.deg2rad(60) + rng.normal(0, 0.15, size=heading.shape)
    branch_heading = (heading + side * spread).reshape(-1)
    taper = np.linspace(1.0, 0.2, n_branch)[None, :] * rng.uniform(0.4, 1.0, size=heading.shape)
    branch_steps = 6
    branches = _random_walks(points.reshape(-1, 2), branch_heading, branch_steps, 0.08,
                             1.0, rng)
    lengths = (taper * n_steps * _STEP * 0.35 / (branch_steps - 1)).reshape(-1, 1, 1)
    branches = points.reshape(-1, 1, 2) + (branches - points.reshape(-1, 1, 2)) * lengths
    _draw(canvas, list(branches), 190)

    # sparse ice grains
    n_grains = int(height * width / 400)
    grains = rng.uniform(0, [width, height], size=(n_grains, 2)).astype(np.int32)
    canvas[grains[:, 1], grains[:, 0]] = np.maximum(canvas[grains[:, 1], grains[:, 0]], 150)
    return canvas


def frost_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB (height, width, 3) frost sheet at photograph scale."""
    haze = 0.22 + 0.18 * _smooth_field(height, width, 25.0, rng) + 0.06 * _smooth_field(height, width, 3.0, rng)
    lines = _dendrites(height, width, rng).astype(np.float32) / 255.0
    crystals = cv2.GaussianBlur(lines, (0, 0), 0.6)
    glow = cv2.GaussianBlur(lines, (0, 0), 4.0)
    coverage = 0.5 + 0.5 * _smooth_field(height, width, 40.0, rng)
    value = haze + coverage * (0.6 * crystals + 1.2 * glow)
    rgb = np.clip(value[..., None] * (255 * _TINT).astype(np.float32), 0, 255)
    return np.rint(rgb).astype(np.uint8)
