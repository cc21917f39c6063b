"""Geometric kernels on batched uint8 images with per-image parameters.

All warps are inverse maps in pixel-index coordinates (pixel centres at integer positions),
sampled bilinearly from the image extended by a constant ``fill`` colour, then rounded to uint8.
This is what PIL's ``Image.transform(..., BILINEAR)`` used by the official AugMix code does up to
its edge handling, and what ``torchvision.transforms.v2.functional.affine`` does with ``fill=None``
(for fill 0). Signs follow the official code: ``shear_x(s)`` reads the input at ``x + s * y`` and
``translate_x(t)`` at ``x + t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Fill = int | float | Sequence[float]


def _fill_tensor(fill: Fill, images: Tensor) -> Tensor:
    values = torch.as_tensor(fill, dtype=torch.float32, device=images.device).reshape(-1)
    if values.numel() not in (1, images.shape[1]):
        raise ValueError(f"fill has {values.numel()} values but the images have {images.shape[1]} channels")
    return values.expand(images.shape[1]).reshape(1, -1, 1, 1)


def _has_fill(fill: Fill) -> bool:
    return any(float(v) != 0.0 for v in ([fill] if isinstance(fill, (int, float)) else fill))


def affine(images: Tensor, inverse: Tensor, fill: Fill = 0) -> Tensor:
    """Warp each image by its own 2x3 inverse matrix (output pixel -> input position).

    The grid is built elementwise rather than with a batched matmul, so an image's result does
    not depend on which other images share its batch.
    """
    n, c, h, w = images.shape
    inverse = inverse.to(images.device, torch.float32)
    xs = torch.arange(w, device=images.device, dtype=torch.float32).view(1, 1, w)
    ys = torch.arange(h, device=images.device, dtype=torch.float32).view(1, h, 1)
    m = inverse.view(n, 6, 1, 1).unbind(dim=1)
    source_x = m[0] * xs + m[1] * ys + m[2]
    source_y = m[3] * xs + m[4] * ys + m[5]
    # grid_sample with align_corners=False puts pixel i's centre at (2i + 1) / size - 1.
    grid = torch.stack(((2 * source_x + 1) / w - 1, (2 * source_y + 1) / h - 1), dim=-1)
    pixels = images.float()
    if _has_fill(fill):
        fill_values = _fill_tensor(fill, images)
        warped = F.grid_sample(pixels - fill_values, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        warped += fill_values
    else:
        warped = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped.round_().clamp_(0, 255).to(torch.uint8)


def _matrices(n: int, device: torch.device | None = None) -> Tensor:
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64, device=device)
    return eye.repeat(n, 1, 1)


def rotate_matrix(degrees: Tensor, height: int, width: int) -> Tensor:
    """Counter-clockwise rotation about the image centre, like PIL's and torchvision's rotate."""
    theta = degrees.to(torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    m = _matrices(theta.numel(), theta.device)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, 0, 2] = cx - cos * cx + sin * cy
    m[:, 1, 2] = cy - sin * cx - cos * cy
    return m


def shear_x_matrix(factor: Tensor) -> Tensor:
    """PIL's ``(1, s, 0, 0, 1, 0)`` about the top-left corner, in pixel-centre coordinates."""
    factor = factor.to(torch.float64)
    m = _matrices(factor.numel(), factor.device)
    m[:, 0, 1] = factor
    m[:, 0, 2] = 0.5 * factor
    return m


def shear_y_matrix(factor: Tensor) -> Tensor:
    factor = factor.to(torch.float64)
    m = _matrices(factor.numel(), factor.device)
    m[:, 1, 0] = factor
    m[:, 1, 2] = 0.5 * factor
    return m


def translate_matrix(dx: Tensor, dy: Tensor) -> Tensor:
    m = _matrices(dx.numel(), dx.device)
    m[:, 0, 2] = dx.to(torch.float64)
    m[:, 1, 2] = dy.to(torch.float64)
    return m


def rotate(images: Tensor, degrees: Tensor, fill: Fill = 0) -> Tensor:
    return affine(images, rotate_matrix(degrees, *images.shape[-2:]), fill)


def shear_x(images: Tensor, factor: Tensor, fill: Fill = 0) -> Tensor:
    return affine(images, shear_x_matrix(factor), fill)


def shear_y(images: Tensor, factor: Tensor, fill: Fill = 0) -> Tensor:
    return affine(images, shear_y_matrix(factor), fill)


def _shift(images: Tensor, pixels: Tensor, dim: int, fill: Fill) -> Tensor:
    """Integer shift along ``dim``: output[i] = input[i + pixels], fill outside.

    Bilinear sampling at integer offsets reads single pixels, so a gather from a padded copy
    gives the same result as ``affine`` several times faster.
    """
    pixels = pixels.to(images.device, torch.long)
    size = images.shape[dim]
    pad = size  # any shift of a full size or more leaves only fill
    shape = list(images.shape)
    shape[dim] += 2 * pad
    padded = images.new_empty(shape)
    padded.copy_(_fill_tensor(fill, images).round().to(torch.uint8).expand(shape))
    padded.narrow(dim, pad, size).copy_(images)
    positions = torch.arange(size, device=images.device) + pad
    index = (positions.view(1, -1) + pixels.clamp(-pad, pad).view(-1, 1))
    view_shape = [images.shape[0], 1, 1, 1]
    view_shape[dim] = size
    return torch.gather(padded, dim, index.view(view_shape).expand(images.shape))


def translate_x(images: Tensor, pixels: Tensor, fill: Fill = 0) -> Tensor:
    return _shift(images, pixels, dim=3, fill=fill)


def translate_y(images: Tensor, pixels: Tensor, fill: Fill = 0) -> Tensor:
    return _shift(images, pixels, dim=2, fill=fill)
