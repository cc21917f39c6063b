"""What ``train.py`` does once Hydra has composed the config: validate, instantiate, fit."""

from __future__ import annotations

import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor

from augmix import interrupts
from augmix.callbacks import METRICS_FILE, read_metrics
from augmix.config import validate
from augmix.data import AugMixDataModule
from augmix.environment import is_externally_launched, is_global_rank_zero
from augmix.errors import AugMixError, CheckpointError, ConfigError
from augmix.evaluation import check_evaluate_after_fit, evaluate_after_fit
from augmix.fingerprint import run_fingerprint
from augmix.io import AtomicCheckpointIO, remove_stale_temporaries, write_json
from augmix.loggers import build_loggers, finish_wandb
from augmix.module import CONFIG_KEY, WANDB_RUN_ID_KEY, AugMixModule
from augmix.reliability import DivergenceError

log = logging.getLogger(__name__)
POST_FIT_KEY = "post_fit"  # in metrics.json: the post-fit steps (test, evaluate_after_fit) that finished


def build_callbacks(config: DictConfig | None, has_logger: bool) -> list[Callback]:
    callbacks = []
    for node in (config or {}).values():
        if isinstance(node, DictConfig) and "_target_" in node:
            callback = instantiate(node)
            if isinstance(callback, LearningRateMonitor) and not has_logger:
                continue  # it refuses to run without a logger
            callbacks.append(callback)
    return callbacks


def finished_metrics(output_dir: Path, max_epochs: int | None, fingerprint: str) -> dict[str, Any] | None:
    """The final metrics of a run that completed in ``output_dir`` with the same settings and
    budget; a ConfigError when the folder holds a run with other settings."""
    metrics = read_metrics(output_dir / METRICS_FILE)
    if metrics.get("fingerprint") not in (None, fingerprint):
        raise ConfigError(_foreign_run(output_dir))
    if metrics.get("finished") and metrics.get("max_epochs") == max_epochs:
        return metrics
    return None


def _foreign_run(output_dir: Path) -> str:
    return (
        f"{output_dir} holds a run with different settings; resuming or skipping it would mix two runs. "
        "Use a fresh output dir (hydra.run.dir=... or hydra.sweep.dir=...), or resume=false to start over elsewhere"
    )


def resume_checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """An explicit ``ckpt_path``, else (with ``resume=true``) the run dir's own ``last.ckpt``."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise CheckpointError(f"ckpt_path={cfg.ckpt_path} does not exist; give the path of a last.ckpt to resume")
        return str(path)
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if cfg.get("resume", True) and last.is_file() else None


def read_checkpoint_metadata(path: str) -> dict[str, Any]:
    """A checkpoint's stored config and wandb run id, memory-mapped rather than read whole."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001  (any unreadable file is the same user problem)
        raise CheckpointError(f"cannot read checkpoint {path} ({error}); it may be truncated or not a checkpoint") from None
    return {"config": checkpoint.get(CONFIG_KEY), "wandb_run_id": checkpoint.get(WANDB_RUN_ID_KEY)}


def lightning_starts_processes(trainer: DictConfig) -> bool:
    """Would Lightning start the DDP processes itself (re-running this command line in each)?"""
    strategy = str(trainer.get("strategy", "auto"))
    several = trainer.get("devices") not in (1, "1", None) or int(trainer.get("num_nodes") or 1) > 1
    return several and "ddp" in strategy and "spawn" not in strategy and not is_externally_launched()


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_multirun(cfg: DictConfig) -> None:
    """Lightning's DDP launcher re-runs the whole command line, ``-m`` and sweep included, in every
    process it starts: each would run its own sweep (and ask Optuna for its own trials)."""
    if lightning_starts_processes(cfg.trainer):
        raise ConfigError(
            f"trainer.strategy={cfg.trainer.get('strategy')} with trainer.devices={cfg.trainer.get('devices')} cannot run "
            "inside a local multirun (-m): Lightning would start a copy of the whole sweep in each process. "
            "Launch multi-GPU sweeps with hydra/launcher=submitit_slurm (one task per GPU), or sweep single-process jobs"
        )


def instantiate_node(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets the project's own one-line errors through unwrapped."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, AugMixError):
            raise error.__cause__ from None
        raise


def pending_post_fit(cfg: DictConfig, metrics: dict[str, Any]) -> list[str]:
    """The post-fit steps this command asks for that ``metrics`` (of a finished run) do not record as
    done on its final weights: a run stopped during its test or robustness evaluation, or re-run
    with one added."""
    done = metrics.get(POST_FIT_KEY) or {}
    if done.get("global_step") != metrics.get("global_step"):
        done = {}  # recorded for weights of an earlier stage of the run
    steps = []
    if cfg.get("test") and not done.get("test"):
        steps.append("test")
    if cfg.get("evaluate_after_fit") and done.get("evaluate_after_fit") != _plain(cfg.evaluate_after_fit):
        steps.append("evaluate_after_fit")
    return steps


def _plain(node: DictConfig) -> Any:
    return OmegaConf.to_container(node, resolve=True)


def record_post_fit(trainer: pl.Trainer, output_dir: Path, figures: dict[str, float], step: dict[str, Any]) -> None:
    """Add a finished post-fit step and its figures to ``metrics.json`` (rank zero), with the global
    step of the weights it was run on."""
    if not trainer.is_global_zero:
        return
    path = output_dir / METRICS_FILE
    metrics = read_metrics(path)
    done = metrics.get(POST_FIT_KEY) or {}
    if done.get("global_step") != trainer.global_step:
        done = {}
    figures = {name: value if math.isfinite(value) else None for name, value in figures.items()}
    write_json(path, {**metrics, **figures, POST_FIT_KEY: {**done, **step, "global_step": trainer.global_step}})


def stop_between_steps(trainer: pl.Trainer, kept: str, then: str) -> None:
    """A stop request that arrived after the last batch of a step stops before the next step (all ranks agree)."""
    local = interrupts.requested() is not None
    if trainer.world_size > 1:
        local = trainer.strategy.reduce_boolean_decision(local, all=False)
    if local:
        interrupts.stop(kept, then)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume) as configured; returns the final metrics.

    A run dir whose run already finished with the same settings and ``trainer.max_epochs`` is
    skipped and its metrics returned (after running any requested post-fit step it has not done);
    one with a ``last.ckpt`` of the same settings resumes from it. Re-running a killed or stopped
    sweep therefore skips finished jobs and resumes the others. Stop signals act at the next batch
    boundary of every phase (see ``augmix.interrupts``); in a sweep, also before the next job.
    """
    validate(cfg)
    check_evaluate_after_fit(cfg)
    if in_multirun():
        check_multirun(cfg)
    with interrupts.handling_stops(for_the_process=in_multirun()):
        if in_multirun():  # a signal that came after the last batch of the job before
            job = Path(cfg.paths.output_dir).name
            interrupts.stop_if_requested(f"stopped before sweep job {job} started; the jobs before it are kept", "continue the sweep")
        return _train(cfg)


def _train(cfg: DictConfig) -> dict[str, Any]:
    output_dir = Path(cfg.paths.output_dir)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    fingerprint = run_fingerprint(run_config)
    done = finished_metrics(output_dir, cfg.trainer.get("max_epochs"), fingerprint)
    steps = pending_post_fit(cfg, done or {})
    if done is not None and not steps:
        log.info(f"{output_dir} already holds a finished run; returning its metrics without training")
        return done
    if done is not None:
        log.info(f"{output_dir} holds a finished run; running what it has not done yet: {', '.join(steps)}")
    if is_global_rank_zero():  # before any save, so no writer of this run is live
        for folder in (output_dir, output_dir / "checkpoints"):
            remove_stale_temporaries(folder)
    ckpt_path = resume_checkpoint(cfg, output_dir)
    metadata = read_checkpoint_metadata(ckpt_path) if ckpt_path else {}
    if ckpt_path and not cfg.get("ckpt_path") and metadata["config"] and run_fingerprint(metadata["config"]) != fingerprint:
        raise ConfigError(_foreign_run(output_dir))
    if ckpt_path:
        log.info(f"resuming from {ckpt_path}")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule: AugMixDataModule = instantiate_node(
        cfg.data, augmix=cfg.augmix, seed=cfg.seed, val_corruptions=cfg.get("val_corruptions")
    )
    if is_global_rank_zero():
        datamodule.prepare_data()  # fail now, not after the model is built, if data is missing

    model: AugMixModule = instantiate_node(cfg.model, loss=instantiate_node(cfg.loss))
    model.run_config = run_config

    loggers = build_loggers(cfg.get("logger"), resume_id=metadata.get("wandb_run_id"))
    callbacks = build_callbacks(cfg.get("callbacks"), has_logger=bool(loggers))
    trainer: pl.Trainer = instantiate_node(
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
        trained = f"training is finished and saved in {output_dir / 'checkpoints'}"
        if "test" in steps:
            stop_between_steps(trainer, f"{trained}; the test run did not start", "run the test")
            trainer.test(model, datamodule=datamodule, ckpt_path="best")
            figures = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("test/")}
            metrics.update(figures)
            record_post_fit(trainer, output_dir, figures, {"test": True})
        if "evaluate_after_fit" in steps:
            if trainer.is_global_zero:  # the only rank that evaluates
                interrupts.stop_if_requested(f"{trained}; the robustness evaluation did not start", "run it")
            figures = evaluate_after_fit(cfg, trainer)  # robustness reports
            metrics.update(figures)
            record_post_fit(trainer, output_dir, figures, {"evaluate_after_fit": _plain(cfg.evaluate_after_fit)})
    finally:
        finish_wandb(loggers)
    return metrics


def run(cfg: DictConfig) -> float | None:
    """``train.py``'s task: train, then hand ``optimized_metric`` to the sweeper.

    In a multirun a diverged job is reported, marked in its ``metrics.json`` and scored NaN (Optuna
    records the trial as failed), so one unlucky point does not stop the whole sweep.
    """
    try:
        return objective(train(cfg), cfg.get("optimized_metric"))
    except DivergenceError as error:
        if not in_multirun():
            raise
        print(f"Error: {error}", file=sys.stderr, flush=True)
        path = Path(cfg.paths.output_dir) / METRICS_FILE
        write_json(path, {**read_metrics(path), "diverged": True, "finished": False})
        return float("nan")


def objective(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value a sweeper optimises, with a clear error when the run never produced it."""
    if not name:
        return None
    if name not in metrics or metrics[name] is None:
        available = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise ConfigError(f"optimized_metric={name} was not logged by this run; available: {available}")
    return float(metrics[name])
