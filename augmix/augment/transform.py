"""AugMix (Hendrycks et al., 2019) on batches, with every image drawing its own randomness.

Each image gets ``width`` chains of 1-3 ops; chains are mixed with Dirichlet weights and the mix
is blended with the original by a Beta weight::

    mixed = (1 - m) * x + m * sum_i ws_i * chain_i(x)

Parameters are drawn on the CPU from an explicit ``torch.Generator``, so one seed gives the same
augmentations on every device. The ops then run as batched kernels on the images' own device
(see ``augmix.augment.executors``), a chunk of images at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from augmix.augment.executors import (
    NO_OP,
    Normalization,
    op_arguments,
    plan_chunk,
    run_chunk,
    upload,
    without_identities,
)
from augmix.augment.ops import OPS, resolve_ops
from augmix.augment.ops.common import Fill
from augmix.rules import ALPHA, CHUNK_SIZE, DEPTH, EXECUTOR, FILL, MAX_DEPTH, SEVERITY, WIDTH, check
from augmix.streams import sample_beta, sample_dirichlet
from augmix.tensors import empty_batch

#: Chunks, in chain values (images x width x C x H x W). On CPU a fixed size, measured: smaller
#: chunks pay more per-call overhead than they gain in cache hits (a CIFAR batch is one chunk).
#: On accelerators a call is split in DEVICE_CHUNKS, which keeps the grouped executor's
#: temporaries (two generations of chains at 1 byte per value, an op's float temporaries) below
#: one float32 view of a JSD batch (measured: tests/test_kernels_fast.py), but chunks never shrink
#: below MIN_DEVICE_CHUNK_VALUES, so small images are not cut into launch-bound slivers.
CPU_CHUNK_VALUES = 2**23
DEVICE_CHUNKS = 10
MIN_DEVICE_CHUNK_VALUES = 2**22


def default_chunk_values(device: torch.device, total_values: int) -> int:
    """Chain values processed together on ``device`` when a call holds ``total_values``."""
    if device.type == "cpu":
        return CPU_CHUNK_VALUES
    return max(-(-total_values // DEVICE_CHUNKS), MIN_DEVICE_CHUNK_VALUES)


@dataclass(frozen=True)
class AugMixParams:
    """Everything random about one AugMix call, for N images with ``width`` chains.

    ``ops`` holds indices into the AugMix op list, ``NO_OP`` past a chain's depth.
    """

    ops: Tensor  # (N, width, 3) int64
    levels: Tensor  # (N, width, 3) float64 in [0.1, severity)
    signs: Tensor  # (N, width, 3) float64, ±1
    depths: Tensor  # (N, width) int64 in 1..3
    chain_weights: Tensor  # (N, width) float64, rows sum to 1
    mix_weight: Tensor  # (N,) float64 in [0, 1]

    def to(self, device: torch.device | str) -> AugMixParams:
        return AugMixParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def rows(self, start: int, stop: int) -> AugMixParams:
        """The parameters of images ``start:stop``."""
        return AugMixParams(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})


class AugMix:
    """Per-image AugMix for uint8 batches.

    Args:
        severity: ops draw their level from U(0.1, severity); 1-10, paper default 3.
        width: chains per image (paper: 3).
        depth: ops per chain; -1 draws 1-3 uniformly for every chain (paper default).
        alpha: concentration of the Dirichlet chain weights and of the Beta(alpha, alpha) mix.
        all_ops: add color/contrast/brightness/sharpness, which overlap ImageNet-C (off in paper).
        ops: explicit op list, overriding ``all_ops``.
        fill: value(s) that geometric ops move into the image (0 in the official code).
        executor: "grouped" runs each op only on the chains that drew it: the least work and
            memory on every device ("auto" picks it). "fused" runs each occurring op on every
            chain and selects, so shapes never depend on the draw (what graph capture needs),
            at several times the work. Both give identical results for the same parameters,
            and neither reads anything back from the device.
        chunk_size: chain values (images x width x C x H x W) processed at once; ``None`` picks
            by device (``default_chunk_values``). Results do not depend on it.
    """

    def __init__(
        self,
        severity: int = 3,
        width: int = 3,
        depth: int = -1,
        alpha: float = 1.0,
        all_ops: bool = False,
        ops: list[str] | tuple[str, ...] | None = None,
        fill: Fill = 0,
        executor: str = "auto",
        chunk_size: int | None = None,
    ) -> None:
        for name, value, rule in (
            ("severity", severity, SEVERITY), ("width", width, WIDTH), ("depth", depth, DEPTH), ("alpha", alpha, ALPHA),
            ("fill", fill, FILL), ("executor", executor, EXECUTOR), ("chunk_size", chunk_size, CHUNK_SIZE),
        ):
            check(name, value, rule)  # the rules the augmix config group is checked with
        self.severity = severity
        self.width = width
        self.depth = depth
        self.alpha = float(alpha)
        self.op_names = resolve_ops(all_ops, ops)
        self.fill = fill
        self.executor = executor
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return (
            f"AugMix(severity={self.severity}, width={self.width}, depth={self.depth}, alpha={self.alpha}, "
            f"ops={list(self.op_names)}, fill={self.fill}, executor={self.executor!r})"
        )

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> AugMixParams:
        """Draw the randomness for ``batch_size`` images from a CPU generator."""
        g = torch.default_generator if generator is None else generator
        if g.device.type != "cpu":
            raise ValueError("AugMix draws its parameters on the CPU; pass a CPU torch.Generator")
        shape = (batch_size, self.width)
        if self.depth > 0:
            depths = torch.full(shape, self.depth, dtype=torch.long)
        else:
            depths = torch.randint(1, MAX_DEPTH + 1, shape, generator=g)
        ops = torch.randint(0, len(self.op_names), (*shape, MAX_DEPTH), generator=g)
        steps = torch.arange(MAX_DEPTH).view(1, 1, -1)
        ops = ops.masked_fill(steps >= depths.unsqueeze(-1), NO_OP)
        levels = torch.rand((*shape, MAX_DEPTH), dtype=torch.float64, generator=g) * (self.severity - 0.1) + 0.1
        signs = torch.randint(0, 2, (*shape, MAX_DEPTH), generator=g).to(torch.float64).mul_(2).sub_(1)
        chain_weights = sample_dirichlet(self.alpha, shape, g)
        mix_weight = sample_beta(self.alpha, self.alpha, (batch_size,), g)
        return AugMixParams(ops, levels, signs, depths, chain_weights, mix_weight)

    def __call__(
        self, images: Tensor, generator: torch.Generator | None = None, normalize: Normalization | None = None
    ) -> Tensor:
        """AugMix ``images`` (uint8, (B,C,H,W) or (C,H,W)); returns float32 in [0, 1], or
        ``(mixed - mean) / std`` per channel for ``normalize=(mean, std)``."""
        batched = _check_images(images)
        params = self.sample(batched.shape[0], generator)
        out = self.apply(batched, params, normalize)
        return out if images.dim() == 4 else out[0]

    def apply(self, images: Tensor, params: AugMixParams, normalize: Normalization | None = None) -> Tensor:
        """Run the chains and the mix for already drawn parameters.

        Chunk by chunk, the host plans the work from CPU copies of ``params`` and uploads it in
        one non-blocking copy; the images never leave their device and nothing is read back.
        ``normalize=(mean, std)`` normalises within the mix (folded into its weights, offset and
        clamp bounds) rather than in another pass over the batch; equal to normalising afterwards
        up to float32 rounding.
        """
        images = _check_images(images)
        if normalize is not None and (
            not len(normalize[0]) == len(normalize[1]) == images.shape[-3] or min(normalize[1]) <= 0
        ):
            raise ValueError(
                f"normalize needs one mean and one positive std per channel ({images.shape[-3]}), got {normalize}"
            )
        n, c, h, w = images.shape
        if params.ops.shape[0] != n:
            raise ValueError(f"parameters were drawn for {params.ops.shape[0]} images, got {n}")
        host = params.to("cpu")
        executor = "grouped" if self.executor == "auto" else self.executor
        ops = [OPS[name] for name in self.op_names]
        arguments = op_arguments(host.ops, host.levels, host.signs, ops, h, w)
        drawn = without_identities(host.ops, arguments, ops)
        per_image = self.width * c * h * w
        chunk_values = self.chunk_size or default_chunk_values(images.device, n * per_image)
        chunk = max(1, chunk_values // per_image)
        plans = [
            plan_chunk(drawn, host.levels, host.signs, arguments, host.chain_weights, host.mix_weight,
                       start, min(start + chunk, n), executor)
            for start in range(0, n, chunk)
        ]
        out = empty_batch(images.shape, images.device)
        for plan in upload(plans, images.device):
            part = slice(plan.start, plan.stop)
            run_chunk(images[part], plan, ops, self.fill, executor, out[part], normalize)
        return out


def _check_images(images: Tensor) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"AugMix takes a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"AugMix takes uint8 images (0-255), got {images.dtype}; convert before normalising")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"AugMix takes images shaped (B, C, H, W) or (C, H, W) with C in (1, 3), got {tuple(images.shape)}")
    return images
