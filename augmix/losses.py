"""The AugMix training loss: cross-entropy on the clean view plus a Jensen-Shannon consistency term."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augmix.rules import JSD_WEIGHT, LABEL_SMOOTHING, check


class LossParts(NamedTuple):
    """The total loss and its two terms, kept apart for logging."""

    total: Tensor
    cross_entropy: Tensor
    consistency: Tensor


def jensen_shannon(logits: Sequence[Tensor]) -> Tensor:
    """JS divergence among the softmax predictions, exactly as the official AugMix code computes it.

    M = clamp(mean_i p_i, 1e-7, 1); JS = mean_i KL(p_i || M), each KL with batchmean reduction.
    """
    probs = [F.softmax(z.float(), dim=1) for z in logits]
    log_mixture = torch.clamp(torch.stack(probs).mean(dim=0), 1e-7, 1).log()
    return torch.stack([F.kl_div(log_mixture, p, reduction="batchmean") for p in probs]).mean()


class JSDLoss(nn.Module):
    """``CE(logits_clean, targets) + weight * JS(p_clean, p_aug1, p_aug2, ...)``.

    Call as ``loss(logits_clean, [logits_aug1, logits_aug2], targets)``. ``targets`` may be class
    indices or soft targets (N, classes), e.g. from MixUp/CutMix. ``weight`` is the paper's
    lambda (12).
    """

    def __init__(self, weight: float = 12.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        check("weight", weight, JSD_WEIGHT)  # the rules the loss config group is checked with
        check("label_smoothing", label_smoothing, LABEL_SMOOTHING)
        self.weight = float(weight)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits_clean: Tensor, logits_augmented: Sequence[Tensor], targets: Tensor) -> LossParts:
        ce = F.cross_entropy(logits_clean.float(), targets, label_smoothing=self.label_smoothing)
        if logits_augmented:
            js = jensen_shannon([logits_clean, *logits_augmented])
        else:
            js = ce.new_zeros(())
        return LossParts(ce + self.weight * js, ce, js)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, label_smoothing={self.label_smoothing}"
