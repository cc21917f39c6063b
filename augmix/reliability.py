"""Callbacks that make long runs safe to interrupt, resume and trust.

- ``StepSeeding``: torch's global RNG (dropout, drop-path) is re-seeded from (seed, rank, epoch,
  batch) before every step, so a resumed run continues bit for bit.
- ``Preemption``: SIGTERM / SIGUSR1 / SIGUSR2 save ``last.ckpt`` at the next batch boundary and stop cleanly.
- ``DivergenceGuard``: a NaN or infinite loss stops training before the step is applied and
  before any checkpoint could be overwritten by a diverged model.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from augmix.errors import AugMixError
from augmix.random import STEP_STREAM, stream_seed


class DivergenceError(AugMixError):
    """The loss became NaN or infinite."""


class Preempted(SystemExit):
    """Raised after the pre-emption checkpoint is safely on disk: exit status 0, no traceback."""


def last_checkpoint_path(trainer: pl.Trainer) -> Path | None:
    """``<checkpoint dir>/last.ckpt``: where resumable state lives (see configs/callbacks/default.yaml)."""
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
    return None


class StepSeeding(pl.Callback):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(stream_seed(self.seed, STEP_STREAM, trainer.global_rank, trainer.current_epoch, batch_idx))


class Preemption(pl.Callback):
    """Turns SIGTERM, SIGUSR1 and SIGUSR2 into a mid-epoch ``last.ckpt`` and a clean stop.

    SLURM (``--signal``) and submitit (SIGUSR2 before a timeout or pre-emption) warn a job this
    way. The signal only sets a flag; at the next batch boundary all ranks agree to stop (so the
    collective save cannot deadlock), the checkpoint is written atomically, and a handler that was
    installed before ours (submitit's requeue) is then called. The DataModule's checkpoint state
    records how many batches of the epoch were done; resuming skips exactly those.
    """

    SIGNALS = ("SIGUSR1", "SIGUSR2")

    def __init__(self, check_every: int = 10) -> None:
        self.check_every = check_every
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        for name in self.SIGNALS:
            if hasattr(signal, name):
                try:
                    number = getattr(signal, name)
                    self._previous[number] = signal.signal(number, self._on_signal)
                except ValueError:  # not the main thread: leave signals alone
                    return

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = signum

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        local = self.requested is not None or bool(getattr(trainer, "received_sigterm", False))
        if trainer.world_size > 1:
            # ranks agree at the same batch; asking only every few batches keeps the per-step
            # collective off the hot path (schedulers give tens of seconds of warning)
            if (batch_idx + 1) % self.check_every or not trainer.strategy.reduce_boolean_decision(local, all=False):
                return
        elif not local:
            return
        path = last_checkpoint_path(trainer) or Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        trainer.save_checkpoint(path)  # the DataModule's state records the batches already done
        reason = signal.Signals(self.requested).name if self.requested is not None else "SIGTERM"
        if trainer.is_global_zero:
            print(
                f"{reason}: saved {path} at epoch {trainer.current_epoch}, batch {batch_idx + 1} "
                f"(global step {trainer.global_step}); run the same command again to resume.",
                file=sys.stderr,
                flush=True,
            )
        previous = self._previous.get(self.requested) if self.requested is not None else None
        self.teardown(trainer, pl_module, "fit")
        if callable(previous):
            previous(self.requested, None)  # e.g. submitit: requeue this job, then exit
        raise Preempted(0)


class DivergenceGuard(pl.Callback):
    """Stops at the first non-finite loss, naming the step and the usual remedies.

    On the CPU every loss is checked before its backward pass. On an accelerator the check stays on
    the device (a per-step host sync would stall the GPU) and is read every ``check_every`` steps,
    after each validation and before every checkpoint save: the message still names the first bad
    step, and a diverged model is never written over a good checkpoint.
    """

    def __init__(self, check_every: int = 25) -> None:
        self.check_every = check_every
        self._first_bad: torch.Tensor | None = None  # global step of the first non-finite loss, -1 if none
        self._bad_value: torch.Tensor | None = None

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        loss = loss.detach()
        if self._first_bad is None or self._first_bad.device != loss.device:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._bad_value = torch.zeros((), device=loss.device)
        new = ~torch.isfinite(loss).all() & (self._first_bad < 0)
        self._first_bad = torch.where(new, trainer.global_step, self._first_bad)
        self._bad_value = torch.where(new, loss.float().flatten()[0], self._bad_value)
        if loss.device.type == "cpu" or trainer.global_step % self.check_every == 0:
            self._check(trainer, collective=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # runs before ModelCheckpoint (Lightning orders checkpoint callbacks last)
        if trainer.sanity_checking:
            return
        self._check(trainer, collective=True)
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and not torch.isfinite(value).all():
            raise DivergenceError(self._message(trainer, f"the validation loss became {float(value)}", trainer.global_step))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._check(trainer, collective=False)  # whatever triggered the save, never persist a diverged model

    def _check(self, trainer: pl.Trainer, collective: bool) -> None:
        if self._first_bad is None:
            return
        diverged = bool(self._first_bad >= 0)
        if collective:
            diverged = trainer.strategy.reduce_boolean_decision(diverged, all=False)
        if diverged:
            step, value = int(self._first_bad), float(self._bad_value)
            raise DivergenceError(self._message(trainer, f"the training loss became {value}", step))

    @staticmethod
    def _message(trainer: pl.Trainer, what: str, step: int) -> str:
        module = trainer.lightning_module
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        weight = getattr(getattr(module, "loss", None), "weight", None)
        last = last_checkpoint_path(trainer)
        kept = f"the last good checkpoint is {last}" if last and last.exists() else "no checkpoint had been written yet"
        return (
            f"training diverged: {what} at epoch {trainer.current_epoch}, global step {step}. "
            f"Checkpoints were left untouched; {kept}. Likely fixes: lower model.optimizer.lr (current lr {lr:.4g}), "
            f"lower loss.weight (JSD lambda, now {weight}), use trainer.precision=32-true "
            f"(now {trainer.precision}), or clip gradients with trainer.gradient_clip_val=1.0."
        )
