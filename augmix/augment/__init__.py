"""AugMix on uint8 batches: parameter sampling (``transform``), the chunked executors that run the
chains (``executors``) and the op kernels (``ops``)."""

from augmix.augment.executors import Normalization
from augmix.augment.ops import ALL_OPS, DEFAULT_OPS, OPS
from augmix.augment.transform import AugMix, AugMixParams

__all__ = ["ALL_OPS", "DEFAULT_OPS", "OPS", "AugMix", "AugMixParams", "Normalization"]
