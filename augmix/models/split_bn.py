"""Auxiliary BatchNorm (AdvProp, Xie et al. 2020): clean and augmented views get separate BN.

In training, the first ``1 / num_views`` rows of a batch (the clean view of the concatenated
[clean, aug1, aug2] batch) go through the layer itself and the remaining rows through ``aux_bn``,
a copy of the layer made at conversion, with its own statistics and affine parameters. In
evaluation only the layer itself (the clean BN) is used, so the converted model computes exactly
what the unconverted one does.

Conversion keeps each layer's class behaviour, parameters, buffers and children (timm's
``BatchNormAct2d`` keeps its ``drop`` and ``act``, and so does its copy). The main BN's
state_dict keys are unchanged; the auxiliary ones are ``<layer>.aux_bn.<name>``, matched by
``AUX_BN_KEY``. Dropping them (``strip_aux_bn``) gives a state dict for the unconverted model.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

import torch
from timm.layers import BatchNormAct2d
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

# State_dict keys of the auxiliary layers: ours, and timm's SplitBatchNorm2d ``<layer>.aux_bn.<i>.<name>``.
AUX_BN_KEY = re.compile(r"(^|\.)aux_bn\.(\d+\.)?")


class AuxiliaryBatchNorm:
    """Mixin over a BatchNorm class: routes augmented rows to ``aux_bn`` while training."""

    aux_bn: nn.Module
    num_views: int
    training: bool

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)  # type: ignore[misc]
        rows = x.shape[0]
        clean = rows // self.num_views
        if clean * self.num_views != rows:
            raise ValueError(f"auxiliary BatchNorm expects {self.num_views} equal views stacked in the batch, got {rows} rows")
        main, augmented = x.split([clean, rows - clean])
        return torch.cat([super().forward(main), self.aux_bn(augmented)])  # type: ignore[misc]


class SplitBatchNorm1d(AuxiliaryBatchNorm, nn.BatchNorm1d):
    pass


class SplitBatchNorm2d(AuxiliaryBatchNorm, nn.BatchNorm2d):
    pass


class SplitBatchNormAct2d(AuxiliaryBatchNorm, BatchNormAct2d):
    pass


SPLIT_CLASSES: dict[type, type] = {
    nn.BatchNorm1d: SplitBatchNorm1d,
    nn.BatchNorm2d: SplitBatchNorm2d,
    BatchNormAct2d: SplitBatchNormAct2d,
}


def convert_split_bn(model: nn.Module, num_views: int = 3) -> nn.Module:
    """Give every BatchNorm layer of ``model`` an auxiliary copy, in place; returns ``model``.

    The layer's class is swapped for its split subclass rather than the layer being rebuilt, so
    everything it holds (activation, drop path, hooks, device, dtype) stays as it was.
    """
    if num_views < 2:
        raise ValueError(f"auxiliary BatchNorm needs a clean and at least one augmented view, got num_views={num_views}")
    for name, module in list(model.named_modules()):
        if isinstance(module, AuxiliaryBatchNorm):
            raise ValueError(f"{name or 'model'} already has an auxiliary BatchNorm")
        if not isinstance(module, _BatchNorm):
            continue
        split = SPLIT_CLASSES.get(type(module))
        if split is None:
            supported = ", ".join(cls.__name__ for cls in SPLIT_CLASSES)
            raise TypeError(f"split BatchNorm cannot convert {name} ({type(module).__name__}); supported: {supported}")
        auxiliary = copy.deepcopy(module)
        module.__class__ = split
        module.aux_bn = auxiliary
        module.num_views = num_views
    return model


def strip_aux_bn(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state_dict`` without the auxiliary BatchNorm entries: it loads into the unconverted model."""
    return {key: value for key, value in state_dict.items() if not AUX_BN_KEY.search(key)}
