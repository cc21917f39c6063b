"""How AugMix's chains run: a plan made on the host, one upload, then only kernels.

The images are processed in chunks, which bounds the temporaries. For each chunk the host decides
everything that depends on the draw, and all of it reaches the images' device in a single
non-blocking copy, so no executor ever reads a value back from the device. Both executors apply
the same kernels, which treat every image on its own, so they give identical bytes:

* ``grouped`` gathers, for each op of a step, just the chains that drew it, runs the op once on
  them and writes the results into the next step's chains. Least work and memory, on any device:
  the group sizes are known on the host, so gathering needs no sync either.
* ``fused`` runs each op that occurs in the step on all chains and keeps every chain's own result
  with ``torch.where``; the pointwise ops of a step share one table lookup. Tensor shapes never
  depend on the draw (the form graph capture needs), at several times the work and memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import torch
from torch import Tensor

from augmix.ops import Op
from augmix.ops.color import apply_lut
from augmix.ops.common import Fill

NO_OP = -1
Executor = Literal["grouped", "fused"]
Normalization = tuple[tuple[float, ...], tuple[float, ...]]  # per-channel (mean, std)
# On CPU, ops and the mix run on a few images at a time, so their float temporaries stay in the
# core's caches: 2**19 values is about 3 images at 224 px and 170 at 32 px (measured best at both).
CPU_BLOCK_VALUES = 2**19


@dataclass(frozen=True)
class StepPlan:
    """One chain step of one chunk.

    Position ``p`` of the step's output reads row ``source_rows[p]`` of its input (the previous
    step's chains, or the chunk's images for step 0); ``None`` means row ``p``. ``groups`` holds
    ``(op, start, stop)``: runs of positions sharing an op (grouped), or the ops that occur, each
    over all positions (fused). ``ops``, ``levels``, ``signs`` and ``arguments`` (the argument of
    each position's own op) are per position.
    """

    source_rows: Tensor | None
    groups: tuple[tuple[int, int, int], ...]
    ops: Tensor
    levels: Tensor
    signs: Tensor
    arguments: Tensor


@dataclass(frozen=True)
class ChunkPlan:
    start: int
    stop: int
    steps: tuple[StepPlan, ...]
    restore: Tensor | None  # (images, width): where each chain ended up; None: in (image, chain) order
    chain_weights: Tensor  # (images, width)
    mix_weight: Tensor  # (images,)


def op_arguments(ops: Tensor, levels: Tensor, signs: Tensor, table: list[Op], height: int, width: int) -> Tensor:
    """Every (image, chain, step)'s argument for the op it drew (0 for ``NO_OP``), on the host."""
    arguments = torch.zeros_like(levels)
    for k, op in enumerate(table):
        arguments = torch.where(ops == k, op.parameter(levels, signs, height, width), arguments)
    return arguments


def without_identities(ops: Tensor, arguments: Tensor, table: list[Op]) -> Tensor:
    """``ops`` with every application that leaves the image unchanged (e.g. a 0-degree rotation,
    8% of rotations at severity 3) turned into ``NO_OP``: no work, the same result."""
    skipped = torch.zeros_like(ops, dtype=torch.bool)
    for k, op in enumerate(table):
        if op.identity is not None:
            skipped |= (ops == k) & op.identity(arguments)
    return ops.masked_fill(skipped, NO_OP)


def plan_chunk(
    ops: Tensor, levels: Tensor, signs: Tensor, arguments: Tensor, chain_weights: Tensor, mix_weight: Tensor,
    start: int, stop: int, executor: Executor,
) -> ChunkPlan:
    """The plan for images ``start:stop``, from CPU parameters shaped (N, width, depth)."""
    width, depth = ops.shape[1:]
    rows = (stop - start) * width
    identity = torch.arange(rows)
    held = identity  # position -> chain (image * width + i) held there
    steps = []
    for step in range(depth):
        chain_ops, chain_levels, chain_signs, chain_arguments = (
            values[start:stop, :, step].reshape(-1) for values in (ops, levels, signs, arguments)
        )
        if executor == "grouped":
            order = torch.sort(chain_ops[held], stable=True).indices
            held = held[order]
            source_rows = held // width if step == 0 else order  # step 0 reads the images
            counts = torch.bincount(chain_ops[held] - NO_OP).tolist()
            bounds = torch.tensor([0, *counts]).cumsum(0).tolist()
            groups = tuple((k + NO_OP, bounds[k], bounds[k + 1]) for k, count in enumerate(counts) if count)
        else:
            source_rows = identity // width if step == 0 else None
            groups = tuple((k, 0, rows) for k in sorted(set(chain_ops.tolist()) - {NO_OP}))
        if step > 0 and source_rows is not None and torch.equal(source_rows, identity):
            source_rows = None
        steps.append(
            StepPlan(source_rows, groups, chain_ops[held], chain_levels[held], chain_signs[held], chain_arguments[held])
        )
    restore = None if torch.equal(held, identity) else torch.argsort(held).view(-1, width)
    return ChunkPlan(start, stop, tuple(steps), restore, chain_weights[start:stop], mix_weight[start:stop])


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """A small host tensor on ``device`` without the host waiting for the device's queue: pinned and
    non-blocking on CUDA (a pageable copy would synchronise), as ``upload`` does for the plans."""
    if device.type != "cuda" or tensor.device == device:
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def upload(plans: list[ChunkPlan], device: torch.device) -> list[ChunkPlan]:
    """Move every tensor of ``plans`` to ``device`` in one pinned, non-blocking copy.

    All values are float64 or integers far below 2**53, so packing them into one float64 buffer
    is exact.
    """
    if device.type == "cpu":
        return plans
    tensors: list[Tensor] = []

    def collect(tensor: Tensor) -> Tensor:
        tensors.append(tensor)
        return tensor

    _map_tensors(plans, collect)
    packed = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
    if device.type == "cuda":
        packed = packed.pin_memory()
    parts = iter(packed.to(device, non_blocking=True).split([t.numel() for t in tensors]))
    return _map_tensors(plans, lambda t: next(parts).view(t.shape).to(t.dtype))


def _map_tensors(value: Any, visit: Callable[[Tensor], Tensor]) -> Any:
    """Rebuild plans (dataclasses, tuples, lists) with ``visit`` applied to every tensor, in order."""
    if isinstance(value, Tensor):
        return visit(value)
    if isinstance(value, (StepPlan, ChunkPlan)):
        return replace(value, **{f.name: _map_tensors(getattr(value, f.name), visit) for f in fields(value)})
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, visit) for v in value)
    return value


def run_chunk(
    images: Tensor, plan: ChunkPlan, ops: list[Op], fill: Fill, executor: Executor, out: Tensor,
    normalize: Normalization | None = None,
) -> None:
    """Write the AugMix of a chunk's ``images`` (uint8) into ``out`` (float32, same shape)."""
    chains = images
    for step in plan.steps:
        if executor == "grouped":
            chains = _grouped_step(chains, step, ops, fill)
        else:
            chains = _fused_step(chains, step, ops, fill)
    _mix(images, chains, plan, out, normalize)


def images_per_block(images: Tensor) -> int:
    """How many images one kernel call takes: a cache-sized block on CPU, everything elsewhere."""
    if images.device.type != "cpu":
        return max(1, images.shape[0])
    return max(1, CPU_BLOCK_VALUES // images[0].numel())


def _grouped_step(source: Tensor, step: StepPlan, ops: list[Op], fill: Fill) -> Tensor:
    """Each op on the chains that drew it, gathered straight from the previous step (on CPU a
    cache-sized block at a time)."""
    if step.source_rows is None and all(k == NO_OP for k, _, _ in step.groups):
        return source
    out = source.new_empty((step.groups[-1][2], *source.shape[1:]))
    block = images_per_block(source)
    for k, start, stop in step.groups:
        if k == NO_OP:
            rows = slice(start, stop)
            if step.source_rows is None:
                out[rows] = source[rows]
            else:
                torch.index_select(source, 0, step.source_rows[rows], out=out[rows])
            continue
        for first in range(start, stop, block):
            rows = slice(first, min(first + block, stop))
            part = source[rows] if step.source_rows is None else source.index_select(0, step.source_rows[rows])
            out[rows] = ops[k].apply(part, step.arguments[rows], fill)
    return out


def _fused_step(source: Tensor, step: StepPlan, ops: list[Op], fill: Fill) -> Tensor:
    """Every occurring op on all chains; each chain keeps the result of its own op."""
    chains = source if step.source_rows is None else source.index_select(0, step.source_rows)
    h, w = chains.shape[-2:]
    present = [k for k, _, _ in step.groups]
    arguments = {k: ops[k].parameter(step.levels, step.signs, h, w) for k in present}
    chosen = {k: step.ops == k for k in present}
    result = chains
    tables = [k for k in present if ops[k].lut is not None]
    if tables:
        n, c = chains.shape[:2]
        lut = torch.arange(256, device=chains.device, dtype=torch.uint8).expand(n, c, 256)
        for k in tables:
            lut = torch.where(chosen[k].view(-1, 1, 1), ops[k].lut(chains, arguments[k]), lut)
        result = apply_lut(chains, lut)
    for k in present:
        if ops[k].lut is None:
            result = torch.where(chosen[k].view(-1, 1, 1, 1), ops[k].apply(chains, arguments[k], fill), result)
    return result


def _mix(images: Tensor, chains: Tensor, plan: ChunkPlan, out: Tensor, normalize: Normalization | None) -> None:
    """out = (1 - m) * x + m * sum_i ws_i * chain_i, scaled to [0, 1], then ``(out - mean) / std``
    per channel when ``normalize`` = (mean, std) is given.

    On CPU a few images at a time, so the passes over the output hit the core's cache.
    """
    n, width = plan.chain_weights.shape
    m = plan.mix_weight
    clean_weights = ((1.0 - m) / 255.0).float().view(-1, 1, 1, 1)
    chain_weights = (plan.chain_weights * m.unsqueeze(1) / 255.0).float().view(n, width, 1, 1, 1)
    in_order = chains.view(n, width, *chains.shape[1:]) if plan.restore is None else None
    block = images_per_block(images)
    for start in range(0, n, block):
        part = slice(start, start + block)
        target = out[part]
        torch.mul(images[part], clean_weights[part], out=target)
        for i in range(width):
            chain = in_order[part, i] if in_order is not None else chains.index_select(0, plan.restore[part, i])
            target.addcmul_(chain, chain_weights[part, i])
        target.clamp_(0.0, 1.0)
        if normalize is not None:
            normalize_in_place(target, *normalize)


def normalize_in_place(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """``(images - mean) / std`` per channel, in place, with Python scalars (no device copies).
    The one formula of every normalisation in the package, so all paths give the same bits."""
    for channel, (m, s) in enumerate(zip(mean, std)):
        images[:, channel].sub_(m).div_(s)
