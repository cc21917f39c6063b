"""What ``train.py`` does once Hydra has composed the config: validate, instantiate, fit."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
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
from augmix.callbacks.reliability import DivergenceError
from augmix.config import validate
from augmix.data import AugMixDataModule, TrainingViews
from augmix.environment import is_externally_launched, is_global_rank_zero
from augmix.errors import AugMixError, CheckpointError, ConfigError
from augmix.evaluation import check_evaluate_after_fit, evaluate_after_fit
from augmix.evaluation.checkpoints import load_file
from augmix.files import AtomicCheckpointIO, finite_or_none, remove_stale_temporaries, write_json
from augmix.fingerprint import (
    LENGTH_KEYS,
    describe_differences,
    differences,
    process_layout_hint,
    run_fingerprint,
    schedule_depends_on_length,
    scheduler_target,
)
from augmix.loggers import build_loggers, finish_wandb
from augmix.module import CONFIG_KEY, WANDB_RUN_ID_KEY, AugMixModule
from augmix.schedules import batch_plan

log = logging.getLogger(__name__)
POST_FIT_KEY = "post_fit"  # in metrics.json: the post-fit steps (test, evaluate_after_fit) that finished

# What libraries print during a run that a user of this project cannot act on, each with the reason
# it says nothing here. Everything else (real warnings included) is left alone.
QUIET_WARNINGS = (
    # mid-epoch resumption is exact here: the DataModule skips the batches already trained
    r".*resuming from a checkpoint that ended before the epoch ended",
    # Lightning 2.6's own use of torch's pytree API
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",
    # the epoch means of the loss terms and the training accuracy are logged whatever the interval
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    # the first checkpoint callback is the best-by-val/acc one by design (the second keeps last.ckpt)
    r"`\.test\(ckpt_path=\"best\"\)` is called with Trainer configured with multiple `ModelCheckpoint` callbacks",
)
QUIET_WHEN_RESUMING = r"Checkpoint directory .* exists and is not empty"  # it holds the checkpoint resumed from
QUIET_INFO = (
    "TPU available: False",  # no TPU is no news (Lightning says so when one is available but unused)
    "HPU available: False",
    "💡 Tip:",  # advertising
    "Loading `train_dataloader` to estimate number of stepping batches",
    "Trainer already configured with model summary callbacks",  # augmix.callbacks.ModelSummary, configured
)


class _QuietInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_INFO)


@contextlib.contextmanager
def quiet_library_noise(resuming: bool) -> Iterator[None]:
    """Leave out the lines in ``QUIET_WARNINGS`` and ``QUIET_INFO`` while the trainer is built and runs."""
    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # where rank_zero_info logs
    quiet = _QuietInfo()
    with warnings.catch_warnings():
        for message in (*QUIET_WARNINGS, *((QUIET_WHEN_RESUMING,) if resuming else ())):
            warnings.filterwarnings("ignore", message=message)
        lightning.addFilter(quiet)
        try:
            yield
        finally:
            lightning.removeFilter(quiet)


def build_callbacks(config: DictConfig | None, has_logger: bool) -> list[Callback]:
    callbacks = []
    for node in (config or {}).values():
        if isinstance(node, DictConfig) and "_target_" in node:
            callback = instantiate(node)
            if isinstance(callback, LearningRateMonitor) and not has_logger:
                continue  # it refuses to run without a logger
            callbacks.append(callback)
    return callbacks


def finished_metrics(output_dir: Path, run_config: dict[str, Any], fingerprint: str) -> dict[str, Any] | None:
    """The final metrics of a run that completed in ``output_dir`` with the same settings and
    budget; a ConfigError when the folder holds a run with other settings."""
    metrics = read_metrics(output_dir / METRICS_FILE)
    if metrics.get("fingerprint") not in (None, fingerprint):
        stored = _stored_config(output_dir / "checkpoints" / "last.ckpt")
        raise ConfigError(_foreign_run(output_dir, stored, run_config, metrics))
    if metrics.get("finished") and metrics.get("max_epochs") == run_config["trainer"].get("max_epochs"):
        return metrics
    return None


def _stored_config(path: Path) -> dict[str, Any] | None:
    """The run config stored in a train.py checkpoint, when there is a readable one."""
    try:
        return read_checkpoint_metadata(str(path))["config"] if path.is_file() else None
    except CheckpointError:
        return None


def _foreign_run(
    output_dir: Path, stored: dict[str, Any] | None, current: dict[str, Any], metrics: dict[str, Any] | None = None
) -> str:
    """Why ``output_dir`` is neither resumed nor skipped: the settings that differ, and what to do."""
    if stored is None and metrics and "max_epochs" in metrics:  # no checkpoint: is the length all that changed?
        trainer = {**current["trainer"], "max_epochs": metrics["max_epochs"]}
        if run_fingerprint({**current, "trainer": trainer}) == metrics.get("fingerprint"):
            stored = {**current, "trainer": trainer}
    found = differences(stored, current) if stored is not None else []
    lengths = [f"trainer.{key}" for key in LENGTH_KEYS]
    if found and all(item.split(" ")[0] in lengths for item in found) and schedule_depends_on_length(current):
        return (
            f"{output_dir} holds a run of another length ({describe_differences(found)}) whose learning-rate schedule "
            f"({scheduler_target(current)}) is laid out over the whole run: continuing it would keep the old "
            "schedule (ended, or ending early) and never equal a run of the new length. Train the new length "
            "from the start in a fresh hydra.run.dir, or keep the old length; only model/scheduler=constant "
            "runs can be extended in place"
        )
    what = f" ({describe_differences(found)})" if found else ""
    layout = process_layout_hint(found, stored) if stored is not None else ""
    return (
        f"{output_dir} holds a run with different settings{what}; resuming or skipping it would mix two runs{layout}. "
        f"{'Or u' if layout else 'U'}se a fresh output dir (hydra.run.dir=... or hydra.sweep.dir=...), or resume=false to "
        "start over elsewhere"
    )


def resume_checkpoint(cfg: DictConfig, output_dir: Path, finished: bool = False) -> str | None:
    """An explicit ``ckpt_path``, else (with ``resume=true``, or for post-fit steps on a
    ``finished`` run) the run dir's own ``last.ckpt``."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise CheckpointError(f"ckpt_path={cfg.ckpt_path} does not exist; give the path of a last.ckpt to resume")
        return str(path)
    last = output_dir / "checkpoints" / "last.ckpt"
    return str(last) if (cfg.get("resume", True) or finished) and last.is_file() else None


def read_checkpoint_metadata(path: str) -> dict[str, Any]:
    """A train.py checkpoint's stored config and wandb run id, memory-mapped rather than read whole,
    as plain data (torch.load with weights_only=True; nothing in it is instantiated)."""
    checkpoint = load_file(path, mmap=True)
    config = checkpoint.get(CONFIG_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(checkpoint, dict) or "pytorch-lightning_version" not in checkpoint or not isinstance(config, dict):
        kind = "a plain state_dict" if _holds_only_weights(checkpoint) else "no train.py run config in it"
        raise CheckpointError(
            f"{path} is not a train.py checkpoint ({kind}): ckpt_path= continues a train.py run from its last.ckpt. "
            f"To evaluate these weights run evaluate.py checkpoint={path} model.backbone=NAME; "
            "to train, start a new run without ckpt_path"
        )
    run_id = checkpoint.get(WANDB_RUN_ID_KEY)
    return {"config": config, "wandb_run_id": run_id if isinstance(run_id, str) else None}


def _holds_only_weights(raw: Any) -> bool:
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    return isinstance(state, dict) and bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def check_resumable(path: str, stored: dict[str, Any], current: dict[str, Any], output_dir: Path, explicit: bool) -> None:
    """Resume only the same run: an explicit ``ckpt_path`` of another model, class count or recipe is
    refused, naming what differs, before Lightning loads a single tensor."""
    if run_fingerprint(stored) == run_fingerprint(current):
        return
    if not explicit:
        raise ConfigError(_foreign_run(output_dir, stored, current))
    found = differences(stored, current)
    raise ConfigError(
        f"ckpt_path={path} was trained with other settings: {describe_differences(found)}; "
        f"ckpt_path= continues that same run{process_layout_hint(found, stored)}. Use the checkpoint's settings "
        "(its run dir's .hydra/config.yaml), or start a new run without ckpt_path"
    )


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


def build_datamodule(cfg: DictConfig, views: TrainingViews | None = None) -> AugMixDataModule:
    """The DataModule of a validated training config, fed by ``views`` (built from ``cfg.augmix``
    when not given)."""
    views = views or TrainingViews.from_settings(cfg.augmix, cfg.data.num_classes)
    return instantiate_node(cfg.data, training_views=views, seed=cfg.seed, val_corruptions=cfg.get("val_corruptions"))


def build_model(cfg: DictConfig, views: TrainingViews | None = None) -> AugMixModule:
    """The LightningModule of a validated training config: told what each batch holds by the same
    ``views`` as the DataModule, and the batch (and how the processes share it) its lr scaling needs."""
    views = views or TrainingViews.from_settings(cfg.augmix, cfg.data.num_classes)
    return instantiate_node(
        cfg.model, loss=instantiate_node(cfg.loss), num_views=views.num_views, jsd=views.jsd,
        batch_size=cfg.data.batch_size, batch_scope=cfg.data.get("batch_scope", "process"),
    )


def check_batch_plan(cfg: DictConfig, trainer: pl.Trainer) -> None:
    """The global batch must share evenly over the processes the trainer found (``devices: auto``
    included), before anything starts; the module logs the plan once training begins."""
    batch_plan(cfg.data.batch_size, cfg.data.get("batch_scope", "process"), trainer.world_size, trainer.accumulate_grad_batches)


def pending_post_fit(cfg: DictConfig, metrics: dict[str, Any]) -> list[str]:
    """The post-fit steps this command asks for that ``metrics`` (of a finished run) do not record as
    done on its final weights: a run stopped during its test or robustness evaluation, or re-run
    with one added."""
    done = metrics.get(POST_FIT_KEY) or {}
    if done.get("global_step") != metrics.get("global_step"):
        done = {}  # recorded for weights of an earlier stage of the run
    steps = []
    if cfg.get("test") and not done.get("test"):
        steps.append("test=true")
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
    figures = {name: finite_or_none(value) for name, value in figures.items()}
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
    skipped and its metrics returned, after running any requested post-fit step (``test``,
    ``evaluate_after_fit``) it has not recorded as done: those steps run on its checkpoints, without
    training. A run dir with a ``last.ckpt`` of the same settings resumes from it. Re-running a killed
    or stopped sweep therefore skips finished jobs and resumes the others. Checkpoints are read as
    data (weights_only) and only resumed when their stored settings match (``check_resumable``). Stop
    signals act at the next batch boundary of every phase (see ``augmix.interrupts``); in a sweep,
    also before the next job.
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
    done = finished_metrics(output_dir, run_config, fingerprint)
    steps = pending_post_fit(cfg, done or {})
    if done is not None and not steps:
        log.info(f"{output_dir} already holds a finished run; returning its metrics without training")
        return done
    if is_global_rank_zero():  # before any save, so no writer of this run is live
        for folder in (output_dir, output_dir / "checkpoints"):
            remove_stale_temporaries(folder)
    ckpt_path = resume_checkpoint(cfg, output_dir, finished=done is not None)
    if done is not None and ckpt_path is None:
        raise ConfigError(
            f"{output_dir} holds a finished run but not its checkpoints/last.ckpt, so {' and '.join(steps)} cannot "
            "run on it; train again in a fresh hydra.run.dir"
        )
    metadata = read_checkpoint_metadata(ckpt_path) if ckpt_path else {}
    if ckpt_path:
        check_resumable(ckpt_path, metadata["config"], run_config, output_dir, explicit=bool(cfg.get("ckpt_path")))
    if done is not None:
        log.info(f"{output_dir} already holds a finished run; running {' and '.join(steps)} on its checkpoints")
    elif ckpt_path:
        log.info(f"resuming from {ckpt_path}")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    views = TrainingViews.from_settings(cfg.augmix, cfg.data.num_classes)  # what both modules are told
    datamodule = build_datamodule(cfg, views)
    if is_global_rank_zero():
        datamodule.prepare_data()  # fail now, not after the model is built, if data is missing

    model = build_model(cfg, views)
    model.run_config = run_config

    loggers = build_loggers(cfg.get("logger"), resume_id=metadata.get("wandb_run_id"))
    try:
        with quiet_library_noise(resuming=ckpt_path is not None):
            return _fit(cfg, output_dir, steps, datamodule, model, loggers, ckpt_path)
    finally:
        finish_wandb(loggers)


def _fit(
    cfg: DictConfig, output_dir: Path, steps: list[str], datamodule: AugMixDataModule, model: AugMixModule,
    loggers: list, ckpt_path: str | None,
) -> dict[str, Any]:
    """Fit (or resume), then run the post-fit ``steps``; returns the final metrics."""
    callbacks = build_callbacks(cfg.get("callbacks"), has_logger=bool(loggers))
    trainer: pl.Trainer = instantiate_node(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    check_batch_plan(cfg, trainer)
    for logger in loggers:
        logger.log_hyperparams(model.run_config)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    # metrics.json carries figures from before a resume; this process's own metrics override them
    metrics = {**read_metrics(output_dir / METRICS_FILE), **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    trained = f"training is finished and saved in {output_dir / 'checkpoints'}"
    if "test=true" in steps:
        stop_between_steps(trainer, f"{trained}; the test run did not start", "run the test")
        trainer.test(model, datamodule=datamodule, ckpt_path="best", weights_only=True)
        figures = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("test/")}
        metrics.update(figures)
        record_post_fit(trainer, output_dir, figures, {"test": True})
    if "evaluate_after_fit" in steps:
        if trainer.is_global_zero:  # the only rank that evaluates
            interrupts.stop_if_requested(f"{trained}; the robustness evaluation did not start", "run it")
        figures = evaluate_after_fit(cfg, trainer)  # robustness reports
        metrics.update(figures)
        record_post_fit(trainer, output_dir, figures, {"evaluate_after_fit": _plain(cfg.evaluate_after_fit)})
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
