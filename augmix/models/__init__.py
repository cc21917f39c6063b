"""AugMix's CIFAR architectures, registered in timm's model registry on import.

``timm.create_model("cifar_wrn40_2", num_classes=10)`` works once this package is imported.
"""

from augmix.models.allconv import AllConvNet, cifar_allconv
from augmix.models.densenet import DenseNet, cifar_densenet40_12
from augmix.models.resnext import CifarResNeXt, cifar_resnext29_4x32
from augmix.models.wideresnet import (
    WideResNet,
    cifar_wrn16_1,
    cifar_wrn16_2,
    cifar_wrn28_10,
    cifar_wrn40_2,
    cifar_wrn40_4,
)

__all__ = [
    "AllConvNet",
    "CifarResNeXt",
    "DenseNet",
    "WideResNet",
    "cifar_allconv",
    "cifar_densenet40_12",
    "cifar_resnext29_4x32",
    "cifar_wrn16_1",
    "cifar_wrn16_2",
    "cifar_wrn28_10",
    "cifar_wrn40_2",
    "cifar_wrn40_4",
]
