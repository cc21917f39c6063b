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
    """Writes ``marker`` at (epoch, batch) and waits there until a stop signal arrives (SIGTERM, or
    one the Preemption callback caught), so a test can signal a real run at a known point."""

    def __init__(self, epoch: int, batch: int, marker: str, timeout: float = 120.0) -> None:
        self.epoch, self.batch, self.marker, self.timeout = epoch, batch, marker, timeout

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        import time
        from pathlib import Path

        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        Path(self.marker).write_text("waiting for SIGTERM")
        deadline = time.time() + self.timeout
        from augmix.reliability import Preemption

        def signalled() -> bool:
            caught = any(c.requested is not None for c in trainer.callbacks if isinstance(c, Preemption))
            return trainer.received_sigterm or caught

        while not signalled() and time.time() < deadline:
            time.sleep(0.05)
