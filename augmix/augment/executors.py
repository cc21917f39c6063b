"""How AugMix's chains run: a plan made on the host, one upload, then only kernels.

The images are processed in chunks, which bounds the temporaries. For each chunk the host decides
everything that depends on the draw, and all of it reaches the images' device in a single
non-blocking copy, so no executor ever reads a value back from the device. Both executors apply
the same kernels, which treat every image on its own, so they give identical bytes:

* ``grouped`` gathers, for each op of a step, just the chains that drew it, runs the op once on
  them and appends the results to one arena of uint8 images; a chain that ended or skipped a step
  is never copied. Least work and memory, on any device: the group sizes are known on the host,
  so gathering needs no sync either.
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

from augmix.augment.ops import Op
from augmix.augment.ops.color import apply_lut
from augmix.augment.ops.common import Fill
from augmix.tensors import images_per_block

NO_OP = -1
Executor = Literal["grouped", "fused"]
Normalization = tuple[tuple[float, ...], tuple[float, ...]]  # per-channel (mean, std)


@dataclass(frozen=True)
class StepPlan:
    """One chain step of one chunk.

    ``groups`` holds ``(op, start, stop)``: runs of positions sharing an op (grouped), or the ops
    that occur, each over all positions (fused). ``ops``, ``levels``, ``signs`` and ``arguments``
    (the argument of each position's own op) are per position.

    Grouped: the positions are all chains at step 0, then the chains with an op in the step;
    position ``p`` reads row ``source_rows[p]`` of the chunk's images (step 0) or of the arena,
    and writes arena row ``offset + p``. Fused: the positions are all chains;
    position ``p`` reads row ``source_rows[p]`` of the chunk's images at step 0 and row ``p`` of
    the previous step's chains after it (``source_rows`` is ``None``).
    """

    source_rows: Tensor | None
    groups: tuple[tuple[int, int, int], ...]
    ops: Tensor
    levels: Tensor
    signs: Tensor
    arguments: Tensor
    offset: int = 0


@dataclass(frozen=True)
class ChunkPlan:
    start: int
    stop: int
    steps: tuple[StepPlan, ...]
    restore: Tensor | None  # (images, width): the arena row of each chain's result; None: in (image, chain) order
    chain_weights: Tensor  # (images, width)
    mix_weight: Tensor  # (images,)
    arena_rows: int = 0  # grouped: every chain at step 0, then every later op's output


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
    per_chain = [values[start:stop].reshape(-1, depth) for values in (ops, levels, signs, arguments)]
    plan = _grouped_steps if executor == "grouped" else _fused_steps
    steps, restore, arena_rows = plan(*per_chain, width=width)
    return ChunkPlan(start, stop, steps, restore, chain_weights[start:stop], mix_weight[start:stop], arena_rows)


def _grouped_steps(
    ops: Tensor, levels: Tensor, signs: Tensor, arguments: Tensor, width: int
) -> tuple[tuple[StepPlan, ...], Tensor, int]:
    """Steps that write one arena of chains. Step 0 takes every chain (from the chunk's images);
    a later step takes only the chains that drew an op in it (from their arena rows), sorted by op,
    and a chain stays in the row of its last output: chains that ended or skipped a step (an
    identity) are never copied."""
    chains = ops.shape[0]
    location = torch.arange(chains) // width  # step 0 reads each chain's image
    offset = 0
    steps = []
    for step in range(ops.shape[1]):
        step_ops = ops[:, step]
        active = torch.arange(chains) if step == 0 else (step_ops != NO_OP).nonzero().view(-1)
        if len(active) == 0:
            continue
        held = active[torch.sort(step_ops[active], stable=True).indices]  # position -> chain
        counts = torch.bincount(step_ops[held] - NO_OP).tolist()
        bounds = torch.tensor([0, *counts]).cumsum(0).tolist()
        groups = tuple((k + NO_OP, bounds[k], bounds[k + 1]) for k, count in enumerate(counts) if count)
        steps.append(StepPlan(
            location[held], groups, step_ops[held], levels[held, step], signs[held, step], arguments[held, step], offset
        ))
        location[held] = torch.arange(offset, offset + len(held))
        offset += len(held)
    return tuple(steps), location.view(-1, width), offset


def _fused_steps(
    ops: Tensor, levels: Tensor, signs: Tensor, arguments: Tensor, width: int
) -> tuple[tuple[StepPlan, ...], None, int]:
    """Every step over all chains in (image, chain) order; each op that occurs runs on all of them."""
    chains = ops.shape[0]
    steps = tuple(
        StepPlan(
            torch.arange(chains) // width if step == 0 else None,
            tuple((k, 0, chains) for k in sorted(set(ops[:, step].tolist()) - {NO_OP})),
            ops[:, step], levels[:, step], signs[:, step], arguments[:, step],
        )
        for step in range(ops.shape[1])
    )
    return steps, None, 0


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
    if executor == "grouped":
        chains = images.new_empty((plan.arena_rows, *images.shape[1:]))
        for number, step in enumerate(plan.steps):
            _grouped_step(images if number == 0 else chains, chains, step, ops, fill)
    else:
        chains = images
        for step in plan.steps:
            chains = _fused_step(chains, step, ops, fill)
    _mix(images, chains, plan, out, normalize)


def _grouped_step(source: Tensor, arena: Tensor, step: StepPlan, ops: list[Op], fill: Fill) -> None:
    """Each op on the chains that drew it, gathered from ``source`` (the images at step 0, the
    arena after it), written into the step's arena rows (on CPU a cache-sized block at a time)."""
    for k, start, stop in step.groups:
        if k == NO_OP:  # step 0 only: chains whose first op is an identity start as their image
            torch.index_select(source, 0, step.source_rows[start:stop], out=arena[step.offset + start : step.offset + stop])
            continue
        block = images_per_block(arena) if ops[k].blocked(arena) else stop - start
        for first in range(start, stop, block):
            rows = slice(first, min(first + block, stop))
            part = source.index_select(0, step.source_rows[rows])
            arena[step.offset + rows.start : step.offset + rows.stop] = ops[k].apply(part, step.arguments[rows], fill)


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
    """out = (1 - m) * x + m * sum_i ws_i * chain_i, scaled to [0, 1] and clamped there; with
    ``normalize`` = (mean, std), ``(out - mean) / std`` per channel, folded into the weights, the
    starting value and the clamp bounds, so normalising costs no extra pass.

    On CPU a few images at a time, so the passes over the output hit the core's cache. Only
    in-place multiply-adds and per-channel Python scalars: out-of-place ``addcmul`` and tensor
    clamp bounds are several times slower on CPU (docs/performance.md).
    """
    n, width = plan.chain_weights.shape
    channels = images.shape[1]
    mean, std = normalize if normalize is not None else ((0.0,) * channels, (1.0,) * channels)
    scales = [1.0 / (255.0 * s) for s in std]  # uint8 value -> normalised unit, per channel
    low = [-a / s for a, s in zip(mean, std)]  # 0 in normalised units: also where the sum starts
    high = [(1.0 - a) / s for a, s in zip(mean, std)]
    m = plan.mix_weight
    clean_weights = torch.stack([(1.0 - m) * k for k in scales], dim=1).float().view(n, channels, 1, 1)
    mixed = plan.chain_weights * m.unsqueeze(1)
    chain_weights = torch.stack([mixed * k for k in scales], dim=2).float().view(n, width, channels, 1, 1)
    in_order = chains.view(n, width, *chains.shape[1:]) if plan.restore is None else None
    block = images_per_block(images)
    for start in range(0, n, block):
        part = slice(start, start + block)
        target = out[part]
        for channel in range(channels):
            target[:, channel].fill_(low[channel])
        target.addcmul_(images[part], clean_weights[part])
        for i in range(width):
            chain = in_order[part, i] if in_order is not None else chains.index_select(0, plan.restore[part, i])
            target.addcmul_(chain, chain_weights[part, i])
        for channel in range(channels):
            target[:, channel].clamp_(low[channel], high[channel])
