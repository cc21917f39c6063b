"""Blur corruptions (defocus, glass, motion, zoom, gaussian).

Same contract as ``noise.py``: uint8 image + severity constant + Generator in,
float 0..255 out. Deviations from the scripts are noted per function; the others
compute exactly what the scripts compute (random draws aside, see ``noise.py``).
"""

from __future__ import annotations

import cv2
import numpy as np

from augmix.corruptions import motion
from augmix.corruptions.filters import clipped_zoom, disk_kernel, gaussian_rgb


def gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur (deterministic; ``rng`` unused)."""
    return np.clip(gaussian_rgb(image / 255.0, sigma), 0, 1) * 255


def defocus_blur(image: np.ndarray, params: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Convolution with an anti-aliased disk (deterministic; ``rng`` unused)."""
    radius, alias_blur = params
    kernel = disk_kernel(radius, alias_blur)
    x = image / 255.0
    channels = [cv2.filter2D(x[:, :, c], -1, kernel) for c in range(x.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


def glass_shuffle(image: np.ndarray, delta: int, offsets: np.ndarray) -> np.ndarray:
    """One pass of the scripts' local pixel shuffle, vectorised and provably identical.

    The scripts visit rows ``h`` from ``H - delta`` down to ``delta + 1`` and, inside,
    columns ``w`` likewise, drawing ``(dx, dy)`` in ``[-delta, delta)`` per pixel and
    running ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``. Because numpy's right-hand
    side holds *views*, that line copies ``x[h', w']`` into ``x[h, w]`` and leaves
    ``x[h', w']`` unchanged (it is not a swap). The benchmark was made with this
    copy semantics, so it is kept.

    Each visited pixel is written once, so its final value is the value its source
    had when it was visited: the already-final value if the source was visited
    earlier (it lies later in raster order and inside the visited block), else the
    original value. Following those links (pointer jumping) gives the same result as
    the sequential loop. ``offsets`` holds one ``(dx, dy)`` row per visited pixel in
    visiting order.
    """
    height, width = image.shape[:2]
    rows = np.arange(height - delta, delta, -1)
    cols = np.arange(width - delta, delta, -1)
    if rows.size == 0 or cols.size == 0:
        return image.copy()
    visit_rows = np.repeat(rows, cols.size)
    visit_cols = np.tile(cols, rows.size)
    visited = visit_rows * width + visit_cols
    source = (visit_rows + offsets[:, 1]) * width + (visit_cols + offsets[:, 0])

    in_block = np.zeros(height * width, dtype=bool)
    in_block[visited] = True
    # a pixel's source was already rewritten iff it is visited later in raster order
    chained = in_block[source] & (source > visited)

    link = np.arange(height * width)
    link[visited[chained]] = source[chained]
    while True:
        jumped = link[link]
        if np.array_equal(jumped, link):
            break
        link = jumped
    source_of = np.arange(height * width)
    source_of[visited] = source
    flat = image.reshape(height * width, -1)
    out = flat.copy()
    out[visited] = flat[source_of[link[visited]]]
    return out.reshape(image.shape)


def glass_blur(image: np.ndarray, params: tuple[float, int, int], rng: np.random.Generator) -> np.ndarray:
    """Blur, locally shuffle pixels ``iterations`` times, blur again.

    The intermediate image is truncated to uint8 as in the scripts. The scripts loop
    over the fixed benchmark size; here the loop bounds use the actual image size.
    """
    sigma, delta, iterations = params
    x = np.uint8(gaussian_rgb(image / 255.0, sigma) * 255)
    height, width = x.shape[:2]
    n_visited = max(0, height - 2 * delta) * max(0, width - 2 * delta)
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=(n_visited, 2))
        x = glass_shuffle(x, delta, offsets)
    return np.clip(gaussian_rgb(x / 255.0, sigma), 0, 1) * 255


def motion_blur(image: np.ndarray, params: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """ImageMagick-style motion blur at a uniform random angle in [-45, 45] degrees.

    Deviation: ImageMagick/Wand replaced by the numpy port in ``motion.py`` (same
    kernel, offsets and edge handling).
    """
    radius, sigma = params
    return motion.motion_blur(image, radius, sigma, rng.uniform(-45, 45)).astype(np.float64)


def zoom_blur(image: np.ndarray, params: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Average of the image and its centre zooms by ``np.arange(*params)`` (deterministic).
    Non-square images are zoomed per axis (the scripts assume square ones)."""
    factors = np.arange(*params)
    x = (image / 255.0).astype(np.float32)
    total = np.zeros_like(x)
    for factor in factors:
        total += clipped_zoom(x, factor)
    x = (x + total) / (len(factors) + 1)
    return np.clip(x, 0, 1) * 255
