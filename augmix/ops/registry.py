"""The AugMix operations: names, how a level becomes a parameter, and their kernels.

Levels are drawn per application from U(0.1, severity) and converted exactly as the official
AugMix code (google-research/augmix, ``augmentations.py``) converts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from augmix.ops import color, geometry

#: Ops of the paper's default AugMix (``augmentations.augmentations`` in the official code).
DEFAULT_OPS = (
    "autocontrast",
    "equalize",
    "posterize",
    "rotate",
    "solarize",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)
#: ``all_ops=true`` adds these. They overlap with ImageNet-C corruptions, hence off by default.
ENHANCE_OPS = ("color", "contrast", "brightness", "sharpness")
ALL_OPS = DEFAULT_OPS + ENHANCE_OPS


def _int_parameter(level: Tensor, maxval: float) -> Tensor:
    return torch.floor(level * maxval / 10)


def _float_parameter(level: Tensor, maxval: float) -> Tensor:
    return level * maxval / 10


def _enhance_factor(level: Tensor) -> Tensor:
    return _float_parameter(level, 1.8) + 0.1


@dataclass(frozen=True)
class Op:
    """One AugMix operation.

    ``parameter(level, sign, height, width)`` turns float64 levels and ±1 signs into the op's
    argument. Exactly one of ``lut``/``matrix``/``kernel`` describes how it acts: a per-image
    lookup table, an affine inverse map, or a kernel that is neither.
    """

    name: str
    parameter: Callable[[Tensor, Tensor, int, int], Tensor]
    lut: Callable[[Tensor, Tensor], Tensor] | None = None
    matrix: Callable[[Tensor, int, int], Tensor] | None = None
    kernel: Callable[[Tensor, Tensor], Tensor] | None = None
    direct: Callable[[Tensor, Tensor, geometry.Fill], Tensor] | None = None  # a faster exact equivalent

    def apply(self, images: Tensor, argument: Tensor, fill: geometry.Fill = 0) -> Tensor:
        """Apply the op to every image of ``images`` with its own argument."""
        if self.direct is not None:
            return self.direct(images, argument, fill)
        if self.lut is not None:
            return color.apply_lut(images, self.lut(images, argument))
        if self.matrix is not None:
            return geometry.affine(images, self.matrix(argument, *images.shape[-2:]), fill)
        assert self.kernel is not None
        return self.kernel(images, argument)


def _unused(level: Tensor, sign: Tensor, height: int, width: int) -> Tensor:
    return torch.zeros_like(level)


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("autocontrast", _unused, lut=lambda images, _: color.autocontrast_lut(images)),
        Op("equalize", _unused, lut=lambda images, _: color.equalize_lut(images)),
        Op(
            "posterize",
            lambda level, sign, h, w: 4 - _int_parameter(level, 4),
            lut=color.posterize_lut,
            direct=lambda images, bits, fill: color.posterize(images, bits),
        ),
        Op(
            "rotate",
            lambda level, sign, h, w: _int_parameter(level, 30) * sign,
            matrix=geometry.rotate_matrix,
        ),
        Op(
            "solarize",
            lambda level, sign, h, w: 256 - _int_parameter(level, 256),
            lut=color.solarize_lut,
            direct=lambda images, threshold, fill: color.solarize(images, threshold),
        ),
        Op(
            "shear_x",
            lambda level, sign, h, w: _float_parameter(level, 0.3) * sign,
            matrix=lambda s, h, w: geometry.shear_x_matrix(s),
        ),
        Op(
            "shear_y",
            lambda level, sign, h, w: _float_parameter(level, 0.3) * sign,
            matrix=lambda s, h, w: geometry.shear_y_matrix(s),
        ),
        Op(
            "translate_x",
            lambda level, sign, h, w: _int_parameter(level, w / 3) * sign,
            matrix=lambda t, h, w: geometry.translate_matrix(t, torch.zeros_like(t)),
            direct=geometry.translate_x,
        ),
        Op(
            "translate_y",
            lambda level, sign, h, w: _int_parameter(level, h / 3) * sign,
            matrix=lambda t, h, w: geometry.translate_matrix(torch.zeros_like(t), t),
            direct=geometry.translate_y,
        ),
        Op("color", lambda level, sign, h, w: _enhance_factor(level), kernel=color.adjust_saturation),
        Op("contrast", lambda level, sign, h, w: _enhance_factor(level), lut=color.contrast_lut),
        Op("brightness", lambda level, sign, h, w: _enhance_factor(level), lut=color.brightness_lut),
        Op("sharpness", lambda level, sign, h, w: _enhance_factor(level), kernel=color.adjust_sharpness),
    )
}


def resolve_ops(all_ops: bool = False, ops: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The op list to draw from: ``ops`` if given, else the paper's default or all 13."""
    if ops is None:
        return ALL_OPS if all_ops else DEFAULT_OPS
    names = tuple(ops)
    unknown = [name for name in names if name not in OPS]
    if unknown:
        raise ValueError(f"unknown AugMix op(s) {unknown}; choose from {list(ALL_OPS)}")
    if not names:
        raise ValueError("the AugMix op list is empty; give at least one op or leave it null")
    return names
