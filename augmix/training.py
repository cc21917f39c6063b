"""What ``train.py`` does once Hydra has composed the config: validate, instantiate, fit."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor

from augmix.callbacks import METRICS_FILE, read_metrics
from augmix.config import validate
from augmix.data import AugMixDataModule
from augmix.errors import CheckpointError, ConfigError
from augmix.evaluation import check_evaluate_after_fit, evaluate_after_fit
from augmix.io import AtomicCheckpointIO
from augmix.loggers import build_loggers, finish_wandb
from augmix.module import WANDB_RUN_ID_KEY, AugMixModule

log = logging.getLogger(__name__)


def _is_launcher_rank_zero() -> bool:
    """True in the process that Hydra started (not in DDP worker processes Lightning spawns)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def build_callbacks(config: DictConfig | None, has_logger: bool) -> list[Callback]:
    callbacks = []
    for node in (config or {}).values():
        if isinstance(node, DictConfig) and "_target_" in node:
            callback = instantiate(node)
            if isinstance(callback, LearningRateMonitor) and not has_logger:
                continue  # it refuses to run without a logger
            callbacks.append(callback)
    return callbacks


def finished_metrics(output_dir: Path, max_epochs: int | None) -> dict[str, Any] | None:
    """The final metrics of a run that already completed in ``output_dir`` with the same budget."""
    metrics = read_metrics(output_dir / METRICS_FILE)
    if metrics.get("finished") and metrics.get("max_epochs") == max_epochs:
        return metrics
    return None


def resume_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """An explicit ``ckpt_path``, else (with ``resume=true``) the run dir's own ``last.ckpt``."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise CheckpointError(f"ckpt_path={cfg.ckpt_path} does not exist; give the path of a last.ckpt to resume")
        return str(path)
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if cfg.get("resume", True) and last.is_file() else None


def checkpoint_run_id(path: str | None) -> str | None:
    """The wandb run id stored in a checkpoint, so a resumed run logs into the same wandb run."""
    if path is None:
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001  (any unreadable file is the same user problem)
        raise CheckpointError(f"cannot read checkpoint {path} ({error}); it may be truncated or not a checkpoint") from None
    return checkpoint.get(WANDB_RUN_ID_KEY)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume) as configured; returns the final metrics.

    A run dir whose run already finished with the same ``trainer.max_epochs`` is skipped and its
    metrics returned; one with a ``last.ckpt`` resumes from it. Re-running a killed sweep
    therefore skips finished jobs and resumes the others.
    """
    validate(cfg)
    check_evaluate_after_fit(cfg)
    output_dir = Path(cfg.paths.output_dir)
    done = finished_metrics(output_dir, cfg.trainer.get("max_epochs"))
    if done is not None:
        log.info(f"{output_dir} already holds a finished run; returning its metrics without training")
        return done
    ckpt_path = resume_checkpoint(cfg, output_dir)
    if ckpt_path:
        log.info(f"resuming from {ckpt_path}")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule: AugMixDataModule = instantiate(
        cfg.data, augmix=cfg.augmix, seed=cfg.seed, val_corruptions=cfg.get("val_corruptions")
    )
    if _is_launcher_rank_zero():
        datamodule.prepare_data()  # fail now, not after the model is built, if data is missing

    model: AugMixModule = instantiate(cfg.model, loss=instantiate(cfg.loss))
    model.run_config = OmegaConf.to_container(cfg, resolve=True)

    loggers = build_loggers(cfg.get("logger"), resume_id=checkpoint_run_id(ckpt_path))
    callbacks = build_callbacks(cfg.get("callbacks"), has_logger=bool(loggers))
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    for logger in loggers:
        logger.log_hyperparams(model.run_config)

    try:
        with warnings.catch_warnings():
            # mid-epoch resumption is exact here: the DataModule skips the batches already trained
            warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        # metrics.json carries figures from before a resume; this process's own metrics override them
        metrics = {**read_metrics(output_dir / METRICS_FILE), **{k: float(v) for k, v in trainer.callback_metrics.items()}}
        if cfg.get("test"):
            trainer.test(model, datamodule=datamodule, ckpt_path="best")
            metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})
        metrics.update(evaluate_after_fit(cfg, trainer))  # robustness reports, when configured
    finally:
        finish_wandb(loggers)
    return metrics


def objective(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value a sweeper optimises, with a clear error when the run never produced it."""
    if not name:
        return None
    if name not in metrics or metrics[name] is None:
        available = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise ConfigError(f"optimized_metric={name} was not logged by this run; available: {available}")
    return float(metrics[name])
