"""Learning rates: the global batch they scale with, the warmup that large batches need, and the
paper's schedules.

The global batch is the one number a recipe states (``data.batch_size`` with
``data.batch_scope=global``); each process takes an equal share of it (``batch_plan``). The lr
scales linearly with it (``scaled_lr``), and when that lifts the lr above the reference lr a linear
warmup leads up to it (Goyal et al., 2017). Every schedule is stepped once per optimizer step:

    lr(s) = lr_scaled x w(s) x f(s)
    lr_scaled = lr x B / B_ref              (lr itself without a reference batch)
    w(s) = r + (1 - r) x s / W for s < W, else 1;   r = B_ref / B, W = round(warmup_epochs x steps per epoch)

with ``s`` the optimizer steps taken, ``f`` the schedule's own factor (cosine, step_thirds,
constant) and no warmup (w = 1) unless B > B_ref. Each factory takes the optimizer plus the run's
step counts, which are known only once the trainer has seen the data; configs pass them as
``_partial_`` callables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from augmix.errors import ConfigError
from augmix.rules import BATCH_SCOPE, check

Factor = Callable[[int], float]


def global_batch_size(batch_size: int, world_size: int = 1, accumulate_grad_batches: int = 1) -> int:
    """Images per optimizer step over all processes: the per-process ``batch_size`` x processes x
    accumulated batches. The one place the global batch is computed (lr scaling and the start-up
    log both read it)."""
    return batch_size * world_size * accumulate_grad_batches


@dataclass(frozen=True)
class BatchPlan:
    """How the images of one optimizer step are shared: ``global_batch`` = ``per_process`` x
    ``processes`` x ``accumulate`` (batches each process accumulates per step)."""

    global_batch: int
    per_process: int
    processes: int
    accumulate: int
    scope: str

    def describe(self) -> str:
        return (
            f"global batch {self.global_batch} = {self.per_process} per process x {self.processes} process(es) x "
            f"{self.accumulate} accumulated (data.batch_scope={self.scope})"
        )


def batch_plan(batch_size: int, scope: str, processes: int = 1, accumulate: int = 1) -> BatchPlan:
    """``batch_size`` read as the global batch (``scope="global"``: each of the ``processes`` takes
    an equal share per accumulated batch) or as the per-process batch (``"process"``). A global
    batch that does not divide evenly is a ConfigError naming the numbers."""
    check("data.batch_scope", scope, BATCH_SCOPE)
    if scope == "process":
        return BatchPlan(global_batch_size(batch_size, processes, accumulate), batch_size, processes, accumulate, scope)
    shares = processes * accumulate
    if batch_size % shares:
        lower, upper = batch_size // shares * shares, -(-batch_size // shares) * shares
        raise ConfigError(
            f"data.batch_size={batch_size} is the global batch (data.batch_scope=global) but does not divide evenly over "
            f"{processes} process(es) x {accumulate} accumulated batch(es) = {shares} shares "
            f"({batch_size} / {shares} = {batch_size / shares:.2f} images each). Use a multiple of {shares} "
            f"(e.g. data.batch_size={upper}{f' or {lower}' if lower else ''}), or data.batch_scope=process to give "
            "the per-process batch"
        )
    return BatchPlan(batch_size, batch_size // shares, processes, accumulate, scope)


def scaled_lr(lr: float, global_batch: int, reference_batch: int | None) -> float:
    """The linear scaling rule (Goyal et al., 2017): ``lr x global_batch / reference_batch``; ``lr``
    itself without a reference (the CIFAR recipes)."""
    return lr * global_batch / reference_batch if reference_batch else lr


@dataclass(frozen=True)
class LearningRatePlan:
    """The lr a run trains with: ``lr`` (the configured lr, right for ``reference_batch``) scaled
    to ``scaled`` for the global batch, and the warmup epochs that lead up to it (0: none)."""

    lr: float
    scaled: float
    global_batch: int
    reference_batch: int | None
    warmup_epochs: float

    @property
    def warmup_start(self) -> float:
        """w(0): the share of the scaled lr the warmup starts from (the reference lr)."""
        return self.lr / self.scaled

    def warmup_steps(self, steps_per_epoch: int) -> int:
        return int(round(self.warmup_epochs * steps_per_epoch))

    def describe(self, steps_per_epoch: int | None = None) -> str:
        if self.reference_batch:
            lr = f"lr {self.scaled:.4g} = {self.lr:g} x {self.global_batch} / {self.reference_batch} (model.lr_reference_batch)"
        else:
            lr = f"lr {self.scaled:.4g} (not scaled: model.lr_reference_batch=null)"
        if not self.warmup_epochs:
            return f"{lr}; no warmup"
        steps = f" = {self.warmup_steps(steps_per_epoch)} steps" if steps_per_epoch else ""
        return f"{lr}; warmup {self.warmup_epochs:g} epochs{steps}, linear from {self.lr:.4g} to {self.scaled:.4g} (model.lr_warmup_epochs)"


def lr_plan(lr: float, global_batch: int, reference_batch: int | None, warmup_epochs: float) -> LearningRatePlan:
    """The scaled lr, with ``warmup_epochs`` of warmup only when scaling lifted it above ``lr``."""
    scaled = scaled_lr(lr, global_batch, reference_batch)
    return LearningRatePlan(lr, scaled, global_batch, reference_batch, float(warmup_epochs) if scaled > lr else 0.0)


def with_warmup(factor: Factor, warmup_steps: int = 0, warmup_start: float = 1.0) -> Factor:
    """``factor`` times the linear warmup w(s): from ``warmup_start`` at step 0 to 1 at ``warmup_steps``."""
    if warmup_steps <= 0:
        return factor

    def warmed(step: int) -> float:
        ramp = warmup_start + (1.0 - warmup_start) * step / warmup_steps if step < warmup_steps else 1.0
        return ramp * factor(step)

    return warmed


def cosine(
    optimizer: Optimizer, total_steps: int, steps_per_epoch: int, final_lr: float = 1e-6,
    warmup_steps: int = 0, warmup_start: float = 1.0,
) -> LambdaLR:
    """The official CIFAR schedule: cosine from the base lr down to ``final_lr`` over all steps."""
    base = optimizer.param_groups[0]["lr"]
    floor = final_lr / base

    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(progress * math.pi))

    return LambdaLR(optimizer, with_warmup(factor, warmup_steps, warmup_start))


def step_thirds(
    optimizer: Optimizer, total_steps: int, steps_per_epoch: int, gamma: float = 0.1,
    warmup_steps: int = 0, warmup_start: float = 1.0,
) -> LambdaLR:
    """The official ImageNet schedule: divide the lr by 10 after each third of the epochs."""
    epochs = max(total_steps // max(steps_per_epoch, 1), 1)
    third = max(epochs // 3, 1)

    def factor(step: int) -> float:
        epoch = step // max(steps_per_epoch, 1)
        return gamma ** min(epoch // third, 2)

    return LambdaLR(optimizer, with_warmup(factor, warmup_steps, warmup_start))


def constant(
    optimizer: Optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int = 0, warmup_start: float = 1.0
) -> LambdaLR:
    return LambdaLR(optimizer, with_warmup(lambda step: 1.0, warmup_steps, warmup_start))
