"""Callbacks that make long runs safe to interrupt, resume and trust.

- ``StepSeeding``: torch's global RNG (dropout, drop-path) is re-seeded from (seed, rank, epoch,
  batch) before every step, so a resumed run continues bit for bit.
- ``Preemption``: SIGTERM / SIGINT / SIGUSR1 / SIGUSR2 keep the work done (``last.ckpt``) at the next
  batch boundary of every stage and stop cleanly.
- ``DivergenceGuard``: a NaN or infinite loss stops training before the step is applied and
  before any checkpoint could be overwritten by a diverged model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from augmix import interrupts
from augmix.errors import AugMixError
from augmix.streams import STEP_STREAM, stream_seed


class DivergenceError(AugMixError):
    """The loss became NaN or infinite."""


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
    """Acts on a stop request (SIGTERM, SIGINT, SIGUSR1, SIGUSR2; see ``augmix.interrupts``) at the
    next batch boundary of every stage, keeping all the work done so far.

    SLURM (``--signal``) and submitit (SIGUSR2 before a timeout or pre-emption) warn a job this way,
    and Ctrl-C asks the same. In training, ``last.ckpt`` is written after the batch in flight; the
    DataModule's checkpoint state records how many batches of the epoch were done, and resuming skips
    exactly those. In validation the checkpoint is the one of the finished training steps, marked
    "validation not yet run", so the resumed run validates again from the start (nothing is
    retrained or skipped). The sanity check and the test run stop without saving: nothing new exists
    to keep. Under DDP all ranks agree at the same batch (the collective save cannot deadlock) by
    asking every ``check_every`` batches, at the start of each validation and at each epoch end,
    never per step.
    """

    def __init__(self, check_every: int = 10) -> None:
        self.check_every = check_every
        self._installed = False
        self._at_validation_start = False  # the stop came at the last training batch before a validation
        self._common_batches: list[float] = []  # batches every rank has, per dataloader of this loop

    # ---------------------------------------------------------------------------- signal handlers

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not self._installed:
            interrupts.install()
            self._installed = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._installed:
            interrupts.uninstall()
            self._installed = False

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.teardown(trainer, pl_module, "")  # Lightning skips the teardown hooks after an exception

    # ----------------------------------------------------------------------------------- training

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        interrupts.reclaim()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._agreed(trainer, (batch_idx + 1) % self.check_every == 0):
            return
        if validation_follows(trainer):
            self._at_validation_start = True  # saved there, marked "validation not yet run"
            return
        path = self._save(trainer)
        interrupts.stop(
            f"saved {path} at epoch {trainer.current_epoch}, batch {batch_idx + 1} (global step {trainer.global_step})"
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._agreed(trainer, True):
            path = self._save(trainer)
            interrupts.stop(f"saved {path} at the end of epoch {trainer.current_epoch} (global step {trainer.global_step})")

    # ----------------------------------------------------------------------- validation and test

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        interrupts.reclaim()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        interrupts.reclaim()
        if trainer.state.fn == "fit":
            count_restarted_validation_once(trainer)
        batches = trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        if self._at_validation_start or self._start_loop(trainer, batches):
            self._stop_in_validation(trainer, 0)

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._after_batch(trainer, batch_idx, dataloader_idx, self._stop_in_validation)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        interrupts.reclaim()
        if self._start_loop(trainer, trainer.num_test_batches):
            self._stop_in_test(trainer, 0)

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._after_batch(trainer, batch_idx, dataloader_idx, self._stop_in_test)

    # ---------------------------------------------------------------------------------- helpers

    def _agreed(self, trainer: pl.Trainer, check: bool) -> bool:
        """Did any rank receive a stop signal? Alone: every call answers. Under DDP only the calls
        with ``check`` (made by every rank at the same point) ask the others."""
        local = interrupts.requested() is not None
        if trainer.world_size == 1:
            return local
        return check and trainer.strategy.reduce_boolean_decision(local, all=False)

    def _start_loop(self, trainer: pl.Trainer, batches: list[float]) -> bool:
        """At the start of an evaluation loop: learn which batches all ranks have (shards may differ
        by one batch) and whether any rank asks to stop, in one collective."""
        self._common_batches = list(batches)
        if trainer.world_size == 1:
            return interrupts.requested() is not None
        local = torch.tensor([float(interrupts.requested() is not None), *batches], device=trainer.strategy.root_device)
        every = trainer.strategy.all_gather(local).reshape(trainer.world_size, -1)
        self._common_batches = every[:, 1:].min(dim=0).values.tolist()
        return bool(every[:, 0].max() > 0)

    def _after_batch(self, trainer: pl.Trainer, batch_idx: int, dataloader_idx: int,
                     stop: Callable[[pl.Trainer, int], None]) -> None:
        """``stop`` after this validation or test batch if any rank was signalled; under DDP the ranks
        ask each other only at a batch every rank runs (every ``check_every`` batches)."""
        common = self._common_batches[dataloader_idx] if dataloader_idx < len(self._common_batches) else 0
        if self._agreed(trainer, (batch_idx + 1) % self.check_every == 0 and batch_idx < common):
            stop(trainer, batch_idx + 1)

    def _save(self, trainer: pl.Trainer) -> Path:
        path = last_checkpoint_path(trainer) or Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        trainer.save_checkpoint(path, weights_only=False)  # the DataModule's state records the batches already done
        return path

    def _stop_in_validation(self, trainer: pl.Trainer, done: int) -> None:
        if trainer.sanity_checking:
            last = last_checkpoint_path(trainer)
            if last and last.exists():
                interrupts.stop(f"stopped in the sanity check, before any training step: nothing new to save; {last} is unchanged")
            interrupts.stop("stopped in the sanity check, before any training step: nothing to save yet", "start")
        if trainer.state.fn != "fit":
            interrupts.stop(f"stopped validation after {done} batches; nothing was saved", "validate")
        restart_validation(trainer)
        path = self._save(trainer)
        interrupts.stop(
            f"saved {path} at epoch {trainer.current_epoch}, batch {training_batches_done(trainer)} "
            f"(global step {trainer.global_step}) during validation, which runs again from its start"
        )

    def _stop_in_test(self, trainer: pl.Trainer, done: int) -> None:
        last = last_checkpoint_path(trainer)
        kept = f"the trained checkpoints in {last.parent} are unchanged" if last else "nothing was saved"
        total = int(sum(trainer.num_test_batches))
        interrupts.stop(f"stopped the test run after {done} of {total} batches; {kept}", "run the test")


# --- Lightning's loop internals -------------------------------------------------------------------
# Lightning has no public API for where the fit loop stands inside an epoch, nor for making a
# checkpoint resume an interrupted validation from its start. These four functions are the only
# place this project reads or changes loop state (the DataModule's resume point included); each
# uses the loop attributes of pytorch_lightning 2.6 and needs checking when Lightning is upgraded
# (tests/hostile/test_interruptions.py covers every one of them).


def training_batches_done(trainer: pl.Trainer) -> int:
    """Training batches of the current epoch done so far (what a mid-epoch resume skips)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def validation_follows(trainer: pl.Trainer) -> bool:
    """Will Lightning validate right after the training batch that just ended? (Its own rule.)"""
    loop = trainer.fit_loop.epoch_loop
    return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))  # private: Lightning's own decision


def count_restarted_validation_once(trainer: pl.Trainer) -> None:
    """A validation that resumes "restarted mid-evaluation" starts its interrupted batch again; its
    first start is still counted, which would make every later checkpoint of this run read as
    interrupted mid-validation too (and validate again when resumed). Count it once."""
    loop = trainer.fit_loop.epoch_loop.val_loop
    if loop.restarted_mid_evaluation:
        loop.batch_progress.total.ready = loop.batch_progress.total.started = loop.batch_progress.total.completed


def restart_validation(trainer: pl.Trainer) -> None:
    """Make the fit loop's state read "validation started, no batch of it done", so a checkpoint
    written now resumes by running this validation again from its first batch (Lightning's
    "restarted mid-evaluation"), instead of treating it as done or as the next epoch. Only the
    progress counters change; the training steps, weights and DataModule state are those of now."""
    progress = trainer.fit_loop.epoch_loop.val_loop.batch_progress
    earlier = progress.total.completed - progress.current.completed  # batches of earlier validations this epoch
    progress.reset()
    progress.increment_by(earlier)
    progress.reset_on_run()
    progress.increment_ready()
    progress.increment_started()


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
