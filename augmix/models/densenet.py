"""DenseNet (Huang et al., 2017) as used by AugMix on CIFAR: DenseNet-40 with growth rate 12.

Mirrors ``third_party/ResNeXt_DenseNet/models/densenet.py`` of google-research/augmix.
AugMix builds it with ``densenet()`` = ``DenseNet(12, 40, reduction=1.0, bottleneck=False)``:
the plain DenseNet (3x3 layers, no compression), not DenseNet-BC.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from torch import nn

from augmix.models._base import CifarNet, blocks_per_stage, build_cifar_model, cifar_cfg


class Bottleneck(nn.Module):
    """BN-ReLU-conv1x1 (4k wide) then BN-ReLU-conv3x3 (k wide); output appended to the input."""

    def __init__(self, n_channels: int, growth_rate: int) -> None:
        super().__init__()
        inter_channels = 4 * growth_rate
        self.bn1 = nn.BatchNorm2d(n_channels)
        self.conv1 = nn.Conv2d(n_channels, inter_channels, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inter_channels)
        self.conv2 = nn.Conv2d(inter_channels, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat((x, out), 1)


class SingleLayer(nn.Module):
    """BN-ReLU-conv3x3 producing ``growth_rate`` channels, appended to the input."""

    def __init__(self, n_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(n_channels)
        self.conv1 = nn.Conv2d(n_channels, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv1(F.relu(self.bn1(x)))), 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 then 2x2 average pooling between dense blocks."""

    def __init__(self, n_channels: int, n_out_channels: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(n_channels)
        self.conv1 = nn.Conv2d(n_channels, n_out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)


class DenseNet(CifarNet):
    """Three dense blocks joined by transitions; ``reduction`` < 1 + ``bottleneck`` = DenseNet-BC.

    ``drop_rate`` (not in the reference, 0 by default) is dropout before the classifier.
    """

    def __init__(
        self,
        depth: int = 40,
        growth_rate: int = 12,
        reduction: float = 1.0,
        bottleneck: bool = False,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chans, drop_rate)
        n_layers = blocks_per_stage("DenseNet", depth, 6 if bottleneck else 3, 4, f"bottleneck={bottleneck}")

        n_channels = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_chans, n_channels, kernel_size=3, padding=1, bias=False)
        self.dense1 = _dense_block(n_channels, growth_rate, n_layers, bottleneck)
        n_channels += n_layers * growth_rate
        n_out = int(math.floor(n_channels * reduction))
        self.trans1 = Transition(n_channels, n_out)
        n_channels = n_out
        self.dense2 = _dense_block(n_channels, growth_rate, n_layers, bottleneck)
        n_channels += n_layers * growth_rate
        n_out = int(math.floor(n_channels * reduction))
        self.trans2 = Transition(n_channels, n_out)
        n_channels = n_out
        self.dense3 = _dense_block(n_channels, growth_rate, n_layers, bottleneck)
        n_channels += n_layers * growth_rate
        self.bn1 = nn.BatchNorm2d(n_channels)
        self._init_head(n_channels, num_classes, pool=nn.AdaptiveAvgPool2d(1), drop_rate=drop_rate)
        self._init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trans1(self.dense1(self.conv1(x)))
        x = self.trans2(self.dense2(x))
        return F.relu(self.bn1(self.dense3(x)))


def _dense_block(
    n_channels: int, growth_rate: int, n_layers: int, bottleneck: bool
) -> nn.Sequential:
    layer = Bottleneck if bottleneck else SingleLayer
    return nn.Sequential(
        *(layer(n_channels + i * growth_rate, growth_rate) for i in range(n_layers))
    )


default_cfgs = generate_default_cfgs({"cifar_densenet40_12": cifar_cfg("conv1", "fc")})


@register_model
def cifar_densenet40_12(pretrained: bool = False, **kwargs: Any) -> DenseNet:
    """AugMix's DenseNet-40 (k=12, no bottleneck, no compression), 1.06M parameters."""
    return build_cifar_model(
        DenseNet, "cifar_densenet40_12", pretrained, depth=40, growth_rate=12, **kwargs
    )
