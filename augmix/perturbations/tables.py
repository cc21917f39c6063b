"""Sequence constants of the -P benchmarks, one table per benchmark resolution.

Every value is read off the creation scripts in github.com/hendrycks/robustness
(``ImageNet-P/create_p/``), so a perturbation means what it means in the published sets:

* 32  -> ``make_cifar_p.py``        (CIFAR-10-P / CIFAR-100-P)
* 64  -> ``make_tinyimagenet_p.py`` (Tiny-ImageNet-P)
* 224 -> ``make_imagenet_p.py``     (ImageNet-P)

Each entry gives the frame count and the per-frame schedule in the scripts' own arithmetic
(e.g. CIFAR's scale is ``(i * 2 + 70) / 100`` for frame ``i``), so the float values are the
scripts' bit for bit. Noise perturbations have three difficulty levels (the released
``<name>_2`` / ``<name>_3`` sets); their first frame is the clean image, the next 30 are
independent noisy copies.
"""

from __future__ import annotations

from typing import Any

NOISE_FRAMES = 31  # the clean image + 30 noisy copies, at every resolution
DIFFICULTIES: tuple[int, ...] = (1, 2, 3)

_TABLES: dict[int, dict[str, dict[str, Any]]] = {
    32: {
        "gaussian_noise": {"levels": (0.02, 0.04, 0.06)},
        "shot_noise": {"levels": (700, 400, 200)},
        "speckle_noise": {"levels": (0.05, 0.07, 0.1)},
        # angle (i - offset) * step for i in range(frames)
        "motion_blur": {"frames": 21, "radius": 6, "sigma": 1.8, "offset": 20, "step": 9},
        "zoom_blur": {"frames": 31, "step": 0.004},
        "snow": {"frames": 31, "loc": 0.05, "scale": 0.3, "zoom": 2, "radius": 10, "sigma": 2},
        "brightness": {"frames": 31, "step": 1.5},
        "translate": {"frames": 16, "offset": 7},
        "rotate": {"frames": 31, "offset": 15},
        "tilt": {"frames": 31, "step": 0.75},
        "scale": {"frames": 31, "step": 2, "start": 70},
        "gaussian_blur": {"frames": 31, "start": 0.3, "step": 0.015, "truncate": 7.0},
        "spatter": {"frames": 31, "loc": 0.6, "scale": 0.265, "sigma": 1.75, "threshold": 0.7, "drip": (0.2, 0.8)},
        "shear": {"frames": 31, "offset": 15},
    },
    64: {
        "gaussian_noise": {"levels": (0.025, 0.05, 0.075)},
        "shot_noise": {"levels": (500, 250, 125)},
        "speckle_noise": {"levels": (0.05, 0.1, 0.15)},
        "motion_blur": {"frames": 31, "radius": 14, "sigma": 3, "offset": 30, "step": 5},
        "zoom_blur": {"frames": 31, "step": 0.004},
        "snow": {"frames": 31, "loc": 0.05, "scale": 0.28, "zoom": 2, "radius": 10, "sigma": 2.5},
        "brightness": {"frames": 31, "step": 2},
        "translate": {"frames": 31, "offset": 15},
        "rotate": {"frames": 31, "offset": 15},
        "tilt": {"frames": 31, "step": 1},
        "scale": {"frames": 31, "step": 2.5, "start": 40},
        "gaussian_blur": {"frames": 31, "start": 0.35, "step": 0.014, "truncate": 7.0},
        "spatter": {"frames": 31, "loc": 0.6, "scale": 0.25, "sigma": 1.75, "threshold": 0.7, "drip": (0.2, 0.8)},
        "shear": {"frames": 31, "offset": 15},
    },
    224: {
        "gaussian_noise": {"levels": (0.03, 0.05, 0.08)},
        "shot_noise": {"levels": (300, 120, 60)},
        "speckle_noise": {"levels": (0.05, 0.10, 0.15)},
        "motion_blur": {"frames": 31, "radius": 10, "sigma": 3, "offset": 30, "step": 4},
        "zoom_blur": {"frames": 31, "step": 0.004},
        "snow": {"frames": 31, "loc": 0.05, "scale": 0.3, "zoom": 3, "radius": 14, "sigma": 4},
        "brightness": {"frames": 31, "step": 2},
        "translate": {"frames": 41, "offset": 20},
        "rotate": {"frames": 31, "offset": 15},
        "tilt": {"frames": 31, "step": 1},
        "scale": {"frames": 31, "step": 2.5, "start": 40},
        "gaussian_blur": {"frames": 31, "start": 0.25, "step": 0.035, "truncate": 6.0},
        "spatter": {"frames": 31, "loc": 0.65, "scale": 0.27, "sigma": 3.7, "threshold": 0.69,
                    "drip": (0.05, 0.1, 0.15, 0.7)},
        "shear": {"frames": 31, "offset": 15},
    },
}

# The scripts' constants that every resolution shares.
SNOW_KEEP = 0.85  # share of the image kept under the brightened grey
SNOW_ANGLE = (4, -150)  # flake streak angle: i * 4 - 150 degrees
SPATTER_INTENSITY = 0.6  # water mask scale


def sequence_params(name: str, table: int) -> dict[str, Any]:
    """The constants of perturbation ``name`` in ``table`` (32, 64 or 224)."""
    return dict(_TABLES[table][name])


def frames_in(name: str, table: int) -> int:
    """Frames per sequence of ``name`` in ``table``, as released."""
    return _TABLES[table][name].get("frames", NOISE_FRAMES)
