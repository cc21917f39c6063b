"""AugMix + Jensen-Shannon consistency training, batched per-image AugMix, and robustness evaluation.

``import augmix`` registers the paper's CIFAR architectures in timm's registry and the config
schemas in Hydra's ConfigStore.
"""

from augmix import (
    config,  # noqa: F401  (registers structured-config schemas)
    models,  # noqa: F401  (registers cifar_* models in timm)
)
from augmix.augment import AugMix, AugMixParams
from augmix.losses import JSDLoss

__all__ = ["AugMix", "AugMixParams", "JSDLoss"]
__version__ = "0.1.0"
