"""The AugMix operations: names, how a level becomes a parameter, and their kernels.

Levels are drawn per application from U(0.1, severity) and converted exactly as the official
AugMix code (google-research/augmix, ``augmentations.py``) converts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from augmix.augment.ops import color, geometry
from augmix.augment.ops.common import Fill, opencv_planes
from augmix.rules import OP_LIST, check

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


def _enhance_factor(level: Tensor, sign: Tensor, height: int, width: int) -> Tensor:
    return _float_parameter(level, 1.8) + 0.1


@dataclass(frozen=True)
class Op:
    """One AugMix operation.

    ``parameter(level, sign, height, width)`` turns float64 levels and ±1 signs into the op's
    argument; it is valid for any level, so an executor may evaluate it for every chain.
    ``kernel(images, argument, fill)`` is the op's fastest exact form. Pointwise ops also give
    ``lut(images, argument)``, the same op as one 256-entry table per image and channel, so that
    the fused executor can apply all of a step's pointwise ops with one lookup. ``identity``
    marks the arguments for which the op returns its input unchanged, so executors skip them.
    ``blocked(images)``: whether, on CPU, the executor runs the op a cache-sized block of images
    at a time, which pays for ops with temporaries; OpenCV's table lookups and posterize's one
    ``&`` stream through memory once and take whole groups (perf/op_costs.py measures both).
    """

    name: str
    parameter: Callable[[Tensor, Tensor, int, int], Tensor]
    kernel: Callable[[Tensor, Tensor, Fill], Tensor]
    lut: Callable[[Tensor, Tensor], Tensor] | None = None
    identity: Callable[[Tensor], Tensor] | None = None
    blocked: Callable[[Tensor], bool] = lambda images: True

    def apply(self, images: Tensor, argument: Tensor, fill: Fill = 0) -> Tensor:
        """Apply the op to every image of ``images`` with its own argument (on their device)."""
        return self.kernel(images, argument, fill)


def _unused(level: Tensor, sign: Tensor, height: int, width: int) -> Tensor:
    return torch.zeros_like(level)


def _is_zero(argument: Tensor) -> Tensor:
    return argument == 0


def _unless_opencv(images: Tensor) -> bool:
    return not opencv_planes(images)


def _pointwise(kernel: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor, Fill], Tensor]:
    return lambda images, argument, fill: kernel(images, argument)


def _set_by_image(name: str, kernel: Callable[[Tensor], Tensor], lut: Callable[[Tensor], Tensor]) -> Op:
    """autocontrast and equalize: no argument, each image's own histogram sets its table."""
    return Op(
        name,
        _unused,
        _pointwise(lambda images, _: kernel(images)),
        lut=lambda images, _: lut(images),
        blocked=_unless_opencv,
    )


def _enhance_by_table(name: str, kernel: Callable[[Tensor, Tensor], Tensor],
                      lut: Callable[[Tensor, Tensor], Tensor]) -> Op:
    """contrast and brightness: an enhance factor, applied as one table per image and channel."""
    return Op(name, _enhance_factor, _pointwise(kernel), lut=lut, blocked=_unless_opencv)


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        _set_by_image("autocontrast", color.autocontrast, color.autocontrast_lut),
        _set_by_image("equalize", color.equalize, color.equalize_lut),
        Op(
            "posterize",
            lambda level, sign, h, w: 4 - _int_parameter(level, 4),
            _pointwise(color.posterize),
            lut=color.posterize_lut,
            blocked=lambda images: False,  # one ``&``, no temporaries
        ),
        # 0 degrees samples every pixel at its own centre: exactly the input (tests/test_kernels_fast.py)
        Op("rotate", lambda level, sign, h, w: _int_parameter(level, 30) * sign, geometry.rotate, identity=_is_zero),
        Op(
            "solarize",
            lambda level, sign, h, w: 256 - _int_parameter(level, 256),
            _pointwise(color.solarize),
            lut=color.solarize_lut,
        ),
        Op("shear_x", lambda level, sign, h, w: _float_parameter(level, 0.3) * sign, geometry.shear_x),
        Op("shear_y", lambda level, sign, h, w: _float_parameter(level, 0.3) * sign, geometry.shear_y),
        Op(
            "translate_x",
            lambda level, sign, h, w: _int_parameter(level, w / 3) * sign,
            geometry.translate_x,
            identity=_is_zero,
        ),
        Op(
            "translate_y",
            lambda level, sign, h, w: _int_parameter(level, h / 3) * sign,
            geometry.translate_y,
            identity=_is_zero,
        ),
        Op("color", _enhance_factor, _pointwise(color.adjust_saturation)),
        _enhance_by_table("contrast", color.adjust_contrast, color.contrast_lut),
        _enhance_by_table("brightness", color.adjust_brightness, color.brightness_lut),
        Op("sharpness", _enhance_factor, _pointwise(color.adjust_sharpness)),
    )
}


def resolve_ops(all_ops: bool = False, ops: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The op list to draw from: ``ops`` if given, else the paper's default or all 13."""
    if ops is None:
        return ALL_OPS if all_ops else DEFAULT_OPS
    check("ops", ops, OP_LIST)
    return tuple(ops)
