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
    signal a real run at a known point. It pauses once (a rerun that finds the marker goes on), in
    rank zero only; with ``hold`` it keeps waiting after the signal, until ``timeout``."""

    def __init__(
        self, batch: int, marker: str, stage: str = "train", epoch: int | None = None, hold: bool = False, timeout: float = 120.0
    ) -> None:
        self.batch, self.marker, self.stage, self.epoch = batch, marker, stage, epoch
        self.hold, self.timeout = hold, timeout

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self._pause(trainer, "train", batch_idx)

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._pause(trainer, "sanity" if trainer.sanity_checking else "validation", batch_idx)

    def on_test_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._pause(trainer, "test", batch_idx)

    def _pause(self, trainer: pl.Trainer, stage: str, batch_idx: int) -> None:
        import time
        from pathlib import Path

        from augmix import interrupts

        if (stage, batch_idx) != (self.stage, self.batch) or self.epoch not in (None, trainer.current_epoch):
            return
        if trainer.global_rank != 0 or Path(self.marker).exists():
            return
        Path(self.marker).write_text(f"paused at {stage} batch {batch_idx}, waiting for a stop signal")
        deadline = time.time() + self.timeout
        while (self.hold or interrupts.requested() is None) and time.time() < deadline:
            time.sleep(0.05)


def run_paused_in_evaluation(script: str, marker: str, batch: str, *args: str) -> None:
    """Run ``script`` (evaluate.py, or train.py with evaluate_after_fit) as ``python script args``
    would, pausing before evaluation batch ``batch`` (counted over all sets) until a stop signal
    was received; ``marker`` tells the test when to signal. A subprocess runs it:
    ``python -c "...run_paused_in_evaluation(*sys.argv[1:])" evaluate.py MARKER BATCH args...``."""
    import itertools
    import runpy
    import sys
    import time
    from pathlib import Path

    from augmix import interrupts
    from augmix.evaluation import run as runner

    original, calls = runner.outcomes, itertools.count()

    def paused(logits, targets):
        if next(calls) == int(batch):
            Path(marker).write_text(f"paused before evaluation batch {batch}, waiting for a stop signal")
            deadline = time.time() + 120
            while interrupts.requested() is None and time.time() < deadline:
                time.sleep(0.05)
        return original(logits, targets)

    runner.outcomes = paused
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
