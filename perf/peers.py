"""The per-image AugMix pipelines the benchmark compares against, each making one JSD triplet.

Every peer is timed doing what a data loader does for one training sample: the clean view as a
float tensor plus two AugMix views, one image at a time.

* torchvision: ``transforms.v2.AugMix`` on a uint8 tensor, called twice. Its default ``all_ops``
  is True; it is set to match the project's op list.
* timm: ``augment_and_mix_transform('augmix-m3-w3', ...)`` on a PIL image with the hparams timm's
  ``create_transform`` passes, called twice. timm always draws from 13 ops (the enhance ops too).
* official: the official AugMix code (google-research/augmix, ``augmentations.py`` and
  ``cifar.py``'s ``aug``) with PIL, numpy and ``preprocess = ToTensor + Normalize``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torchvision.transforms as T1
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageOps
from timm.data.auto_augment import augment_and_mix_transform


def torchvision_triplet(all_ops: bool) -> Callable[[torch.Tensor], tuple]:
    augmix = T.AugMix(severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=all_ops)

    def triplet(image: torch.Tensor) -> tuple:
        return TF.to_dtype(image, torch.float32, scale=True), augmix(image), augmix(image)

    return triplet


def timm_triplet(size: int, mean: tuple[float, ...]) -> Callable[[Image.Image], tuple]:
    hparams = {
        "translate_const": int(size * 0.45),
        "img_mean": tuple(min(255, round(255 * m)) for m in mean),
        "interpolation": Image.BILINEAR,
        "translate_pct": 0.3,
    }
    augmix = augment_and_mix_transform("augmix-m3-w3", hparams)

    def triplet(image: Image.Image) -> tuple:
        return TF.pil_to_tensor(image).float().div_(255), augmix(image), augmix(image)

    return triplet


def official_triplet(size: int, seed: int = 0) -> Callable[[Image.Image], tuple]:
    """The official code's ops and ``aug``; ``IMAGE_SIZE`` is the image's size."""
    rng = np.random.default_rng(seed)
    preprocess = T1.Compose([T1.ToTensor(), T1.Normalize([0.5] * 3, [0.5] * 3)])

    def int_parameter(level: float, maxval: float) -> int:
        return int(level * maxval / 10)

    def float_parameter(level: float, maxval: float) -> float:
        return float(level) * maxval / 10.0

    def sample_level(n: int) -> float:
        return rng.uniform(low=0.1, high=n)

    def signed(value: float) -> float:
        return -value if rng.uniform() > 0.5 else value

    def affine(image: Image.Image, data: tuple) -> Image.Image:
        return image.transform((size, size), Image.AFFINE, data, resample=Image.BILINEAR)

    ops = [
        lambda im, lv: ImageOps.autocontrast(im),
        lambda im, lv: ImageOps.equalize(im),
        lambda im, lv: ImageOps.posterize(im, 4 - int_parameter(sample_level(lv), 4)),
        lambda im, lv: im.rotate(signed(int_parameter(sample_level(lv), 30)), resample=Image.BILINEAR),
        lambda im, lv: ImageOps.solarize(im, 256 - int_parameter(sample_level(lv), 256)),
        lambda im, lv: affine(im, (1, signed(float_parameter(sample_level(lv), 0.3)), 0, 0, 1, 0)),
        lambda im, lv: affine(im, (1, 0, 0, signed(float_parameter(sample_level(lv), 0.3)), 1, 0)),
        lambda im, lv: affine(im, (1, 0, signed(int_parameter(sample_level(lv), size / 3)), 0, 1, 0)),
        lambda im, lv: affine(im, (1, 0, 0, 0, 1, signed(int_parameter(sample_level(lv), size / 3)))),
    ]

    def aug(image: Image.Image, severity: int = 3, width: int = 3, depth: int = -1, alpha: float = 1.0):
        ws = np.float32(rng.dirichlet([alpha] * width))
        m = np.float32(rng.beta(alpha, alpha))
        mix = torch.zeros_like(preprocess(image))
        for i in range(width):
            image_aug = image.copy()
            for _ in range(depth if depth > 0 else rng.integers(1, 4)):
                image_aug = ops[rng.integers(len(ops))](image_aug, severity)
            mix += ws[i] * preprocess(image_aug)
        return (1 - m) * preprocess(image) + m * mix

    def triplet(image: Image.Image) -> tuple:
        return preprocess(image), aug(image), aug(image)

    return triplet
