"""Callbacks used by tests to simulate failures at precise points of a run."""

import pytorch_lightning as pl


class CrashAtEpochStart(pl.Callback):
    """Raises at the start of ``epoch``, after the previous epoch's checkpoints were written."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated crash at the start of epoch {self.epoch}")


class CrashAtBatchStart(pl.Callback):
    """Raises at the start of training batch ``batch`` of the first epoch it runs."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == self.batch:
            raise RuntimeError(f"simulated crash at the start of batch {self.batch}")


class PauseAtBatch(pl.Callback):
    """Writes ``marker`` at the start of batch ``batch`` of ``stage`` (train, validation, sanity or
    test; in ``epoch`` if given) and waits there until a stop signal was received, so a test can
    signal a real run at a known point. It pauses once: a rerun that finds the marker goes on."""

    def __init__(self, batch: int, marker: str, stage: str = "train", epoch: int | None = None, timeout: float = 120.0) -> None:
        self.batch, self.marker, self.stage, self.epoch, self.timeout = batch, marker, stage, epoch, timeout

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self._pause(trainer, "train", batch_idx)

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._pause(trainer, "sanity" if trainer.sanity_checking else "validation", batch_idx)

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._pause(trainer, "test", batch_idx)

    def _pause(self, trainer: pl.Trainer, stage: str, batch_idx: int) -> None:
        import time
        from pathlib import Path

        from augmix import interrupts

        if (stage, batch_idx) != (self.stage, self.batch) or self.epoch not in (None, trainer.current_epoch):
            return
        if Path(self.marker).exists():
            return
        Path(self.marker).write_text(f"paused at {stage} batch {batch_idx}, waiting for a stop signal")
        deadline = time.time() + self.timeout
        while interrupts.requested() is None and time.time() < deadline:
            time.sleep(0.05)
