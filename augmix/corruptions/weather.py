"""Weather corruptions (snow, frost, fog, spatter). Same contract as ``noise.py``."""

from __future__ import annotations

import cv2
import numpy as np

from augmix.corruptions import motion
from augmix.corruptions.filters import clipped_zoom, gaussian_2d, next_power_of_two, plasma_fractal
from augmix.corruptions.textures import frost_texture


def fog(image: np.ndarray, params: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Add a plasma-fractal haze and renormalise by the image maximum.

    The scripts use a fixed fractal size (32/64/256 for their 32/64/224 images); here
    it is the next power of two covering the image, which gives the same sizes there.
    """
    strength, decay = params
    x = image / 255.0
    max_val = x.max()
    height, width = x.shape[:2]
    haze = plasma_fractal(next_power_of_two(max(height, width)), decay, rng)
    x = x + strength * haze[:height, :width][..., np.newaxis]
    return np.clip(x * max_val / (max_val + strength), 0, 1) * 255


def frost(image: np.ndarray, params: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Blend ``keep * image + amount * frost`` with a random crop of a frost texture.

    Deviation: the scripts crop one of their frost photographs (``randint(5)`` picks
    among frost1-5; frost6 is listed but never drawn), resized by ``resize``. Those
    photographs are not shipped here, so a procedural texture (``textures.py``) is
    used instead: it is generated at photograph scale, resized by the same factor
    with the same ``cv2.resize`` call, and cropped with the same ``randint(0, size -
    crop)`` logic. The sheet is only 1.5x the crop (the photographs are larger);
    the texture is stationary, so any crop position is statistically alike. Blend
    coefficients are the scripts' own.
    """
    keep, amount, resize = params
    height, width = image.shape[:2]
    sheet_h = int(np.ceil(1.5 * height / resize)) + 2
    sheet_w = int(np.ceil(1.5 * width / resize)) + 2
    sheet = frost_texture(sheet_h, sheet_w, rng)
    if resize != 1.0:
        sheet = cv2.resize(sheet, (0, 0), fx=resize, fy=resize)
    top = rng.integers(0, sheet.shape[0] - height)
    left = rng.integers(0, sheet.shape[1] - width)
    crop = sheet[top:top + height, left:left + width]
    return np.clip(keep * image + amount * crop.astype(np.float64), 0, 255)


def snow(image: np.ndarray, params: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Zoomed, thresholded noise flakes, motion-blurred at a random angle in
    [-135, -45] degrees, added twice (once rotated by 180 degrees) over a brightened,
    greyed image.

    Deviation: the flake motion blur uses the numpy port of ImageMagick's motion blur
    (``motion.py``) instead of Wand; the layer is quantised to uint8 before and after
    the blur exactly as the scripts' PNG round trip does.
    """
    loc, scale, zoom, threshold, radius, sigma, keep = params
    x = np.array(image, dtype=np.float32) / 255.0
    flakes = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    flakes = clipped_zoom(flakes[..., np.newaxis], zoom)
    flakes[flakes < threshold] = 0
    flakes_u8 = (np.clip(flakes.squeeze(-1), 0, 1) * 255).astype(np.uint8)
    flakes_u8 = motion.motion_blur(flakes_u8, radius, sigma, rng.uniform(-135, -45))
    layer = (flakes_u8 / 255.0)[..., np.newaxis]

    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    x = keep * x + (1 - keep) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def _to_uint8_wrapping(values: np.ndarray) -> np.ndarray:
    # The scripts write ``(layer * 255).astype(np.uint8)``; on x86 an out-of-range
    # float wraps modulo 256 (C cast via int). numpy 2 leaves that cast undefined, so
    # the wrap is made explicit through int64.
    return (values * 255).astype(np.int64).astype(np.uint8)


def water_drops(x: np.ndarray, liquid: np.ndarray, intensity: float) -> np.ndarray:
    """Pale turquoise drops where the thresholded ``liquid`` layer has edges, over ``x`` in [0, 1];
    the -C spatter and the -P spatter sequences both draw them this way."""
    liquid_u8 = _to_uint8_wrapping(liquid)
    dist = 255 - cv2.Canny(liquid_u8, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)
    dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)

    # the scripts go through BGRA; the alpha channel is dropped again at the end,
    # so only the (identical) colour channels of the mask matter
    mask = liquid_u8 * dist
    peak = mask.max()
    if peak == 0:
        return x
    mask = (mask / peak * intensity)[..., np.newaxis]
    water = np.array([175, 238, 238], dtype=np.float32) / 255.0
    return np.clip(x + mask * water, 0, 1)


def spatter(image: np.ndarray, params: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Water drops (pale turquoise, severities with ``mud == 0``) or mud splashes
    (brown) from thresholded, blurred noise.

    Deviation: if the water mask is empty the scripts divide 0 by 0 and produce NaN
    pixels; here the image is returned unchanged instead.
    """
    loc, scale, sigma, threshold, intensity, mud = params
    x = np.array(image, dtype=np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    liquid = gaussian_2d(liquid, sigma)
    liquid[liquid < threshold] = 0

    if mud == 0:
        return water_drops(x, liquid, intensity) * 255

    mask = gaussian_2d(np.where(liquid > threshold, 1, 0).astype(np.float32), intensity)
    mask[mask < 0.8] = 0
    mud_colour = np.array([63, 42, 20], dtype=np.float32) / 255.0
    mask = mask[..., np.newaxis]
    return np.clip(x * (1 - mask) + mud_colour * mask, 0, 1) * 255
