"""Pointwise and enhance kernels on batched uint8 images with per-image parameters.

Every kernel takes ``images`` shaped (N, C, H, W), dtype uint8, C in {1, 3}, and per-image
parameters shaped (N,). Results match ``torchvision.transforms.v2.functional`` applied image by
image with the same parameter (exactly for the lookup-table ops), which in turn follows PIL, the
library the official AugMix code uses. Nothing here synchronises with the host, so the kernels run
unchanged on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's (and ITU-R 601's) luma weights
_LEVELS = 256


def _per_image(values: Tensor, images: Tensor) -> Tensor:
    """Reshape a per-image parameter (N,) so it broadcasts against (N, C, H, W)."""
    return values.reshape(-1, 1, 1, 1).to(images.device)


def apply_lut(images: Tensor, lut: Tensor) -> Tensor:
    """Map every pixel through its own image's and channel's 256-entry table.

    ``lut`` is (N, C, 256) uint8. Indexing with int32 offsets is several times faster on CPU
    than ``gather``, which needs an int64 copy of the whole batch.
    """
    n, c = images.shape[:2]
    offsets = torch.arange(n * c, device=images.device, dtype=torch.int32).mul_(_LEVELS).view(n, c, 1, 1)
    index = images.to(torch.int32).add_(offsets)
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


def equalize_lut(images: Tensor) -> Tensor:
    """Histogram-equalisation tables per channel, with PIL's step and rounding rule."""
    n, c = images.shape[:2]
    pixels = images[0, 0].numel()
    offsets = torch.arange(n * c, device=images.device, dtype=torch.int32).mul_(_LEVELS).view(n, c, 1, 1)
    index = images.to(torch.int32).add_(offsets).view(-1)
    hist = torch.bincount(index, minlength=n * c * _LEVELS).view(n, c, _LEVELS)
    cum_hist = hist.cumsum(dim=2)
    # PIL ignores the pixels of the brightest occupied level when it spreads the histogram.
    last_level = cum_hist.argmax(dim=2, keepdim=True)
    step = (pixels - hist.gather(2, last_level)).div_(255, rounding_mode="floor")
    lut = cum_hist[..., :-1].add(step // 2).div_(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[..., :1]), lut], dim=2)
    identity = torch.arange(_LEVELS, device=images.device).expand_as(lut)
    return torch.where(step > 0, lut, identity).to(torch.uint8)


def posterize_lut(images: Tensor, bits: Tensor) -> Tensor:
    """Keep the ``bits`` most significant bits of every value."""
    mask = _bit_mask(bits.to(images.device))
    lut = torch.arange(_LEVELS, device=images.device, dtype=torch.uint8) & mask.view(-1, 1)
    return lut.unsqueeze(1).expand(-1, images.shape[1], -1)


def _bit_mask(bits: Tensor) -> Tensor:
    return ((1 << bits.long()) - 1).mul_(1 << (8 - bits.long())).to(torch.uint8)


def solarize_lut(images: Tensor, threshold: Tensor) -> Tensor:
    """Invert every value at or above ``threshold``."""
    levels = torch.arange(_LEVELS, device=images.device)
    above = levels >= threshold.to(images.device).view(-1, 1)
    lut = torch.where(above, 255 - levels, levels).to(torch.uint8)
    return lut.unsqueeze(1).expand(-1, images.shape[1], -1)


def posterize(images: Tensor, bits: Tensor) -> Tensor:
    """Posterize directly with a bit mask: the same result as its table, without the lookup."""
    return images & _per_image(_bit_mask(bits), images)


def solarize(images: Tensor, threshold: Tensor) -> Tensor:
    """Solarize directly: for uint8, ``255 - v`` equals ``v ^ 255``."""
    above = images >= _per_image(threshold, images).to(images.dtype)
    return images ^ above.to(torch.uint8).neg_()


def autocontrast(images: Tensor) -> Tensor:
    return apply_lut(images, autocontrast_lut(images))


def equalize(images: Tensor) -> Tensor:
    return apply_lut(images, equalize_lut(images))


def _blend(images: Tensor, degenerate: Tensor, factor: Tensor) -> Tensor:
    """``factor * image + (1 - factor) * degenerate``, clamped and truncated like torchvision.

    ``addcmul`` rounds like torchvision's ``mul(ratio).add_(degenerate, alpha=1 - ratio)`` on one
    image (a fused multiply-add), so results are bit-identical.
    """
    ratio = _per_image(factor.to(torch.float64), images)
    out = images.float() * ratio.float()
    out.addcmul_(degenerate, (1.0 - ratio).float())
    return out.clamp_(0, 255).to(torch.uint8)


def grayscale(images: Tensor) -> Tensor:
    """Luma as float, floored like torchvision does before blending uint8 images."""
    if images.shape[1] == 1:
        return images.float()
    r, g, b = images.float().unbind(dim=1)
    gray = r.mul(_GRAY_WEIGHTS[0]).add_(g, alpha=_GRAY_WEIGHTS[1]).add_(b, alpha=_GRAY_WEIGHTS[2])
    return gray.unsqueeze(1).floor_()


def brightness_lut(images: Tensor, factor: Tensor) -> Tensor:
    """Scale towards black: ``factor * v``."""
    ratio = factor.to(images.device, torch.float64).float().view(-1, 1)
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


_SHARPEN_KERNEL = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))


def adjust_sharpness(images: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``ImageEnhance.Sharpness``: blend with a smoothed copy; the border stays as is.

    Written as ``v + (1 - factor) * (smooth - v)``, torchvision's form, so border pixels are
    exactly untouched and interior pixels round the same way.
    """
    n, c, h, w = images.shape
    if h <= 2 or w <= 2:
        return images.clone()
    kernel = torch.tensor(_SHARPEN_KERNEL, device=images.device) / 13.0
    pixels = images.float()
    smooth = torch.nn.functional.conv2d(pixels.view(n * c, 1, h, w), kernel.view(1, 1, 3, 3))
    smooth = smooth.view(n, c, h - 2, w - 2).round_()
    interior = pixels[..., 1:-1, 1:-1]
    keep = (1.0 - _per_image(factor.to(torch.float64), images)).float()
    interior.addcmul_(smooth.sub_(interior), keep)
    return pixels.clamp_(0, 255).to(torch.uint8)
