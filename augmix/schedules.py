"""Learning rates: the global batch they scale with, and the paper's schedules.

The schedules are stepped once per optimizer step. Each factory takes the optimizer plus the run's
step counts, which are known only once the trainer has seen the data; configs pass them as
``_partial_`` callables.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def global_batch_size(batch_size: int, world_size: int = 1, accumulate_grad_batches: int = 1) -> int:
    """Images per optimizer step over all processes: the per-process ``batch_size`` x processes x
    accumulated batches. The one place the global batch is computed (lr scaling and the start-up
    log both read it)."""
    return batch_size * world_size * accumulate_grad_batches


def scaled_lr(lr: float, global_batch: int, reference_batch: int | None) -> float:
    """The linear scaling rule (Goyal et al., 2017): ``lr x global_batch / reference_batch``; ``lr``
    itself without a reference (the CIFAR recipes)."""
    return lr * global_batch / reference_batch if reference_batch else lr


def cosine(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, final_lr: float = 1e-6) -> LambdaLR:
    """The official CIFAR schedule: cosine from the base lr down to ``final_lr`` over all steps."""
    base = optimizer.param_groups[0]["lr"]
    floor = final_lr / base

    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(progress * math.pi))

    return LambdaLR(optimizer, factor)


def step_thirds(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, gamma: float = 0.1) -> LambdaLR:
    """The official ImageNet schedule: divide the lr by 10 after each third of the epochs."""
    epochs = max(total_steps // max(steps_per_epoch, 1), 1)
    third = max(epochs // 3, 1)

    def factor(step: int) -> float:
        epoch = step // max(steps_per_epoch, 1)
        return gamma ** min(epoch // third, 2)

    return LambdaLR(optimizer, factor)


def constant(optimizer: Optimizer, total_steps: int, steps_per_epoch: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: 1.0)
