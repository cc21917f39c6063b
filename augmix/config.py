"""Structured-config schemas and start-up validation.

The schemas are registered in Hydra's ConfigStore, so a mistyped key or a value of the wrong type
in the ``augmix`` group fails at composition. ``validate`` then checks ranges and names across the
whole config and raises a one-line ``ConfigError`` naming the key, before any data is touched.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from augmix.errors import ConfigError
from augmix.ops import ALL_OPS

DATASETS = ("cifar10", "cifar100", "imagenet", "tinyimagenet", "imagefolder", "digits")
PLACEMENTS = ("auto", "workers", "device")
EXECUTORS = ("auto", "grouped", "fused")


@dataclass
class AugMixConfig:
    """The ``augmix`` group. Defaults are the paper's CIFAR settings."""

    enabled: bool = True  # false: clean images only (the baseline)
    jsd: bool = True  # (clean, aug1, aug2) + JSD loss; false: one AugMix view with plain CE
    severity: int = 3
    width: int = 3
    depth: int = -1
    alpha: float = 1.0
    all_ops: bool = False
    ops: Optional[list[str]] = None
    fill: Any = 0
    placement: str = "auto"  # auto: device when the trainer has an accelerator, else workers
    executor: str = "auto"


def register_schemas() -> None:
    ConfigStore.instance().store(group="augmix", name="schema", node=AugMixConfig)


register_schemas()


def _fail(key: str, value: Any, expected: str) -> None:
    raise ConfigError(f"{key}={_show(value)} is invalid: {expected}")


def _show(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        return str(OmegaConf.to_container(value))
    return repr(value) if isinstance(value, str) else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_augmix(augmix: DictConfig | dict, prefix: str = "augmix") -> None:
    get = augmix.get
    if not _is_int(get("severity")) or not 1 <= get("severity") <= 10:
        _fail(f"{prefix}.severity", get("severity"), "must be an integer in 1..10 (paper: 3 on CIFAR, 1 on ImageNet)")
    if not _is_int(get("width")) or get("width") < 1:
        _fail(f"{prefix}.width", get("width"), "must be an integer >= 1 (paper: 3)")
    if not _is_int(get("depth")) or get("depth") not in (-1, 1, 2, 3):
        _fail(f"{prefix}.depth", get("depth"), "must be -1 (random 1-3 per chain) or 1, 2 or 3")
    if not _is_number(get("alpha")) or get("alpha") <= 0:
        _fail(f"{prefix}.alpha", get("alpha"), "must be a number > 0 (paper: 1)")
    ops = get("ops")
    if ops is not None:
        unknown = [op for op in ops if op not in ALL_OPS]
        if unknown or len(ops) == 0:
            _fail(f"{prefix}.ops", ops, f"must be a non-empty list drawn from {list(ALL_OPS)}")
    fill = get("fill", 0)
    values = list(fill) if isinstance(fill, (list, tuple, ListConfig)) else [fill]
    if len(values) not in (1, 3) or not all(_is_number(v) and 0 <= v <= 255 for v in values):
        _fail(f"{prefix}.fill", fill, "must be a number in 0..255 or a list of 3 (one per channel)")
    if get("placement") not in PLACEMENTS:
        _fail(f"{prefix}.placement", get("placement"), f"must be one of {list(PLACEMENTS)}")
    if get("executor") not in EXECUTORS:
        _fail(f"{prefix}.executor", get("executor"), f"must be one of {list(EXECUTORS)}")


def validate_data(data: DictConfig) -> None:
    if data.get("name") not in DATASETS:
        _fail("data.name", data.get("name"), f"must be one of {list(DATASETS)}")
    for key in ("batch_size", "eval_batch_size"):
        if not _is_int(data.get(key)) or data.get(key) < 1:
            _fail(f"data.{key}", data.get(key), "must be an integer >= 1")
    if not _is_int(data.get("num_workers")) or data.get("num_workers") < 0:
        _fail("data.num_workers", data.get("num_workers"), "must be an integer >= 0")
    fraction = data.get("val_fraction", 0.0)
    if not _is_number(fraction) or not 0.0 <= fraction < 1.0:
        _fail("data.val_fraction", fraction, "must be in [0, 1): the share of the training set held out for validation")
    if not _is_int(data.get("num_classes")) or data.get("num_classes") < 2:
        _fail("data.num_classes", data.get("num_classes"), "must be an integer >= 2")


def validate_model(model: DictConfig) -> None:
    import timm

    import augmix.models  # noqa: F401  (registers the CIFAR architectures)

    backbone = model.get("backbone")
    if not isinstance(backbone, str) or not timm.is_model(backbone):
        close = difflib.get_close_matches(str(backbone), timm.list_models(), n=3)
        hint = f"; did you mean {close}?" if close else "; see timm.list_models() or the cifar_* models"
        _fail("model.backbone", backbone, f"is not a registered timm model{hint}")
    lr = model.get("optimizer", {}).get("lr")
    if not _is_number(lr) or lr <= 0:
        _fail("model.optimizer.lr", lr, "must be a number > 0")


def validate_loss(loss: DictConfig) -> None:
    if not _is_number(loss.get("weight")) or loss.get("weight") < 0:
        _fail("loss.weight", loss.get("weight"), "must be a number >= 0 (the JSD weight lambda; paper: 12)")
    smoothing = loss.get("label_smoothing", 0.0)
    if not _is_number(smoothing) or not 0.0 <= smoothing < 1.0:
        _fail("loss.label_smoothing", smoothing, "must be in [0, 1) (paper: 0)")


def validate_trainer(trainer: DictConfig) -> None:
    epochs = trainer.get("max_epochs")
    if epochs is not None and (not _is_int(epochs) or epochs < 1):
        _fail("trainer.max_epochs", epochs, "must be an integer >= 1")


def validate(cfg: DictConfig) -> None:
    """Check a composed training config; raises ConfigError with a one-line message."""
    if not _is_int(cfg.get("seed")) or cfg.get("seed") < 0:
        _fail("seed", cfg.get("seed"), "must be a non-negative integer")
    validate_augmix(cfg.augmix)
    validate_data(cfg.data)
    validate_model(cfg.model)
    validate_loss(cfg.loss)
    validate_trainer(cfg.trainer)
