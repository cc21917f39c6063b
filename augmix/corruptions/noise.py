"""Noise corruptions (gaussian, shot, impulse, speckle).

Each function takes the uint8 image, its severity constant and a numpy Generator,
and returns float values on the 0..255 scale (the registry clips and truncates to
uint8 exactly like the scripts' final ``np.uint8(...)``).
Only deviation from the scripts: random numbers come from the given Generator
instead of numpy's global legacy RandomState, so results are reproducible per seed
(the distributions are the same, the exact draws are not).
"""

from __future__ import annotations

import numpy as np
from skimage.util import random_noise


def gaussian_noise(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, scale) noise on [0, 1] intensities."""
    x = image / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=scale), 0, 1) * 255


def shot_noise(image: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson (photon-count) noise; fewer ``photons`` means stronger noise."""
    x = image / 255.0
    return np.clip(rng.poisson(x * photons) / photons, 0, 1) * 255


def impulse_noise(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise on ``amount`` of the values (per channel), through
    scikit-image's ``random_noise`` as in the scripts, driven by ``rng``."""
    x = random_noise(image / 255.0, mode="s&p", amount=amount, rng=rng)
    return np.clip(x, 0, 1) * 255


def speckle_noise(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative Gaussian noise: x + x * N(0, scale)."""
    x = image / 255.0
    return np.clip(x + x * rng.normal(size=x.shape, scale=scale), 0, 1) * 255
