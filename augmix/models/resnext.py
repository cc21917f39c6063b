"""ResNeXt (Xie et al., 2017) for CIFAR as used by AugMix: ResNeXt-29, cardinality 4, base width 32.

Mirrors ``third_party/ResNeXt_DenseNet/models/resnext.py`` of google-research/augmix
(``resnext29(num_classes)``), module names included.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from torch import nn

from augmix.models._base import CifarNet, blocks_per_stage, build_cifar_model, cifar_cfg


class ResNeXtBottleneck(nn.Module):
    """Type-C block: 1x1 reduce, grouped 3x3, 1x1 expand to 4x ``planes``; ReLU after the sum."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        cardinality: int,
        base_width: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        width = int(math.floor(planes * (base_width / 64.0))) * cardinality
        self.conv_reduce = nn.Conv2d(inplanes, width, kernel_size=1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(width)
        self.conv_conv = nn.Conv2d(
            width, width, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False
        )
        self.bn = nn.BatchNorm2d(width)
        self.conv_expand = nn.Conv2d(width, planes * self.expansion, kernel_size=1, bias=False)
        self.bn_expand = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn_reduce(self.conv_reduce(x)), inplace=True)
        out = F.relu(self.bn(self.conv_conv(out)), inplace=True)
        out = self.bn_expand(self.conv_expand(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(residual + out, inplace=True)


class CifarResNeXt(CifarNet):
    """3x3 stem (64 channels), then three stages of (depth - 2) / 9 blocks, 256/512/1024 wide.

    ``drop_rate`` (not in the reference, 0 by default) is dropout before the classifier.
    """

    classifier_name = "classifier"

    def __init__(
        self,
        depth: int = 29,
        cardinality: int = 4,
        base_width: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chans, drop_rate)
        blocks = blocks_per_stage("ResNeXt", depth, 9, 2, "e.g. 29, 38, 47")
        self.cardinality = cardinality
        self.base_width = base_width
        self.conv_1_3x3 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(64)
        self.inplanes = 64
        self.stage_1 = self._make_stage(64, blocks, 1)
        self.stage_2 = self._make_stage(128, blocks, 2)
        self.stage_3 = self._make_stage(256, blocks, 2)
        self._init_head(
            256 * ResNeXtBottleneck.expansion,
            num_classes,
            pool=nn.AdaptiveAvgPool2d(1),
            drop_rate=drop_rate,
        )
        self._init_weights()

    @staticmethod
    def _init_linear(fc: nn.Linear) -> None:
        """Reference classifier init: Kaiming-normal weight (fan-in), zero bias."""
        nn.init.kaiming_normal_(fc.weight)
        fc.bias.data.zero_()

    def _make_stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_planes = planes * ResNeXtBottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )
        layers = [
            ResNeXtBottleneck(
                self.inplanes, planes, self.cardinality, self.base_width, stride, downsample
            )
        ]
        self.inplanes = out_planes
        layers += [
            ResNeXtBottleneck(out_planes, planes, self.cardinality, self.base_width)
            for _ in range(1, blocks)
        ]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_1(self.conv_1_3x3(x)), inplace=True)
        return self.stage_3(self.stage_2(self.stage_1(x)))


default_cfgs = generate_default_cfgs(
    {"cifar_resnext29_4x32": cifar_cfg("conv_1_3x3", "classifier")}
)


@register_model
def cifar_resnext29_4x32(pretrained: bool = False, **kwargs: Any) -> CifarResNeXt:
    """AugMix's ResNeXt-29 (4x32d), 6.81M parameters at 10 classes."""
    return build_cifar_model(
        CifarResNeXt,
        "cifar_resnext29_4x32",
        pretrained,
        depth=29,
        cardinality=4,
        base_width=32,
        **kwargs,
    )
