"""Wide ResNet (Zagoruyko & Komodakis, 2016) as used by AugMix on CIFAR; WRN-40-2 is its default.

Mirrors ``third_party/WideResNet_pytorch/wideresnet.py`` of google-research/augmix:
pre-activation basic blocks, dropout between the two convs, same module names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import generate_default_cfgs, register_model
from torch import nn

from augmix.models._base import CifarNet, blocks_per_stage, build_cifar_model, cifar_cfg


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3 twice, plus a 1x1 projection when the width changes."""

    def __init__(
        self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.is_in_equal_out = in_planes == out_planes
        self.conv_shortcut = (
            None
            if self.is_in_equal_out
            else nn.Conv2d(in_planes, out_planes, 1, stride=stride, padding=0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        # The identity path carries the raw input, the 1x1 projection the activated one.
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(pre)
        out = F.relu(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return shortcut + self.conv2(out)


class NetworkBlock(nn.Module):
    """One stage of ``num_layers`` blocks; only the first changes width and stride."""

    def __init__(
        self, num_layers: int, in_planes: int, out_planes: int, stride: int, drop_rate: float
    ) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(
                BasicBlock(
                    in_planes if i == 0 else out_planes,
                    out_planes,
                    stride if i == 0 else 1,
                    drop_rate,
                )
                for i in range(num_layers)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(CifarNet):
    """WRN-``depth``-``widen_factor``: three stages at widths 16k, 32k, 64k on 32x32 inputs.

    ``drop_rate`` is the reference ``dropRate``: dropout inside every block, not before the head.
    """

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chans, drop_rate)
        n = blocks_per_stage("WideResNet", depth, 6, 4, "e.g. 10, 16, 22, 28, 40")
        if widen_factor < 1:
            raise ValueError(
                f"WideResNet widen_factor must be a positive integer, got {widen_factor}."
            )
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self._init_head(widths[3], num_classes, pool=nn.AdaptiveAvgPool2d(1))
        self._init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return F.relu(self.bn1(x))


# name: (depth, widen_factor, what the model is for); each becomes a timm entrypoint of that name.
_VARIANTS = {
    "cifar_wrn40_2": (40, 2, "WRN-40-2, AugMix's default CIFAR model (2.24M parameters at 10 classes)."),
    "cifar_wrn40_4": (40, 4, "WRN-40-4 (8.95M parameters at 10 classes)."),
    "cifar_wrn28_10": (28, 10, "WRN-28-10, the common large CIFAR baseline (36.5M parameters at 10 classes)."),
    "cifar_wrn16_2": (16, 2, "WRN-16-2, a small model for quick experiments."),
    "cifar_wrn16_1": (16, 1, "WRN-16-1, tiny enough for a CPU quickstart on upsampled 8x8 digits."),
}

default_cfgs = generate_default_cfgs({name: cifar_cfg("conv1", "fc") for name in _VARIANTS})


def _entrypoint(variant: str, depth: int, widen_factor: int, doc: str) -> Callable[..., WideResNet]:
    """The timm entrypoint of one size, named ``variant`` as timm's registry requires."""

    def create(pretrained: bool = False, **kwargs: Any) -> WideResNet:
        return build_cifar_model(WideResNet, variant, pretrained, depth=depth, widen_factor=widen_factor, **kwargs)

    create.__name__ = create.__qualname__ = variant
    create.__doc__ = doc
    return create


globals().update({variant: register_model(_entrypoint(variant, *spec)) for variant, spec in _VARIANTS.items()})
