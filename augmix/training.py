"""What ``train.py`` does once Hydra has composed the config: validate, instantiate, fit."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor

from augmix.config import validate
from augmix.data import AugMixDataModule
from augmix.io import AtomicCheckpointIO
from augmix.loggers import build_loggers
from augmix.module import AugMixModule


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


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume) as configured; returns the final metrics."""
    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule: AugMixDataModule = instantiate(cfg.data, augmix=cfg.augmix, seed=cfg.seed)
    if _is_launcher_rank_zero():
        datamodule.prepare_data()  # fail now, not after the model is built, if data is missing

    model: AugMixModule = instantiate(cfg.model, loss=instantiate(cfg.loss))
    model.run_config = OmegaConf.to_container(cfg, resolve=True)

    loggers = build_loggers(cfg.get("logger"))
    callbacks = build_callbacks(cfg.get("callbacks"), has_logger=bool(loggers))
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    for logger in loggers:
        logger.log_hyperparams(model.run_config)

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path="best")
        metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})
    return metrics
