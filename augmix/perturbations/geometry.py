"""Geometric frame operations of the -P creation scripts: affine warps and the camera tilt.

The scripts warp with ``torchvision.transforms.functional.affine`` as it was in 2018
(torchvision 0.2.x): the image centre is ``(w / 2 + 0.5, h / 2 + 0.5)``, shear turns the y axis
(``RSS = [[cos a, -sin(a + shear)], [sin a, cos(a + shear)]] * scale``) and Pillow resamples
through the inverse matrix, filling with black. Current torchvision changed the centre and the
shear matrix, so the warp is computed here with the old conventions and handed to Pillow, which
still does the resampling.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

NEAREST = Image.Resampling.NEAREST  # the scripts' default for translate
BILINEAR = Image.Resampling.BILINEAR


def inverse_affine(size: tuple[int, int], angle: float, translate: tuple[float, float], scale: float,
                   shear: float) -> tuple[float, ...]:
    """Pillow's AFFINE data (output -> input pixel map) for a warp about the image centre.

    The forward map is ``p -> t + c + RSS (p - c)``; its inverse is ``q -> c + RSS^-1 (q - c - t)``.
    """
    width, height = size
    cx, cy = width * 0.5 + 0.5, height * 0.5 + 0.5
    a, s = math.radians(angle), math.radians(shear)
    # RSS^-1 = 1 / (scale * cos(shear)) * [[cos(a + s), sin(a + s)], [-sin a, cos a]]
    det = math.cos(a + s) * math.cos(a) + math.sin(a + s) * math.sin(a)
    factor = 1.0 / (scale * det)
    m00, m01 = factor * math.cos(a + s), factor * math.sin(a + s)
    m10, m11 = -factor * math.sin(a), factor * math.cos(a)
    x, y = -cx - translate[0], -cy - translate[1]
    return (m00, m01, m00 * x + m01 * y + cx, m10, m11, m10 * x + m11 * y + cy)


def affine(image: np.ndarray, angle: float = 0.0, translate: tuple[float, float] = (0, 0), scale: float = 1.0,
           shear: float = 0.0, resample: Image.Resampling = BILINEAR) -> np.ndarray:
    """Warp a uint8 (H, W, 3) image keeping its size; uncovered pixels are black."""
    pil = Image.fromarray(image)
    data = inverse_affine(pil.size, angle, translate, scale, shear)
    return np.asarray(pil.transform(pil.size, Image.Transform.AFFINE, data, resample))


def tilt(image: np.ndarray, degrees: float) -> np.ndarray:
    """View the image from a camera turned by ``degrees`` about both the x and y axes.

    The scripts' projection: centre the image, rotate about x then y by the same angle, push it
    to depth ``f = sqrt(w^2 + h^2)`` and project with focal length ``f``; OpenCV resamples
    bilinearly and fills with black.
    """
    height, width = image.shape[:2]
    phi = theta = np.deg2rad(degrees)
    f = np.sqrt(width**2 + height**2)
    lift = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1], [0, 0, 1]])
    rot_x = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0],
                      [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]])
    rot_y = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0],
                      [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
    push = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    project = np.array([[f, 0, width / 2, 0], [0, f, height / 2, 0], [0, 0, 1, 0]])
    matrix = project @ push @ rot_x @ rot_y @ lift
    return cv2.warpPerspective(image, matrix, (width, height))
