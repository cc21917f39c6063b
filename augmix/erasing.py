"""Random erasing (CutOut) on normalised batches, drawn from an explicit generator.

timm's ``RandomErasing`` loops over images with Python's global RNG. This is the same recipe,
batched: each image is erased with probability ``prob`` by one rectangle whose area share is
uniform in ``area`` and whose aspect ratio is log-uniform in ``ratio``; of 10 candidate shapes
the first that fits is used (none fits: the image is left alone). The rectangle is filled with 0
(``const``, the dataset mean after normalisation), one normal colour (``rand``) or per-pixel
normal noise (``pixel``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from augmix.mixing import box_masks
from augmix.rules import ERASE_AREA, ERASE_MODE, ERASE_RATIO, PROBABILITY, check
from augmix.tensors import to_device

ATTEMPTS = 10  # candidate shapes per image, as in timm


def erase_boxes(
    count: int,
    height: int,
    width: int,
    prob: float,
    area: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> Tensor:
    """(count, 4) boxes (top, bottom, left, right); an empty box where nothing is erased."""
    apply = torch.rand(count, generator=generator) < prob
    share = torch.rand(count, ATTEMPTS, generator=generator, dtype=torch.float64) * (area[1] - area[0]) + area[0]
    target_area = share * (height * width)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(torch.rand(count, ATTEMPTS, generator=generator, dtype=torch.float64) * (log_hi - log_lo) + log_lo)
    h = torch.round(torch.sqrt(target_area * aspect)).long()
    w = torch.round(torch.sqrt(target_area / aspect)).long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(dim=1, keepdim=True)  # the first candidate that fits
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
    keep = apply & fits.any(dim=1)
    h, w = torch.where(keep, h, 0), torch.where(keep, w, 0)
    top = (torch.rand(count, generator=generator, dtype=torch.float64) * (height - h + 1)).long()  # 0..H-h
    left = (torch.rand(count, generator=generator, dtype=torch.float64) * (width - w + 1)).long()
    return torch.stack([top, top + h, left, left + w], dim=1)


def erase(images: Tensor, boxes: Tensor, mode: str, generator: torch.Generator) -> Tensor:
    """Fill each image's box according to ``mode``; returns a new tensor on the images' device.

    Noise for ``rand``/``pixel`` comes from a generator on the images' device seeded from
    ``generator``: reproducible for a given device type, and never a host-to-device copy of a
    full noise batch.
    """
    count, channels, height, width = images.shape
    inside = box_masks(to_device(boxes, images.device), height, width, images.device)
    if mode == "const":
        return images.masked_fill(inside, 0.0)
    noise_generator = torch.Generator(device=images.device)
    noise_generator.manual_seed(int(torch.randint(0, 2**62, (), generator=generator)))
    shape = (count, channels, 1, 1) if mode == "rand" else images.shape
    fill = torch.randn(shape, generator=noise_generator, device=images.device, dtype=images.dtype)
    return torch.where(inside, fill, images)


class RandomErasing:
    """Erases views of a batch; ``first_view`` skips the leading (clean) views.

    Each erased image draws its own box, so aug1 and aug2 of one image lose different regions and
    the consistency loss asks for agreement across occlusions.
    """

    def __init__(
        self,
        prob: float,
        area: tuple[float, float] = (0.02, 1 / 3),
        ratio: tuple[float, float] = (0.3, 1 / 0.3),
        mode: str = "const",
        first_view: int = 0,
    ) -> None:
        for name, value, rule in (
            ("prob", prob, PROBABILITY), ("area", area, ERASE_AREA), ("ratio", ratio, ERASE_RATIO), ("mode", mode, ERASE_MODE),
        ):
            check(name, value, rule)  # the rules of the augmix.erase config group
        self.prob, self.mode, self.first_view = float(prob), mode, first_view
        self.area, self.ratio = (float(area[0]), float(area[1])), (float(ratio[0]), float(ratio[1]))

    def __call__(self, views: list[Tensor], generator: torch.Generator) -> list[Tensor]:
        erased = views[self.first_view :]
        batch = torch.cat(erased)
        _, _, height, width = batch.shape
        boxes = erase_boxes(len(batch), height, width, self.prob, self.area, self.ratio, generator)
        return [*views[: self.first_view], *erase(batch, boxes, self.mode, generator).chunk(len(erased))]
