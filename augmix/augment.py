"""AugMix (Hendrycks et al., 2019) on batches, with every image drawing its own randomness.

Each image gets ``width`` chains of 1-3 ops; chains are mixed with Dirichlet weights and the mix
is blended with the original by a Beta weight::

    mixed = (1 - m) * x + m * sum_i ws_i * chain_i(x)

Parameters are drawn on the CPU from an explicit ``torch.Generator``, so one seed gives the same
augmentations on every device. The ops then run as batched kernels on the images' own device.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch
from torch import Tensor

from augmix.ops import OPS, resolve_ops
from augmix.ops import color, geometry
from augmix.random import sample_beta, sample_dirichlet

MAX_DEPTH = 3
NO_OP = -1
Executor = Literal["auto", "grouped", "fused"]


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
        executor: "grouped" runs each op only on the images that drew it (fastest on CPU);
            "fused" runs a fixed sequence of kernels per step whatever was drawn (no host-side
            work per op, good for accelerators); "auto" picks by device. Both give identical
            results for the same parameters.
    """

    def __init__(
        self,
        severity: int = 3,
        width: int = 3,
        depth: int = -1,
        alpha: float = 1.0,
        all_ops: bool = False,
        ops: list[str] | tuple[str, ...] | None = None,
        fill: geometry.Fill = 0,
        executor: Executor = "auto",
    ) -> None:
        if not 1 <= severity <= 10:
            raise ValueError(f"severity must be in 1..10, got {severity}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        if depth == 0 or not -1 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be -1 (random 1-3) or 1..3, got {depth}")
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if executor not in ("auto", "grouped", "fused"):
            raise ValueError(f"executor must be auto, grouped or fused, got {executor!r}")
        self.severity = severity
        self.width = width
        self.depth = depth
        self.alpha = float(alpha)
        self.op_names = resolve_ops(all_ops, ops)
        self.fill = fill
        self.executor = executor

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

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """AugMix ``images`` (uint8, (B,C,H,W) or (C,H,W)); returns float32 in [0, 1]."""
        batched = _check_images(images)
        params = self.sample(batched.shape[0], generator)
        out = self.apply(batched, params)
        return out if images.dim() == 4 else out[0]

    def apply(self, images: Tensor, params: AugMixParams) -> Tensor:
        """Run the chains and the mix for already drawn parameters."""
        images = _check_images(images)
        params = params.to("cpu")  # op selection happens on the host, never waiting on the device
        n, c, h, w = images.shape
        if params.ops.shape[0] != n:
            raise ValueError(f"parameters were drawn for {params.ops.shape[0]} images, got {n}")
        chains = images.repeat_interleave(self.width, dim=0)
        executor = self.executor
        if executor == "auto":
            executor = "grouped" if images.device.type == "cpu" else "fused"
        run_step = self._grouped_step if executor == "grouped" else self._fused_step
        for step in range(MAX_DEPTH):
            chains = run_step(chains, params, step)
        return self._mix(images, chains.view(n, self.width, c, h, w), params)

    def _arguments(self, params: AugMixParams, step: int, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Flattened (N * width,) op indices and the matching op arguments for one step."""
        op_index = params.ops[:, :, step].reshape(-1)
        levels = params.levels[:, :, step].reshape(-1)
        signs = params.signs[:, :, step].reshape(-1)
        arguments = torch.zeros_like(levels)
        for k, name in enumerate(self.op_names):
            chosen = op_index == k
            arguments = torch.where(chosen, OPS[name].parameter(levels, signs, height, width), arguments)
        return op_index, arguments

    def _grouped_step(self, chains: Tensor, params: AugMixParams, step: int) -> Tensor:
        op_index, arguments = self._arguments(params, step, *chains.shape[-2:])
        op_index, arguments = op_index.cpu(), arguments.cpu()
        for k, name in enumerate(self.op_names):
            rows = (op_index == k).nonzero().view(-1)
            if rows.numel() == 0:
                continue
            rows_on_device = rows.to(chains.device)
            subset = chains.index_select(0, rows_on_device)
            result = OPS[name].apply(subset, arguments[rows], self.fill)
            chains.index_copy_(0, rows_on_device, result)
        return chains

    def _fused_step(self, chains: Tensor, params: AugMixParams, step: int) -> Tensor:
        """One step as whole-batch kernels: a table lookup, a warp, and the remaining kernels."""
        op_index, arguments = self._arguments(params, step, *chains.shape[-2:])
        present = set(op_index.unique().tolist())  # parameters live on the host: no device sync
        device = chains.device
        op_index_dev = op_index.to(device).view(-1, 1, 1)
        arguments_dev = arguments.to(device)
        used = [(k, OPS[name]) for k, name in enumerate(self.op_names) if k in present]

        lut_ops = [(k, op) for k, op in used if op.lut is not None]
        if lut_ops:
            n, c = chains.shape[:2]
            lut = torch.arange(256, device=device, dtype=torch.uint8).expand(n, c, 256)
            for k, op in lut_ops:
                lut = torch.where(op_index_dev == k, op.lut(chains, arguments_dev), lut)
            looked_up = color.apply_lut(chains, lut)
        else:
            looked_up = chains

        matrix_ops = [(k, op) for k, op in used if op.matrix is not None]
        if matrix_ops:
            h, w = chains.shape[-2:]
            matrices = geometry.translate_matrix(torch.zeros_like(arguments), torch.zeros_like(arguments))
            for k, op in matrix_ops:
                matrices = torch.where((op_index == k).view(-1, 1, 1), op.matrix(arguments, h, w), matrices)
            is_warp = torch.zeros_like(op_index, dtype=torch.bool)
            for k, _ in matrix_ops:
                is_warp |= op_index == k
            warped = geometry.affine(chains, matrices, self.fill)
            looked_up = torch.where(is_warp.to(device).view(-1, 1, 1, 1), warped, looked_up)

        for k, op in used:
            if op.kernel is not None:
                looked_up = torch.where(op_index_dev.view(-1, 1, 1, 1) == k, op.kernel(chains, arguments_dev), looked_up)
        return looked_up

    def _mix(self, images: Tensor, chains: Tensor, params: AugMixParams) -> Tensor:
        """(1 - m) * x + m * sum_i ws_i * chain_i, scaled to [0, 1]."""
        device = images.device
        m = params.mix_weight.to(device)
        clean_weight = ((1.0 - m) / 255.0).float().view(-1, 1, 1, 1)
        chain_weights = (params.chain_weights.to(device) * m.unsqueeze(1) / 255.0).float()
        mixed = images.float().mul_(clean_weight)
        for i in range(self.width):
            mixed.addcmul_(chains[:, i], chain_weights[:, i].view(-1, 1, 1, 1))
        return mixed.clamp_(0.0, 1.0)


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
