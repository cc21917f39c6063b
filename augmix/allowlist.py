"""What a config from elsewhere may name: the project's own data classes and registered backbones.

A train.py checkpoint stores its run config (``augmix_config``) as plain data; evaluation reads
the data and model choices from it. That config came with the file, so nothing in it is ever
passed to ``hydra.utils.instantiate`` or imported by name: every ``_target_`` is looked up in the
tables below, every argument is checked against the class's own parameters and a rule for its
type and range, and anything else stops with one line that names the key. Evaluation builds its
data (checkpoint or not) only through here.

Each table row is a schema: ``{parameter: Rule}``, with the rules of ``augmix.rules``; the data
module's row is the very table train.py checks its ``data`` node with (``augmix.config.DATA``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from augmix.config import DATA
from augmix.data import AugMixDataModule, CenterCropOrPad, RandomCropFlip, RandomResizedCropFlip, ResizeCenterCrop
from augmix.errors import ConfigError
from augmix.rules import (
    BOOLEAN,
    CLASS_COUNT,
    CROP_RATIO,
    CROP_SCALE,
    MAX_SIDE,
    PLAIN,
    SIDE,
    Rule,
    Rules,
    check,
    int_in,
    show,
)

TORCHVISION_PREFIX = "torchvision:"
# Names a registered architecture may have (timm allows a ".pretrained_tag"); no "hf-hub:" or
# "local-dir:" sources, which would fetch or read files named by the config.
BACKBONE_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?")
# backbone_kwargs that would load weights or configs from files or the network.
RESERVED_BACKBONE_KWARGS = (
    "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir",
    "weights", "weights_backbone", "progress", "num_classes",
)


@dataclass(frozen=True)
class Origin:
    """Where a config came from: how its keys are named in messages, and how to get past a refusal."""

    prefix: str
    remedy: str


USER_CONFIG = Origin("", "evaluation builds its data only from these classes")
CHECKPOINT = Origin(
    "checkpoint config key ",
    "nothing named in a checkpoint is imported. To use only its weights, add ignore_checkpoint_config=true "
    "with model.backbone=NAME (and data=NAME for the clean set)",
)


TRANSFORMS: dict[type, dict[str, Rule]] = {
    RandomCropFlip: {"size": SIDE, "padding": int_in(0, MAX_SIDE), "hflip": BOOLEAN},
    RandomResizedCropFlip: {"size": SIDE, "scale": CROP_SCALE, "ratio": CROP_RATIO, "hflip": BOOLEAN},
    ResizeCenterCrop: {"resize": SIDE, "crop": SIDE},
    CenterCropOrPad: {"size": SIDE},
}
TRANSFORM_KEYS = ("train_transform", "eval_transform")
DATAMODULES: dict[type, dict[str, Rules]] = {AugMixDataModule: DATA}
# Set by train.py from other config groups, never by a data node.
NOT_DATA_KEYS = ("training_views", "val_corruptions")


def targets(cls: type) -> tuple[str, ...]:
    """The ``_target_`` strings that name ``cls``: the public ``augmix.data.X`` and its module path."""
    return (f"augmix.data.{cls.__name__}", f"{cls.__module__}.{cls.__qualname__}")


def _lookup(table: Mapping[type, Any], node: Any, key: str, origin: Origin) -> type:
    allowed = [name for cls in table for name in targets(cls)[:1]]
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(
            f"{origin.prefix}{key}={show(node)} is invalid: must be a mapping whose _target_ is one of {allowed}"
        )
    target = node["_target_"]
    for cls in table:
        if target in targets(cls):
            return cls
    raise ConfigError(
        f"{origin.prefix}{key}._target_ names a callable that is not allowed: {show(target)}; "
        f"allowed: {', '.join(allowed)}; {origin.remedy}"
    )


def _plain(node: Any) -> Any:
    """A composed (trusted) config node as plain containers; plain data passes through untouched."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return dict(node) if isinstance(node, Mapping) else node


def _arguments(cls: type, rules: Mapping[str, Rules], node: Mapping, key: str, origin: Origin, skip=()) -> dict:
    """``node``'s arguments for ``cls`` (``_target_`` and ``skip`` left out), each checked."""
    parameters = inspect.signature(cls).parameters
    arguments = {}
    for name, value in node.items():
        if name == "_target_" or name in skip:
            continue
        if name not in parameters or name in NOT_DATA_KEYS:
            known = [p for p in parameters if p not in NOT_DATA_KEYS]
            raise ConfigError(f"{origin.prefix}{key}.{name} is not a setting of {cls.__name__}; known: {known}")
        try:
            check(f"{key}.{name}", value, rules.get(name, PLAIN))  # a parameter without its own rule: plain values only
        except ConfigError as error:
            raise ConfigError(f"{origin.prefix}{error}") from None
        arguments[name] = list(value) if isinstance(value, tuple) else value
    required = [
        name for name, p in parameters.items()
        if p.default is inspect.Parameter.empty and name not in arguments and name not in skip
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if required:
        raise ConfigError(f"{origin.prefix}{key} is missing {required} for {cls.__name__}")
    return arguments


def build_transform(node: Any, key: str, origin: Origin = USER_CONFIG) -> Any:
    """One of ``TRANSFORMS`` from its config node, arguments checked."""
    node = _plain(node)
    cls = _lookup(TRANSFORMS, node, key, origin)
    return cls(**_arguments(cls, TRANSFORMS[cls], node, key, origin))


def check_data(data: Any, origin: Origin = USER_CONFIG, key: str = "data") -> dict[str, Any]:
    """The data node as a checked plain dict: an allowlisted DataModule and transforms, valid values."""
    data = _plain(data)
    cls = _lookup(DATAMODULES, data, key, origin)
    arguments = _arguments(cls, DATAMODULES[cls], data, key, origin, skip=TRANSFORM_KEYS)
    for name in TRANSFORM_KEYS:
        if name not in data:
            raise ConfigError(f"{origin.prefix}{key} is missing {name}")
        build_transform(data[name], f"{key}.{name}", origin)
    return {**data, **arguments}


def build_datamodule(data: Any, origin: Origin = USER_CONFIG) -> AugMixDataModule:
    """The evaluation DataModule of a data node, built from the allowlist alone (no AugMix)."""
    checked = check_data(data, origin)
    cls = _lookup(DATAMODULES, checked, "data", origin)
    arguments = {k: v for k, v in checked.items() if k != "_target_" and k not in TRANSFORM_KEYS}
    transforms = {name: build_transform(checked[name], f"data.{name}", origin) for name in TRANSFORM_KEYS}
    return cls(**arguments, **transforms)


MODEL_KEYS = ("model.backbone", "model.backbone_kwargs", "model.num_classes")


def check_backbone(
    backbone: Any, backbone_kwargs: Any, origin: Origin = USER_CONFIG, num_classes: Any = None, keys: tuple[str, str, str] = MODEL_KEYS
) -> tuple[str, dict[str, Any]]:
    """A registered timm architecture or ``torchvision:NAME``, with plain keyword arguments that
    cannot point the model factory at files or downloads. ``keys`` name the three values in
    messages (a timm ``config.json`` calls them architecture, model_args, num_classes)."""
    import timm
    import torchvision

    import augmix.models  # noqa: F401  (registers the CIFAR architectures in timm)

    backbone_key, kwargs_key, classes_key = (origin.prefix + key for key in keys)
    name = backbone[len(TORCHVISION_PREFIX) :] if isinstance(backbone, str) and backbone.startswith(TORCHVISION_PREFIX) else backbone
    if not isinstance(name, str) or not BACKBONE_NAME.fullmatch(name):
        raise ConfigError(
            f"{backbone_key}={show(backbone)} is invalid: must be a registered timm model name or torchvision:NAME"
        )
    known = name in torchvision.models.list_models() if name != backbone else timm.is_model(name)
    if not known:
        raise ConfigError(
            f"{backbone_key}={show(backbone)} is not a registered model: use a timm name (timm.list_models()) "
            "or torchvision:NAME (torchvision.models.list_models())"
        )
    kwargs = {} if backbone_kwargs is None else _plain(backbone_kwargs)
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{kwargs_key}={show(kwargs)} is invalid: must be a mapping")
    for key, value in kwargs.items():
        if not isinstance(key, str) or key in RESERVED_BACKBONE_KWARGS:
            raise ConfigError(
                f"{kwargs_key}.{key} is not allowed: {list(RESERVED_BACKBONE_KWARGS)} would load "
                "weights or settings from files or the network"
            )
        nested = isinstance(value, Mapping) and all(isinstance(k, str) and PLAIN.accepts(v) for k, v in value.items())
        if not (PLAIN.accepts(value) or nested):
            raise ConfigError(
                f"{kwargs_key}.{key}={show(value)} is invalid: must be a number, string, boolean, null, "
                "or a list or mapping of them"
            )
    if num_classes is not None and not CLASS_COUNT.accepts(num_classes):
        raise ConfigError(f"{classes_key}={show(num_classes)} is invalid: {CLASS_COUNT.expected}")
    return backbone, dict(kwargs)
