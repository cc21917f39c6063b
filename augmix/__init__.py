"""AugMix + Jensen-Shannon consistency training, batched per-image AugMix, and robustness evaluation.

``import augmix`` is light: it loads ``AugMix``, ``AugMixParams`` and ``JSDLoss`` (torch only),
and arranges for the paper's CIFAR architectures to be in timm's registry whenever timm is or
gets imported (``augmix.timm_hook``). The framework parts load what they use: Hydra's config
schemas register with ``augmix.config`` (train.py, evaluate.py), Lightning comes with
``augmix.data`` and ``augmix.module``.
"""

from augmix.augment import AugMix, AugMixParams
from augmix.losses import JSDLoss
from augmix.timm_hook import register_with_timm

register_with_timm()

__all__ = ["AugMix", "AugMixParams", "JSDLoss"]
__version__ = "0.1.0"
