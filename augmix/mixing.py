"""MixUp and CutMix for AugMix triplets: one draw of partner, lambda and box shared by every view.

timm's ``Mixup`` draws from numpy's global RNG, mixes one tensor at a time and refuses the JSD
splits. Here the parameters are drawn once per batch from an explicit generator and then applied
to each view, so the clean, aug1 and aug2 views of image i are blended with the same partner
(image B-1-i, as in timm), the same lambda and the same CutMix box. The three predictions then
refer to the same blended content and the Jensen-Shannon term keeps its meaning.

Sampling follows timm: ``mode`` batch (one draw for the batch), pair (one draw per pair i and
B-1-i, both mixed) or elem (one draw per image); each draw is applied with probability ``prob``
and picks CutMix over MixUp with probability ``switch_prob`` when both are enabled; the CutMix
lambda is corrected to the box area actually pasted (timm's ``correct_lam``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from augmix.rules import CUTMIX_ALPHA, MIX_MODE, MIXUP_ALPHA, PROBABILITY, check
from augmix.streams import sample_beta
from augmix.tensors import to_device


@dataclass(frozen=True)
class MixParams:
    """Per-image mixing parameters; image i is blended with image B-1-i.

    ``lam`` is the share of image i's own content (1: unmixed), after CutMix's area correction.
    ``boxes`` holds (top, bottom, left, right), bottom/right exclusive, and is used where
    ``cutmix`` is set.
    """

    lam: Tensor  # (B,) float32
    cutmix: Tensor  # (B,) bool
    boxes: Tensor  # (B, 4) int64

    def to(self, device: torch.device) -> MixParams:
        return MixParams(*(to_device(t.contiguous(), device) for t in (self.lam, self.cutmix, self.boxes)))


def cutmix_boxes(lam: Tensor, height: int, width: int, cy: Tensor, cx: Tensor) -> Tensor:
    """timm's ``rand_bbox``: a box of side sqrt(1 - lam) of the image around (cy, cx), clipped."""
    ratio = (1.0 - lam.double()).clamp(min=0).sqrt()
    cut_h, cut_w = (height * ratio).long(), (width * ratio).long()
    top = (cy - cut_h // 2).clamp(0, height)
    bottom = (cy + (cut_h + 1) // 2).clamp(0, height)
    left = (cx - cut_w // 2).clamp(0, width)
    right = (cx + (cut_w + 1) // 2).clamp(0, width)
    return torch.stack([top, bottom, left, right], dim=1)


def box_masks(boxes: Tensor, height: int, width: int, device: torch.device) -> Tensor:
    """Boolean masks (N, 1, H, W), true inside each box."""
    boxes = boxes.to(device)
    ys = torch.arange(height, device=device).view(1, height, 1)
    xs = torch.arange(width, device=device).view(1, 1, width)
    top, bottom, left, right = (boxes[:, k].view(-1, 1, 1) for k in range(4))
    return ((ys >= top) & (ys < bottom) & (xs >= left) & (xs < right)).unsqueeze(1)


def mix_images(images: Tensor, params: MixParams) -> Tensor:
    """Blend each image with its partner: ``w * x_i + (1 - w) * x_{B-1-i}``.

    ``w`` is lambda for MixUp and the box's complement (0 or 1 per pixel) for CutMix, so CutMix
    and unmixed images copy pixels exactly.
    """
    batch, _, height, width = images.shape
    lam = params.lam.to(images.device, images.dtype).view(batch, 1, 1, 1)
    outside = (~box_masks(params.boxes, height, width, images.device)).to(images.dtype)
    weight = torch.where(params.cutmix.to(images.device).view(batch, 1, 1, 1), outside, lam)
    return weight * images + (1.0 - weight) * images.flip(0)


def mix_targets(target: Tensor, num_classes: int, lam: Tensor) -> Tensor:
    """Soft targets ``lam * onehot(y_i) + (1 - lam) * onehot(y_{B-1-i})``, float32, rows sum to 1.

    Label smoothing is left to the loss: smoothing soft targets there is the same as timm's
    smoothing before mixing.
    """
    one_hot = F.one_hot(target.long(), num_classes).float()
    lam = lam.to(one_hot.device, one_hot.dtype).view(-1, 1)
    return lam * one_hot + (1.0 - lam) * one_hot.flip(0)


class MixUpCutMix:
    """MixUp and/or CutMix on a list of views that share images row by row.

    ``alpha = 0`` disables a method; with both at 0 nothing is configured and the data module
    does not build this object.
    """

    def __init__(
        self,
        mixup_alpha: float,
        cutmix_alpha: float,
        num_classes: int,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
    ) -> None:
        for name, value, rule in (
            ("mixup_alpha", mixup_alpha, MIXUP_ALPHA), ("cutmix_alpha", cutmix_alpha, CUTMIX_ALPHA),
            ("prob", prob, PROBABILITY), ("switch_prob", switch_prob, PROBABILITY), ("mode", mode, MIX_MODE),
        ):
            check(name, value, rule)  # the rules of the augmix config group's mixing settings
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("MixUpCutMix needs mixup_alpha > 0 or cutmix_alpha > 0")
        self.mixup_alpha, self.cutmix_alpha, self.num_classes = float(mixup_alpha), float(cutmix_alpha), num_classes
        self.prob, self.switch_prob, self.mode = float(prob), float(switch_prob), mode

    @staticmethod
    def _beta(alpha: float, count: int, generator: torch.Generator) -> Tensor | None:
        return sample_beta(alpha, alpha, (count,), generator) if alpha > 0 else None

    def _draws(self, count: int, height: int, width: int, generator: torch.Generator) -> MixParams:
        """``count`` independent draws. Every random number is drawn whatever the outcome, so the
        stream's use (and hence reproducibility) does not depend on earlier results."""
        apply = torch.rand(count, generator=generator) < self.prob
        switch = torch.rand(count, generator=generator) < self.switch_prob
        mixup_lam = self._beta(self.mixup_alpha, count, generator)
        cutmix_lam = self._beta(self.cutmix_alpha, count, generator)
        cy = torch.randint(0, height, (count,), generator=generator)
        cx = torch.randint(0, width, (count,), generator=generator)
        if mixup_lam is None:
            use_cutmix, lam = torch.ones(count, dtype=torch.bool), cutmix_lam
        elif cutmix_lam is None:
            use_cutmix, lam = torch.zeros(count, dtype=torch.bool), mixup_lam
        else:
            use_cutmix, lam = switch, torch.where(switch, cutmix_lam, mixup_lam)
        use_cutmix &= apply
        lam = torch.where(apply, lam, torch.ones_like(lam))
        boxes = cutmix_boxes(lam, height, width, cy, cx)
        area = ((boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])).double()
        lam = torch.where(use_cutmix, 1.0 - area / (height * width), lam)
        return MixParams(lam.float(), use_cutmix, boxes)

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator) -> MixParams:
        """Per-image parameters for a batch of ``batch`` images, following ``mode``."""
        if self.mode == "elem":
            return self._draws(batch, height, width, generator)
        if self.mode == "batch":
            one = self._draws(1, height, width, generator)
            return MixParams(one.lam.expand(batch), one.cutmix.expand(batch), one.boxes.expand(batch, 4))
        pairs = self._draws(batch // 2, height, width, generator)
        middle = batch % 2  # an odd batch's middle image is its own partner: left unmixed
        lam = torch.cat([pairs.lam, torch.ones(middle), pairs.lam.flip(0)])
        cutmix = torch.cat([pairs.cutmix, torch.zeros(middle, dtype=torch.bool), pairs.cutmix.flip(0)])
        boxes = torch.cat([pairs.boxes, torch.zeros(middle, 4, dtype=torch.long), pairs.boxes.flip(0)])
        return MixParams(lam, cutmix, boxes)

    def __call__(self, views: Sequence[Tensor], target: Tensor, generator: torch.Generator) -> tuple[list[Tensor], Tensor]:
        """Mix every view with one shared draw; returns the mixed views and soft targets (B, classes)."""
        batch, _, height, width = views[0].shape
        params = self.sample(batch, height, width, generator).to(views[0].device)  # drawn on the host, sent once
        return [mix_images(v, params) for v in views], mix_targets(target, self.num_classes, params.lam)
