"""The evaluation loop: every pending set, sharded across ranks, one set result file at a time.

One DataLoader streams the batches of all pending sets in order, so loader workers stay busy
across set boundaries. uint8 batches become normalised floats on the device. When a set's last
batch is done its per-sample outcomes are gathered from all ranks, its metrics computed from the
complete set and written atomically by rank zero; a resumed run skips the sets already written.
An unreadable image on one rank stops every rank at that set's end with its message. A stop signal
(see ``augmix.interrupts``) stops at the next batch: the sets finished so far are kept, the one in
progress is computed again by the resumed run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import DataLoader

from augmix import interrupts
from augmix.errors import CheckpointError, DataError
from augmix.evaluation.distributed import (
    any_rank,
    batch_bounds,
    first_error,
    gather_set,
    shard_bounds,
)
from augmix.evaluation.metrics import set_metrics
from augmix.evaluation.progress import SetProgress
from augmix.evaluation.sets import BatchDataset, EvalSet
from augmix.evaluation.store import ResultStore

# Columns of the per-sample outcome table gathered across ranks.
CORRECT1, CORRECT5, CONFIDENCE, LOSS = range(4)
STOP_CHECK_EVERY = 10  # batches between the ranks' agreements on a stop request (one process: every batch)


def outcomes(logits: Tensor, targets: Tensor) -> Tensor:
    """(B, 4) float32: top-1 hit, top-5 hit, max softmax probability, cross-entropy."""
    logits = logits.float()
    probabilities = logits.softmax(dim=1)
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return torch.stack(
        [
            (logits.argmax(dim=1) == targets).float(),
            (top == targets[:, None]).any(dim=1).float(),
            probabilities.max(dim=1).values,
            F.cross_entropy(logits, targets, reduction="none"),
        ],
        dim=1,
    )


def metrics_from_outcomes(table: Tensor, top5: bool) -> dict:
    values = table.cpu().numpy()
    return set_metrics(
        values[:, CORRECT1] > 0.5,
        values[:, CORRECT5] > 0.5 if top5 else None,
        values[:, CONFIDENCE].astype(np.float32),
        values[:, LOSS],
    )


def run_sets(
    fabric: Fabric,
    model: nn.Module,
    normalize: Callable[[Tensor], Tensor],
    sets: list[EvalSet],
    store: ResultStore,
    batch_size: int,
    num_workers: int,
    num_classes: int,
    show_progress: bool,
) -> dict[str, dict]:
    """Evaluate the sets ``store`` does not hold yet; returns every set's metrics by key.

    Top-5 counts are stored whenever they mean something (5 classes or more), whether or not this
    run reports them, so a resumed run that does report them finds them in every stored set."""
    top5 = num_classes >= 5
    done = {s.key: store.read(s.key) for s in sets} if fabric.global_rank == 0 else {}
    pending_keys = fabric.broadcast([key for key, metrics in done.items() if metrics is None])
    pending = [s for s in sets if s.key in set(pending_keys)]

    rank, world = fabric.global_rank, fabric.world_size
    plans = [batch_bounds(*shard_bounds(len(s), rank, world), batch_size) for s in pending]
    keys = [(index, lo, hi) for index, plan in enumerate(plans) for lo, hi in plan]
    loader = DataLoader(
        BatchDataset(pending, keys),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=fabric.device.type == "cuda",
    )
    precision = fabric.strategy.precision
    model.eval()
    batches = iter(loader)
    results = {}
    stopped = False
    progress = SetProgress(sum(len(s) for s in pending), len(pending), show_progress and rank == 0)
    with progress, torch.inference_mode():
        for evalset, plan in zip(pending, plans):
            progress.start_set(evalset.key)
            parts, error = [], None
            finite = torch.ones((), dtype=torch.bool, device=fabric.device)  # read once per set: no per-batch sync
            common = min(len(batch_bounds(*shard_bounds(len(evalset), r, world), batch_size)) for r in range(world))
            for index in range(len(plan)):
                if stop_agreed(fabric, index < common and index % STOP_CHECK_EVERY == 0):
                    stopped = True
                    break
                batch = next(batches)
                if "error" in batch:
                    error = batch["error"]
                    break
                images = normalize(batch["images"].to(fabric.device, non_blocking=True))
                with fabric.autocast():
                    logits = model(precision.convert_input(images))
                finite &= torch.isfinite(logits).all()
                parts.append(outcomes(logits, batch["targets"].to(fabric.device, non_blocking=True)))
                progress.advance(len(images) * world)
            if stopped:
                break
            error = first_error(fabric, error)
            if error is not None:
                raise DataError(error)
            if any_rank(fabric, not bool(finite)):
                raise CheckpointError(
                    f"the model's outputs (logits) on set {evalset.key} include NaN or infinity, so its figures would be "
                    "meaningless; evaluation stopped before writing them (sets already written are kept). The weights "
                    "are broken (a diverged run?) or a half precision overflowed: try trainer.precision=32-true"
                )
            local = torch.cat(parts) if parts else torch.zeros((0, 4), device=fabric.device)
            metrics = metrics_from_outcomes(gather_set(fabric, local, len(evalset)), top5)
            if rank == 0:
                store.write(evalset.key, metrics)
            results[evalset.key] = metrics
            progress.finish_set(len(evalset))
    if stopped:
        kept = len(sets) - len(pending) + len(results)
        interrupts.stop(f"stopped evaluation after {kept} of {len(sets)} sets; the finished sets are kept in {store.directory}", "continue")
    if rank == 0:
        results.update({key: metrics for key, metrics in done.items() if metrics is not None})
    return results


def stop_agreed(fabric: Fabric, check: bool) -> bool:
    """Did any rank receive a stop signal? Alone: asked before every batch. With several ranks only at
    the ``check`` points, which all ranks reach together (a batch every shard has, every few batches)."""
    local = interrupts.requested() is not None
    if fabric.world_size == 1:
        return local
    if not check:
        return False
    return bool(fabric.all_reduce(torch.tensor(float(local), device=fabric.device), reduce_op="max") > 0)
