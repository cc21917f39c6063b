"""Geometric kernels on batched uint8 images with per-image parameters.

All warps are inverse maps in pixel-index coordinates (pixel centres at integer positions),
sampled bilinearly from the image extended by a constant ``fill`` colour, then rounded to uint8.
This is what PIL's ``Image.transform(..., BILINEAR)`` used by the official AugMix code does up to
its edge handling, and what ``torchvision.transforms.v2.functional.affine`` does with ``fill=None``
(for fill 0). Signs follow the official code: ``shear_x(s)`` reads the input at ``x + s * y`` and
``translate_x(t)`` at ``x + t``. The images are uint8, so every op rounds ``fill`` to integers.

Only rotation needs a general 2-D warp. A shear reads every output row from one input row at a
constant sub-pixel offset, and a translation moves whole rows or columns, so both are computed as
row copies from a fill-padded image (plus one linear interpolation for shears): exact, and several
times cheaper than ``grid_sample``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from augmix.augment.ops.common import Fill, fill_values, padded, row_windows, to_uint8, transpose_planes


def affine(images: Tensor, inverse: Tensor, fill: Fill = 0) -> Tensor:
    """Warp each image by its own 2x3 inverse matrix (output pixel -> input position).

    ``inverse`` (N, 2, 3) lives on the images' device. The sampling grid is the broadcast sum of
    a per-row and a per-column term, rather than a batched matmul, so an image's result does not
    depend on which other images share its batch. It is built as two planes (N, 2, H, W) and
    handed to ``grid_sample`` as a permuted view: the same values, several times cheaper to
    build than an interleaved (N, H, W, 2) grid.
    """
    n, c, h, w = images.shape
    device = images.device
    # grid_sample (align_corners=False) reads pixel i at (2i + 1) / size - 1: fold that in.
    scale = torch.full((1, 2, 1), 2.0 / w, dtype=torch.float64, device=device)
    scale[:, 1] = 2.0 / h
    coef = inverse.to(torch.float64) * scale
    coef[:, :, 2] += scale[:, :, 0] * 0.5 - 1.0
    x_coef, y_coef, offset = coef.float().view(n, 2, 3, 1, 1).unbind(2)  # each (N, 2, 1, 1)
    xs = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, 1, w)
    ys = torch.arange(h, device=device, dtype=torch.float32).view(1, 1, h, 1)
    grid = (torch.addcmul(offset, ys, y_coef) + xs * x_coef).permute(0, 2, 3, 1)  # (N, H, W, 2) view
    pixels = images.float()
    values = fill_values(fill, c)
    if any(values):
        for channel, value in enumerate(values):
            pixels[:, channel].sub_(value)
    warped = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    del pixels, grid  # free them before the result's conversions
    if any(values):
        for channel, value in enumerate(values):
            warped[:, channel].add_(value)
    return to_uint8(warped.round_())


def rotate_matrix(degrees: Tensor, height: int, width: int) -> Tensor:
    """Counter-clockwise rotation about the image centre, like PIL's and torchvision's rotate."""
    theta = degrees.to(torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    first = torch.stack((cos, -sin, cx - cos * cx + sin * cy), dim=-1)
    second = torch.stack((sin, cos, cy - sin * cx - cos * cy), dim=-1)
    return torch.stack((first, second), dim=1)


def rotate(images: Tensor, degrees: Tensor, fill: Fill = 0) -> Tensor:
    return affine(images, rotate_matrix(degrees, *images.shape[-2:]), fill)


def _shear_rows(images: Tensor, factor: Tensor, fill: Fill) -> Tensor:
    """Row r of the result reads row r of ``images`` at ``x + factor * (r + 0.5)``, as float.

    The offset's integer part picks a window of the padded row and its fraction interpolates
    inside it.
    """
    n, c, rows, length = images.shape
    pad = length + 1  # an offset beyond the row leaves only fill: clamp to it
    source = padded(images, 3, pad, pad, fill)
    centres = torch.arange(rows, device=images.device, dtype=torch.float64).add_(0.5)
    offset = factor.to(torch.float64).view(n, 1) * centres
    whole = offset.floor()
    fraction = (offset - whole).float().view(n, 1, rows, 1)
    starts = whole.clamp_(-pad, length).add_(pad).long().view(n, 1, rows).expand(n, c, rows)
    windows = row_windows(source.view(n * c * rows, -1), starts.reshape(-1), length + 1)
    windows = windows.view(n, c, rows, length + 1).float()
    return torch.lerp(windows[..., :-1], windows[..., 1:], fraction).round_()


def shear_x(images: Tensor, factor: Tensor, fill: Fill = 0) -> Tensor:
    """PIL's ``(1, s, 0, 0, 1, 0)`` about the top-left corner: reads the input at ``x + s * (y + 0.5)``
    in pixel-centre coordinates."""
    return to_uint8(_shear_rows(images, factor, fill))


def shear_y(images: Tensor, factor: Tensor, fill: Fill = 0) -> Tensor:
    """The transpose of ``shear_x``: reads the input at ``y + s * (x + 0.5)``."""
    return transpose_planes(to_uint8(_shear_rows(transpose_planes(images), factor, fill)))


def _translate(images: Tensor, pixels: Tensor, dim: int, fill: Fill) -> Tensor:
    """Integer shift along ``dim``: ``output[i] = input[i + pixels]``, fill outside.

    Each row (``dim`` = 3) or each whole channel plane (``dim`` = 2) is one window copied out of
    a fill-padded image.
    """
    n, c, h, w = images.shape
    size = images.shape[dim]
    source = padded(images, dim, size, size, fill)  # a shift of a full size or more leaves only fill
    starts = pixels.to(torch.float64).clamp(-size, size).add_(size).long()
    if dim == 3:
        starts = starts.view(n, 1, 1).expand(n, c, h)
        return row_windows(source.view(n * c * h, -1), starts.reshape(-1), w).view(n, c, h, w)
    starts = starts.mul_(w).view(n, 1).expand(n, c)
    return row_windows(source.view(n * c, -1), starts.reshape(-1), h * w).view(n, c, h, w)


def translate_x(images: Tensor, pixels: Tensor, fill: Fill = 0) -> Tensor:
    return _translate(images, pixels, dim=3, fill=fill)


def translate_y(images: Tensor, pixels: Tensor, fill: Fill = 0) -> Tensor:
    return _translate(images, pixels, dim=2, fill=fill)
