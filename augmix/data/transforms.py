"""Per-sample base transforms on uint8 (C, H, W) tensors, driven by an explicit generator.

They run once per sample; the clean view and both AugMix views share the result. Taking the
generator as an argument (instead of torch's global RNG) keeps a batch's crops a pure function of
its key, whatever worker or process builds it.
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor


def _coin(generator: torch.Generator) -> bool:
    return bool(torch.rand((), generator=generator) < 0.5)


class RandomCropFlip:
    """CIFAR training crop: zero-pad by ``padding``, crop ``size`` at random, flip half the time."""

    def __init__(self, size: int = 32, padding: int = 4, hflip: bool = True) -> None:
        self.size, self.padding, self.hflip = size, padding, hflip

    @property
    def min_image_size(self) -> int:
        """The shortest side this crop can take: its size less the padding on both sides."""
        return max(1, self.size - 2 * self.padding)

    def __call__(self, image: Tensor, generator: torch.Generator) -> Tensor:
        p = self.padding
        if min(image.shape[-2:]) < self.min_image_size:
            h, w = image.shape[-2:]
            raise ValueError(
                f"a {w}x{h} image is smaller than the {self.min_image_size}x{self.min_image_size} this crop needs "
                f"(a {self.size}px crop after padding by {p})"
            )
        padded = torch.nn.functional.pad(image, (p, p, p, p)) if p else image
        h, w = padded.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, (), generator=generator))
        left = int(torch.randint(0, w - self.size + 1, (), generator=generator))
        out = padded[:, top : top + self.size, left : left + self.size]
        if self.hflip and _coin(generator):
            out = out.flip(-1)
        return out.contiguous()

    def __repr__(self) -> str:
        return f"RandomCropFlip(size={self.size}, padding={self.padding}, hflip={self.hflip})"


class RandomResizedCropFlip:
    """ImageNet training crop (torchvision's RandomResizedCrop sampling rule) plus a random flip."""

    def __init__(
        self,
        size: int = 224,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: bool = True,
    ) -> None:
        self.size, self.scale, self.ratio, self.hflip = size, tuple(scale), tuple(ratio), hflip

    def crop_box(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int]:
        """(top, left, h, w): ten tries at a random area and aspect ratio, then a centre crop."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            u = torch.rand(2, dtype=torch.float64, generator=generator)
            target_area = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * float(u[0]))
            aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * float(u[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, image: Tensor, generator: torch.Generator) -> Tensor:
        top, left, h, w = self.crop_box(*image.shape[-2:], generator)
        return self._flip(TF.resized_crop(image, top, left, h, w, [self.size, self.size], antialias=True), generator)

    def _flip(self, out: Tensor, generator: torch.Generator) -> Tensor:
        if self.hflip and _coin(generator):
            out = out.flip(-1)
        return out.contiguous()

    def from_file(self, path: str, generator: torch.Generator) -> Tensor | None:
        """The crop of the image file at ``path`` with draft-mode JPEG decoding
        (``augmix.data.decoding``): the same box and flip as ``self(decode_file(path), generator)``,
        decoded at a reduced DCT scale where the box is at least twice ``size``. None, with no
        draw made, when the file is not a JPEG (decode it in full)."""
        from augmix.data.decoding import decode_jpeg_bytes, draft_resized_crop, draft_scale, jpeg_size

        with open(path, "rb") as handle:
            data = handle.read()
        header = jpeg_size(data)
        if header is None:
            return None
        box = self.crop_box(*header, generator)
        scale = draft_scale(box[2], box[3], self.size)
        out = draft_resized_crop(data, box, scale, self.size) if scale > 1 else None
        if out is None:
            image = decode_jpeg_bytes(data)
            if tuple(image.shape[-2:]) != header:  # a header that lies about the size: crop what decodes
                raise ValueError(f"the header says {header[1]}x{header[0]} but {tuple(image.shape[-2:])[::-1]} decodes")
            out = TF.resized_crop(image, *box, [self.size, self.size], antialias=True)
        return self._flip(out, generator)

    def __repr__(self) -> str:
        return f"RandomResizedCropFlip(size={self.size}, scale={self.scale}, ratio={self.ratio}, hflip={self.hflip})"


class ResizeCenterCrop:
    """Evaluation resize of the shorter side then a centre crop (ImageNet: 256 then 224)."""

    def __init__(self, resize: int = 256, crop: int = 224) -> None:
        self.resize, self.crop = resize, crop

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        out = TF.resize(image, [self.resize], antialias=True)
        return TF.center_crop(out, [self.crop, self.crop]).contiguous()

    def __repr__(self) -> str:
        return f"ResizeCenterCrop(resize={self.resize}, crop={self.crop})"


class CenterCropOrPad:
    """Evaluation for fixed-size datasets: leave images of the right size as they are."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if image.shape[-2:] == (self.size, self.size):
            return image
        return TF.center_crop(image, [self.size, self.size]).contiguous()

    def __repr__(self) -> str:
        return f"CenterCropOrPad(size={self.size})"
