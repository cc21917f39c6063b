"""What ``evaluate.py`` and ``train.py``'s ``evaluate_after_fit`` ask for, resolved into the
arguments of ``run_evaluation``: which checkpoint, backbone, data config and devices."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from augmix import interrupts
from augmix.allowlist import CHECKPOINT, USER_CONFIG, check_backbone, check_data
from augmix.config import validate_evaluate
from augmix.errors import CheckpointError, ConfigError
from augmix.evaluation.checkpoints import Checkpoint, read_checkpoint
from augmix.evaluation.pipeline import (
    check_benchmark_against_data,
    plain,
    run_evaluation,
)
from augmix.evaluation.settings import benchmark_spec
from augmix.evaluation.tracking import log_summary


def command_line_data_overrides() -> tuple[list[str], bool]:
    """Keys under ``data.`` set on the command line, and whether a ``data=NAME`` choice was made."""
    if not HydraConfig.initialized():
        return [], False
    parsed = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    keys = [o.key_or_group[len("data.") :] for o in parsed if o.key_or_group.startswith("data.") and not o.is_delete()]
    return keys, any(o.key_or_group == "data" for o in parsed)


def data_config(cfg: DictConfig, checkpoint: Checkpoint, keys: Sequence[str], group_chosen: bool) -> dict[str, Any]:
    """A Lightning checkpoint's own data config (plain data, checked against the allowlist) with the
    command line's ``data.KEY=VALUE`` applied; the composed one for plain state_dicts.

    The checkpoint never chooses where files are written: its ``download`` is ignored (false) unless
    the command line sets ``data.download``."""
    if checkpoint.config is None:
        return check_data(plain(cfg.data), USER_CONFIG)
    if group_chosen:
        raise ConfigError(
            "this Lightning checkpoint brings its own data config (normalisation, classes, eval transform); "
            "drop data=NAME and change single keys instead, e.g. data.root=DIR"
        )
    stored = checkpoint.config.get("data")
    if not isinstance(stored, Mapping):
        raise CheckpointError(f"checkpoint config key data holds {type(stored).__name__}: it must be a mapping (the run's data config)")
    data = copy.deepcopy(dict(stored))
    data["download"] = False
    for key in keys:
        _set_dotted(data, key, plain(OmegaConf.select(cfg.data, key)))
    return check_data(data, CHECKPOINT)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[a][b] = value`` for ``key`` "a.b", creating (or replacing non-mapping) levels on the way."""
    *parents, last = key.split(".")
    for name in parents:
        if not isinstance(data.get(name), dict):
            data[name] = {}
        data = data[name]
    data[last] = value


def model_choice(cfg: DictConfig, checkpoint: Checkpoint) -> tuple[str, dict, int | None]:
    """(backbone, backbone_kwargs, trained class count) from the checkpoint's config or ``model.*``,
    checked: a registered architecture and plain keyword arguments."""
    requested = cfg.model.get("backbone")
    if checkpoint.config is not None:
        trained = checkpoint.config.get("model")
        if not isinstance(trained, Mapping):
            raise CheckpointError(
                f"checkpoint config key model holds {type(trained).__name__}: it must be a mapping (the run's model config)"
            )
        backbone, kwargs = check_backbone(
            trained.get("backbone"), trained.get("backbone_kwargs"), CHECKPOINT, trained.get("num_classes")
        )
        if requested and requested != backbone:
            raise ConfigError(
                f"model.backbone={requested!r} but this Lightning checkpoint was trained as {backbone!r}; "
                "drop model.backbone"
            )
        return backbone, kwargs, trained.get("num_classes")
    if not requested:
        raise ConfigError(
            f"{checkpoint.path} is a plain state_dict without a training config; name its architecture with "
            "model.backbone=NAME (a timm model, e.g. resnet50 for the official AugMix ImageNet release, "
            "or torchvision:NAME)"
        )
    backbone, kwargs = check_backbone(requested, cfg.model.get("backbone_kwargs"), USER_CONFIG)
    return backbone, kwargs, None


def fabric_settings(trainer: Mapping[str, Any] | None) -> dict[str, Any]:
    """Lightning Fabric arguments from a ``trainer`` config node (devices=N shards every set)."""
    trainer = trainer or {}
    return {
        "accelerator": trainer.get("accelerator", "auto"),
        "devices": trainer.get("devices", 1),
        "num_nodes": trainer.get("num_nodes", 1),
        "strategy": trainer.get("strategy", "auto"),
        "precision": trainer.get("precision", "32-true"),
    }


def evaluate(cfg: DictConfig, data_overrides: tuple[list[str], bool] | None = None) -> dict:
    """``evaluate.py``: ``cfg`` is configs/evaluate.yaml as composed by Hydra. A stop signal keeps
    the finished sets and stops at the next batch (see ``run_sets``)."""
    with interrupts.handling_stops():
        return _evaluate(cfg, data_overrides)


def _evaluate(cfg: DictConfig, data_overrides: tuple[list[str], bool] | None) -> dict:
    validate_evaluate(cfg)
    if OmegaConf.is_missing(cfg, "checkpoint") or not cfg.get("checkpoint"):
        raise ConfigError(
            "checkpoint=PATH is required: a train.py .ckpt, or a state_dict/.pth.tar with model.backbone=NAME"
        )
    spec = benchmark_spec(cfg.benchmark)
    checkpoint = read_checkpoint(cfg.checkpoint)
    if cfg.get("ignore_checkpoint_config"):
        checkpoint = dataclasses.replace(checkpoint, config=None)  # weights only, like a plain state_dict
    keys, group_chosen = data_overrides if data_overrides is not None else command_line_data_overrides()
    data = data_config(cfg, checkpoint, keys, group_chosen)
    backbone, kwargs, trained_classes = model_choice(cfg, checkpoint)
    return run_evaluation(
        checkpoint,
        spec,
        data,
        backbone,
        kwargs,
        trained_classes,
        fabric_settings(cfg.get("trainer")),
        cfg.paths.output_dir,
        logger_config=cfg.get("logger"),
        origin=CHECKPOINT if checkpoint.config is not None else USER_CONFIG,
    )


def check_evaluate_after_fit(cfg: DictConfig) -> None:
    """Fail before training, not after it, when ``evaluate_after_fit`` is misconfigured."""
    node = cfg.get("evaluate_after_fit")
    if node:
        check_data(plain(cfg.data), USER_CONFIG)  # evaluation builds its data from the allowlist alone
        check_benchmark_against_data(benchmark_spec(node, prefix="evaluate_after_fit."), plain(cfg.data))


def evaluate_after_fit(cfg: DictConfig, trainer: Any) -> dict[str, float]:
    """After ``trainer.fit``: evaluate the best checkpoint on ``cfg.evaluate_after_fit`` (a benchmark
    node) on one device of the training accelerator, in rank zero only, writing the reports into
    the run dir and logging them to the training loggers. Returns the headline figures as metrics."""
    if not cfg.get("evaluate_after_fit") or not trainer.is_global_zero:
        return {}
    callback = trainer.checkpoint_callback
    path = callback.best_model_path or callback.last_model_path if callback is not None else None
    if not path:
        raise CheckpointError("evaluate_after_fit needs a saved checkpoint; keep callbacks.model_checkpoint enabled")
    spec = benchmark_spec(cfg.evaluate_after_fit, prefix="evaluate_after_fit.")
    summary = run_evaluation(
        read_checkpoint(path),
        spec,
        cfg.data,
        cfg.model.backbone,
        plain(cfg.model.get("backbone_kwargs")) or {},
        cfg.model.get("num_classes"),
        {"accelerator": cfg.trainer.get("accelerator", "auto"), "devices": 1, "num_nodes": 1, "precision": "32-true"},
        cfg.paths.output_dir,
        replace_stale=True,
    )
    log_summary(list(trainer.loggers), summary, Path(cfg.paths.output_dir) / "robustness.png")
    figures = {"clean_error": summary["clean_error"], "mean_corruption_error": summary["mean_corruption_error"]}
    return {f"robustness/{name}": value for name, value in figures.items() if value is not None}
