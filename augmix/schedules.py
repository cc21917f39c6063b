"""Learning-rate schedules of the paper's recipes, stepped once per optimizer step.

Each factory takes the optimizer plus the run's step counts, which are known only once the
trainer has seen the data; configs pass them as ``_partial_`` callables.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


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
