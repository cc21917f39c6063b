"""Pure AugMix kernels on batched uint8 tensors, and the op table built from them."""

from augmix.augment.ops.registry import ALL_OPS, DEFAULT_OPS, ENHANCE_OPS, OPS, Op, resolve_ops

__all__ = ["ALL_OPS", "DEFAULT_OPS", "ENHANCE_OPS", "OPS", "Op", "resolve_ops"]
