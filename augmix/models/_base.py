"""Shared plumbing for the CIFAR nets: official init, timm-style head API, registry builder.

Every architecture file keeps the official AugMix module names so that checkpoints
written by the reference ``cifar.py`` load with ``load_state_dict`` (after stripping
the ``module.`` prefix that its ``DataParallel`` adds).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, TypeVar

import torch
from timm.models import build_model_with_cfg
from torch import nn

# AugMix's CIFAR preprocessing: ToTensor() then Normalize([0.5] * 3, [0.5] * 3).
CIFAR_MEAN = (0.5, 0.5, 0.5)
CIFAR_STD = (0.5, 0.5, 0.5)

# Arguments timm's create_model forwards to every entrypoint (the last with "local-dir:"/"hf-hub:" names).
_TIMM_PLUMBING = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "pretrained_model_args")
# pretrained_cfg keys that name weights to load: a file, a folder ("local-dir:"), a Hub repo, tensors.
_WEIGHT_SOURCES = ("file", "url", "hf_hub_id", "state_dict")

ModelT = TypeVar("ModelT", bound=nn.Module)


def blocks_per_stage(model: str, depth: int, per_block: int, fixed: int, hint: str) -> int:
    """How many blocks (n) each stage of a ``per_block``·n + ``fixed`` layer net has; a depth no n
    gives is a ValueError naming the valid ones (``hint``: examples or the setting they depend on)."""
    if depth < per_block + fixed or (depth - fixed) % per_block != 0:
        raise ValueError(f"{model} depth must be {per_block}n+{fixed} with n >= 1 ({hint}), got {depth}.")
    return (depth - fixed) // per_block


def cifar_cfg(first_conv: str, classifier: str) -> dict[str, Any]:
    """Data config for ``timm.data.resolve_data_config``: 32x32, no crop, AugMix normalisation."""
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (8, 8),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": CIFAR_MEAN,
        "std": CIFAR_STD,
        "first_conv": first_conv,
        "classifier": classifier,
    }


class CifarNet(nn.Module):
    """timm's classifier API on top of a trunk that a subclass builds.

    A subclass sets ``classifier_name`` to the official attribute name of its final
    Linear layer (kept for checkpoint compatibility), defines ``forward_features``
    (unpooled map after the last norm/activation), calls ``_init_head`` where the
    reference code creates its classifier (so modules register in the same order)
    and finishes with ``_init_weights``.
    """

    classifier_name = "fc"

    def __init__(self, in_chans: int, drop_rate: float) -> None:
        """Records the two constructor arguments timm reads back from every model."""
        super().__init__()
        self.in_chans = in_chans
        self.drop_rate = drop_rate

    @staticmethod
    def _init_linear(fc: nn.Linear) -> None:
        """Reference classifier init: PyTorch's default weight, zero bias."""
        fc.bias.data.zero_()

    def _init_weights(self) -> None:
        """The init loop shared by all four reference nets, in module order.

        He-normal convs with fan = k*k*out_channels and unit/zero BatchNorm; running
        it in module order reproduces the reference weights under the same seed.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                self._init_linear(m)

    def _init_head(
        self, num_features: int, num_classes: int, pool: nn.Module, drop_rate: float = 0.0
    ) -> None:
        self.num_features = self.head_hidden_size = num_features
        self.head_pool = pool
        self.head_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self._set_classifier(num_classes)

    def _set_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        setattr(self, self.classifier_name, head)

    def get_classifier(self) -> nn.Module:
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh, reference-initialised classifier.

        ``num_classes=0`` installs an identity, so ``forward`` returns pooled features.
        """
        self._set_classifier(num_classes)
        if num_classes > 0:
            self._init_linear(self.get_classifier())

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.head_pool(x).flatten(1))
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_cifar_model(
    model_cls: type[ModelT], variant: str, pretrained: bool, **kwargs: Any
) -> ModelT:
    """Build ``model_cls`` through timm so ``pretrained_cfg`` and defaults resolve as usual.

    Fails loudly instead of silently: there are no released weights, so ``pretrained=True`` needs
    weights named by the caller (an exported folder via ``"local-dir:DIR"`` or ``"hf-hub:USER/NAME"``,
    or ``pretrained_cfg_overlay=dict(file=...)``), and any keyword the class does not take is
    reported by name.
    """
    cfg_kwargs = {k: kwargs.pop(k) for k in _TIMM_PLUMBING if k in kwargs}
    named = [cfg_kwargs.get("pretrained_cfg"), cfg_kwargs.get("pretrained_cfg_overlay")]
    if pretrained and not any(isinstance(cfg, dict) and any(cfg.get(k) for k in _WEIGHT_SOURCES) for cfg in named):
        raise ValueError(
            f"{variant}: no pretrained weights are published for the AugMix CIFAR models; "
            "create it with pretrained=False and load your own checkpoint "
            "(timm.create_model(..., checkpoint_path=...) or load_state_dict), or load an exported folder "
            'with timm.create_model("local-dir:DIR", pretrained=True)'
        )
    accepted = set(inspect.signature(model_cls).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(
            f"{variant} got unsupported keyword argument(s) {unknown}; "
            f"{model_cls.__name__} accepts {sorted(accepted)}."
        )
    return build_model_with_cfg(
        model_cls,
        variant,
        pretrained=pretrained,
        pretrained_cfg=cfg_kwargs.get("pretrained_cfg"),
        pretrained_cfg_overlay=cfg_kwargs.get("pretrained_cfg_overlay"),
        pretrained_model_args=cfg_kwargs.get("pretrained_model_args"),
        **kwargs,
    )
