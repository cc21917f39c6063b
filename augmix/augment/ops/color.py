"""Pointwise and enhance kernels on batched uint8 images with per-image parameters.

Every kernel takes ``images`` shaped (N, C, H, W), dtype uint8, C in {1, 3}, and per-image
parameters shaped (N,) on the images' device. Results match ``torchvision.transforms.v2.functional``
applied image by image with the same parameter (exactly), which in turn follows PIL, the library
the official AugMix code uses. Nothing here synchronises with the host, so the kernels run
unchanged on any device.

Histograms and table lookups are counting and indexing, exact whoever does them. On CPU, for
large planes (``opencv_planes``), OpenCV's SIMD ``calcHist`` and ``LUT`` do them plane by plane,
several times faster than PyTorch's ``bincount`` and ``index_select``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from augmix.augment.ops.common import opencv, opencv_planes, per_image, plane_arrays, to_uint8

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's (and ITU-R 601's) luma weights
_LEVELS = 256


def _table_index(images: Tensor) -> Tensor:
    """Each value's position in the flattened (N, C, 256) tables: int32, never int64.

    Indexing with int32 offsets is several times faster on CPU than ``gather``, which needs an
    int64 copy of the whole batch.
    """
    n, c = images.shape[:2]
    offsets = torch.arange(n * c, device=images.device, dtype=torch.int32).mul_(_LEVELS).view(n, c, 1, 1)
    return images.to(torch.int32).add_(offsets)


def apply_lut(images: Tensor, lut: Tensor, index: Tensor | None = None) -> Tensor:
    """Map every pixel through its own image's and channel's 256-entry table ``lut`` (N, C, 256).
    ``index``, the values' table positions (``_table_index``), saves recomputing them."""
    if opencv_planes(images):
        out = torch.empty_like(images, memory_format=torch.contiguous_format)
        tables = lut.expand(*images.shape[:2], _LEVELS).contiguous().numpy().reshape(-1, _LEVELS)
        cv2 = opencv()
        for plane, table, result in zip(plane_arrays(images), tables, plane_arrays(out)):
            cv2.LUT(plane, table, dst=result)
        return out
    index = _table_index(images) if index is None else index
    return lut.reshape(-1).index_select(0, index.view(-1)).view_as(images)


def _levels(images: Tensor) -> Tensor:
    return torch.arange(_LEVELS, device=images.device, dtype=torch.float32)


def autocontrast_lut(images: Tensor) -> Tensor:
    """Stretch each channel so its darkest pixel becomes 0 and its brightest 255 (PIL semantics)."""
    flat = images.flatten(2)
    low = flat.amin(dim=2).float().unsqueeze(-1)
    high = flat.amax(dim=2).float().unsqueeze(-1)
    flat_channel = high == low
    scale = (high - low).mul_(1.0 / 255.0)
    low = low.masked_fill(flat_channel, 0.0)
    scale = scale.masked_fill(flat_channel, 1.0)
    return (_levels(images) - low).div_(scale).clamp_(0, 255).to(torch.uint8)


def _histograms(images: Tensor, index: Tensor | None) -> Tensor:
    """Counts of every level in every plane, (N, C, 256). ``index`` is ``_table_index(images)``,
    or ``None`` where OpenCV counts (``opencv_planes``).

    ``bincount`` is the fastest in PyTorch on CPU; elsewhere it reads the largest index back to
    the host, so a fixed-size ``index_add_`` keeps accelerators free of synchronisation.
    """
    n, c = images.shape[:2]
    if index is None:
        calc_hist = opencv().calcHist
        counts = [calc_hist([plane], [0], None, [_LEVELS], [0, _LEVELS]) for plane in plane_arrays(images)]
        return torch.from_numpy(np.stack(counts)).view(n, c, _LEVELS)  # float32: exact below 2**24
    flat = index.view(-1)
    size = n * c * _LEVELS
    if flat.device.type == "cpu":
        counts = torch.bincount(flat, minlength=size)
    else:
        counts = torch.zeros(size, device=flat.device, dtype=torch.int64)
        counts.index_add_(0, flat, torch.ones_like(flat, dtype=torch.int64))
    return counts.view(n, c, _LEVELS)


def _equalize_lut(images: Tensor, index: Tensor | None) -> Tensor:
    """Histogram-equalisation tables per channel, with PIL's step and rounding rule.

    PIL's integer divisions run in floating point, where they are vectorised and still exact:
    float32 floors ``a / b`` exactly for integers ``a < 2**24``, float64 below ``2**53``.
    """
    pixels = images[0, 0].numel()
    dtype = torch.float32 if 2 * pixels < 2**24 else torch.float64
    hist = _histograms(images, index).to(dtype)
    # PIL ignores the pixels of the brightest occupied level when it spreads the histogram.
    brightest = images.flatten(2).amax(dim=2, keepdim=True).long()
    step = hist.gather(2, brightest).neg_().add_(pixels).div_(255).floor_()
    # Level i maps to (count below i + step // 2) // step: 0 for level 0, as PIL's table starts.
    below = hist.cumsum(dim=2).sub_(hist)
    lut = below.add_(step.div(2).floor_()).div_(step.clamp(min=1)).floor_().clamp_(max=255)
    identity = _levels(images).to(dtype).expand_as(lut)
    return torch.where(step > 0, lut, identity).to(torch.uint8)


def equalize_lut(images: Tensor) -> Tensor:
    return _equalize_lut(images, None if opencv_planes(images) else _table_index(images))


def posterize_lut(images: Tensor, bits: Tensor) -> Tensor:
    """Keep the ``bits`` most significant bits of every value."""
    lut = torch.arange(_LEVELS, device=images.device, dtype=torch.uint8) & _bit_mask(bits).view(-1, 1)
    return lut.unsqueeze(1).expand(-1, images.shape[1], -1)


def _bit_mask(bits: Tensor) -> Tensor:
    return ((1 << bits.long()) - 1).mul_(1 << (8 - bits.long())).to(torch.uint8)


def solarize_lut(images: Tensor, threshold: Tensor) -> Tensor:
    """Invert every value at or above ``threshold``."""
    levels = torch.arange(_LEVELS, device=images.device)
    above = levels >= threshold.view(-1, 1)
    lut = torch.where(above, 255 - levels, levels).to(torch.uint8)
    return lut.unsqueeze(1).expand(-1, images.shape[1], -1)


def posterize(images: Tensor, bits: Tensor) -> Tensor:
    """Posterize directly with a bit mask: the same result as its table, without the lookup."""
    return images & per_image(_bit_mask(bits))


def solarize(images: Tensor, threshold: Tensor) -> Tensor:
    """Solarize directly: for uint8, ``255 - v`` equals ``v ^ 255``.

    ``v - t`` in int16 is negative exactly when ``v < t``; its sign bit, spread by an arithmetic
    shift and inverted, is the 0/255 mask to XOR with. This is several times faster on CPU than
    a uint8 comparison, which is not vectorised.
    """
    limit = threshold.to(torch.float64).ceil().clamp_(0, 256).to(torch.int16)
    difference = images.to(torch.int16).sub_(per_image(limit))
    return difference.bitwise_right_shift_(15).bitwise_not_().to(torch.uint8).bitwise_xor_(images)


def autocontrast(images: Tensor) -> Tensor:
    return apply_lut(images, autocontrast_lut(images))


def equalize(images: Tensor) -> Tensor:
    """Equalize, computing each value's table position (if needed) once for the histogram and
    the lookup."""
    index = None if opencv_planes(images) else _table_index(images)
    return apply_lut(images, _equalize_lut(images, index), index)


def _blend(images: Tensor, degenerate: Tensor, factor: Tensor) -> Tensor:
    """``factor * image + (1 - factor) * degenerate``, clamped and truncated like torchvision.

    ``addcmul`` rounds like torchvision's ``mul(ratio).add_(degenerate, alpha=1 - ratio)`` on one
    image (a fused multiply-add), so results are bit-identical.
    """
    ratio = per_image(factor.to(torch.float64))
    out = images.float() * ratio.float()
    out.addcmul_(degenerate, (1.0 - ratio).float())
    return to_uint8(out.clamp_(0, 255))


def grayscale(images: Tensor) -> Tensor:
    """Luma as float, floored like torchvision does before blending uint8 images."""
    if images.shape[1] == 1:
        return images.float()
    r, g, b = images.float().unbind(dim=1)
    gray = r.mul(_GRAY_WEIGHTS[0]).add_(g, alpha=_GRAY_WEIGHTS[1]).add_(b, alpha=_GRAY_WEIGHTS[2])
    return gray.unsqueeze(1).floor_()


def brightness_lut(images: Tensor, factor: Tensor) -> Tensor:
    """Scale towards black: ``factor * v``."""
    ratio = factor.to(torch.float64).float().view(-1, 1)
    lut = (_levels(images) * ratio).clamp_(0, 255).to(torch.uint8)
    return lut.unsqueeze(1).expand(-1, images.shape[1], -1)


def contrast_lut(images: Tensor, factor: Tensor) -> Tensor:
    """Blend towards the image's mean grey level, as one table per image."""
    mean = grayscale(images).mean(dim=(1, 2, 3))
    levels = _levels(images).view(1, 1, 1, _LEVELS).expand(images.shape[0], 1, 1, _LEVELS)
    lut = _blend(levels, mean.view(-1, 1, 1, 1), factor)
    return lut.view(-1, 1, _LEVELS).expand(-1, images.shape[1], -1)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    return apply_lut(images, brightness_lut(images, factor))


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    return apply_lut(images, contrast_lut(images, factor))


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``ImageEnhance.Color``: blend each pixel with its own grey level."""
    if images.shape[1] == 1:
        return images.clone()
    return _blend(images, grayscale(images), factor)


def adjust_sharpness(images: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``ImageEnhance.Sharpness``: blend with a smoothed copy; the border stays as is.

    The smoothing kernel is (1 1 1 / 1 5 1 / 1 1 1) / 13, computed as an exact int16 box sum
    (separable) plus 4x the centre. ``S / 13`` is never within 1/26 of a half, so rounding it
    equals rounding torchvision's float convolution. The blend is torchvision's form,
    ``v + (1 - factor) * (smooth - v)``, so interior pixels round the same way.
    """
    h, w = images.shape[-2:]
    if h <= 2 or w <= 2:
        return images.clone()
    values = images.to(torch.int16)
    rows = values[..., :-2] + values[..., 1:-1] + values[..., 2:]
    sums = rows[..., :-2, :] + rows[..., 1:-1, :]
    sums += rows[..., 2:, :]
    centre = values[..., 1:-1, 1:-1]
    smooth = sums.add_(centre, alpha=4).float().div_(13.0).round_()
    interior = centre.float()
    keep = (1.0 - per_image(factor.to(torch.float64))).float()
    interior.addcmul_(smooth.sub_(interior), keep)
    out = images.clone()
    out[..., 1:-1, 1:-1] = to_uint8(interior.clamp_(0, 255))
    return out
