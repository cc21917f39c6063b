"""Callbacks that leave the run's artefacts in its output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from torchvision.utils import make_grid, save_image

from augmix.errors import RunDirError
from augmix.files import finite_or_none, write_json
from augmix.fingerprint import run_fingerprint

METRICS_FILE = "metrics.json"


class AugMixSamples(pl.Callback):
    """Saves ``augmix_samples.png``: rows clean / augmix1 / augmix2 for the first training images.

    It shows exactly what the model is fed (same keyed streams as batch 0 of epoch 0), so a
    wrong severity or op list is visible before hours of training.
    """

    def __init__(self, path: str, count: int = 8) -> None:
        self.path, self.count = Path(path), count

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        clean, views = trainer.datamodule.preview(self.count)
        rows = [clean.float() / 255.0, *views]
        grid = make_grid(torch.cat(rows), nrow=len(clean), padding=2, pad_value=1.0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.path)
        for logger in trainer.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.log_image("augmix_samples", [str(self.path)], caption=["clean / augmix1 / augmix2"])


class MetricsJSON(pl.Callback):
    """Writes the final validation metrics (and best so far) to ``metrics.json`` after each epoch.

    Rewriting it every epoch keeps an interrupted run's figures; the write is atomic. When fit
    completes, ``finished`` and ``max_epochs`` mark the run done, which lets re-run sweeps skip it.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, finished=completed_budget(trainer))

    def _write(self, trainer: pl.Trainer, finished: bool = False) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        current = {
            name: finite_or_none(float(value))  # a diverged metric is undefined: null
            for name, value in trainer.callback_metrics.items()
            if not name.startswith("train/") or name.endswith("_epoch")
        }
        # A resumed run that only finishes up may log nothing new: keep the figures already on disk.
        metrics = {**read_metrics(self.path), **current}
        if not any(name.startswith("val/") for name in metrics):
            return
        if not finished:
            metrics["epoch"] = trainer.current_epoch
        metrics["global_step"] = trainer.global_step
        metrics["finished"] = finished
        metrics["max_epochs"] = trainer.max_epochs
        run_config = getattr(trainer.lightning_module, "run_config", None)
        if run_config is not None:
            metrics["fingerprint"] = run_fingerprint(run_config)
        write_json(self.path, metrics)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer)


def completed_budget(trainer: pl.Trainer) -> bool:
    """Did fit end because the run is done (epochs or steps used up, early stopping), rather than
    because ``max_time`` ran out? Only done runs may be skipped when a sweep is re-run."""
    epochs_done = trainer.max_epochs is not None and trainer.max_epochs >= 0 and trainer.current_epoch >= trainer.max_epochs
    steps_done = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
    early_stopped = any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks)
    return epochs_done or steps_done or early_stopped


def read_metrics(path: Path) -> dict:
    """The metrics a run wrote so far, or {} when there are none yet; a damaged file is one line."""
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirError(
            f"{path} is damaged ({error}): it is this run's record of its metrics. Delete it and run the same "
            "command again to resume from checkpoints/last.ckpt (a finished run's figures are not recomputed), "
            "or use a fresh hydra.run.dir"
        ) from None
    if not isinstance(metrics, dict):
        raise RunDirError(f"{path} holds {type(metrics).__name__}, not the run's metrics; delete it and run the same command again")
    return metrics
