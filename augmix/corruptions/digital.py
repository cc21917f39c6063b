"""Digital and geometric corruptions (brightness, contrast, saturate, elastic,
pixelate, JPEG). Same contract as ``noise.py``; deviations are noted per function,
the others compute exactly what the scripts compute (random draws aside)."""

from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates
from skimage.color import hsv2rgb, rgb2hsv

from augmix.corruptions.filters import gaussian_2d


def brightness(image: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    """Add ``shift`` to the HSV value channel (deterministic)."""
    hsv = rgb2hsv(image / 255.0)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + shift, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def contrast(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Shrink each channel towards its mean by ``factor`` (deterministic)."""
    x = image / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * factor + means, 0, 1) * 255


def saturate(image: np.ndarray, params: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Scale and shift HSV saturation (deterministic). Severities 1-2 desaturate and
    3-5 oversaturate, as in the scripts."""
    scale, offset = params
    hsv = rgb2hsv(image / 255.0)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * scale + offset, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def jpeg_compression(image: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Pillow JPEG round trip at ``quality`` (deterministic; Pillow's default 4:2:0
    chroma subsampling as in the scripts)."""
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def pixelate(image: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Box-downsample to ``fraction`` of the size and box-upsample back (deterministic).
    The scripts size by the benchmark resolution; here by the actual image size."""
    height, width = image.shape[:2]
    small = (max(1, int(width * fraction)), max(1, int(height * fraction)))
    pil = Image.fromarray(image).resize(small, Image.Resampling.BOX)
    return np.asarray(pil.resize((width, height), Image.Resampling.BOX))


def elastic_transform(image: np.ndarray, params: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Random affine warp followed by a smooth random displacement field.

    ``params`` = (alpha, sigma, affine_jitter) in pixels: the displacement field is
    uniform noise blurred with ``sigma`` and scaled by ``alpha``; the three affine
    control points move by up to ``affine_jitter``. Later severities trade affine
    jitter for local displacement, as in the scripts.
    """
    alpha, sigma, jitter = params
    x = np.array(image, dtype=np.float32) / 255.0
    shape = x.shape
    size = shape[:2]

    centre = np.float32(size) // 2
    square = min(size) // 3
    src = np.float32([centre + square,
                      [centre[0] + square, centre[1] - square],
                      centre - square])
    dst = src + rng.uniform(-jitter, jitter, size=src.shape).astype(np.float32)
    affine = cv2.getAffineTransform(src, dst)
    x = cv2.warpAffine(x, affine, size[::-1], borderMode=cv2.BORDER_REFLECT_101)

    dx = (gaussian_2d(rng.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3)
          * alpha).astype(np.float32)
    dy = (gaussian_2d(rng.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3)
          * alpha).astype(np.float32)
    cols, rows, chans = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    coords = (np.reshape(rows + dy[..., None], (-1, 1)),
              np.reshape(cols + dx[..., None], (-1, 1)),
              np.reshape(chans, (-1, 1)))
    warped = map_coordinates(x, coords, order=1, mode="reflect").reshape(shape)
    return np.clip(warped, 0, 1) * 255
