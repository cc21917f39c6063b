"""All-Convolutional Net (Springenberg et al., 2014) in AugMix's variant: BatchNorm + GELU.

Mirrors ``models/cifar/allconv.py`` of google-research/augmix, module names included.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn

from augmix.models._base import CifarNet, build_cifar_model, cifar_cfg


class GELU(nn.Module):
    """The sigmoid approximation x * sigmoid(1.702 x) the reference uses, not the exact erf GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(1.702 * x) * x


def _conv_bn_gelu(in_ch: int, out_ch: int, kernel_size: int, padding: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding), nn.BatchNorm2d(out_ch), GELU()]


class AllConvNet(CifarNet):
    """Two 3-conv stages (96, 192 wide) with max-pool + dropout, a 3x3 valid conv, two 1x1 convs.

    Reference quirks kept on purpose, since they define the published model: the 1x1
    convs use padding=1, so the 32x32 input ends as a 10x10 map, and the head's
    AvgPool2d(8) averages only its top-left 8x8 window. Feed it 32x32 images: other
    sizes from 24 to 55 px run but pool a different window, larger ones fail in the head.
    ``drop_rate`` is the p of the two dropout layers (0.5 in the reference).
    """

    classifier_name = "classifier"

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        super().__init__(in_chans, drop_rate)
        w1, w2 = 96, 192
        self.features = nn.Sequential(
            *_conv_bn_gelu(in_chans, w1, 3, 1),
            *_conv_bn_gelu(w1, w1, 3, 1),
            *_conv_bn_gelu(w1, w1, 3, 1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Dropout(p=drop_rate),
            *_conv_bn_gelu(w1, w2, 3, 1),
            *_conv_bn_gelu(w2, w2, 3, 1),
            *_conv_bn_gelu(w2, w2, 3, 1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Dropout(p=drop_rate),
            *_conv_bn_gelu(w2, w2, 3, 0),
            *_conv_bn_gelu(w2, w2, 1, 1),
            *_conv_bn_gelu(w2, w2, 1, 1),
        )
        self._init_head(w2, num_classes, pool=nn.AvgPool2d(kernel_size=8))
        self._init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


default_cfgs = generate_default_cfgs({"cifar_allconv": cifar_cfg("features.0", "classifier")})


@register_model
def cifar_allconv(pretrained: bool = False, **kwargs: Any) -> AllConvNet:
    """AugMix's AllConvNet (1.41M parameters at 10 classes)."""
    return build_cifar_model(AllConvNet, "cifar_allconv", pretrained, **kwargs)
