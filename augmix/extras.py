"""Optional parts of the install, and the one line that says how to get one that is missing.

``pip install -e .`` installs what training and evaluation need. Two features pull in heavy or
conflict-prone stacks, so they are extras (``[dev]`` includes both):

- ``[optuna]``: ``hparams_search=augmix_optuna``. Hydra's Optuna sweeper needs optuna 2.x, whose
  SQLite storage breaks on SQLAlchemy 2 and the alembic releases that require it: pins that clash
  with many current environments.
- ``[tensorboard]``: ``logger=tensorboard``. TensorBoard brings gRPC and its own server (about
  50 MB); wandb (the default) and CSV log without it.

The SLURM launcher (hydra-submitit-launcher) stays in the base install: it is small, pure Python
(submitit, cloudpickle) and pins nothing, and the cluster recipes need it.

A run that asks for a missing extra stops before anything starts, with one line naming the
``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from augmix.errors import ConfigError


@dataclass(frozen=True)
class Extra:
    """An optional feature: what asks for it, and the modules it needs (each entry a tuple of
    alternatives, any one of which will do)."""

    feature: str
    needs: tuple[tuple[str, ...], ...]


EXTRAS = {
    "optuna": Extra("hparams_search=augmix_optuna (Hydra's Optuna sweeper)", (("optuna",), ("hydra_plugins.hydra_optuna_sweeper",))),
    "tensorboard": Extra("logger=tensorboard", (("tensorboard", "tensorboardX"),)),
}
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper"
TENSORBOARD_LOGGER = "pytorch_lightning.loggers.TensorBoardLogger"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed (empty when it is usable)."""
    return [" or ".join(options) for options in EXTRAS[extra].needs if not any(_installed(m) for m in options)]


def require(extra: str) -> None:
    """Raise the one-line ``ConfigError`` when ``extra`` is not installed."""
    absent = missing(extra)
    if absent:
        raise ConfigError(
            f"{EXTRAS[extra].feature} needs the optional '{extra}' packages ({', '.join(absent)} not installed): "
            f'pip install -e ".[{extra}]"'
        )


def check_sweep(hydra: Mapping[str, Any]) -> None:
    """The sweeper a multirun uses is installed (called before the first job starts)."""
    sweeper = hydra.get("sweeper") or {}
    if str(sweeper.get("_target_", "")).startswith(OPTUNA_SWEEPER):
        require("optuna")


def check_loggers(loggers: Mapping[str, Any] | None) -> None:
    """Every configured logger's packages are installed (called with the config checks)."""
    for node in (loggers or {}).values():
        if isinstance(node, Mapping) and node.get("_target_") == TENSORBOARD_LOGGER:
            require("tensorboard")


def register_stand_ins() -> None:
    """Without the Optuna sweeper, its config nodes are missing and ``hparams_search=augmix_optuna``
    would fail at composition with Hydra's "Could not load 'hydra/sweeper/optuna'". Stand-ins that
    name the plugin let the config compose, so ``check_sweep`` can say what to install."""
    if not missing("optuna"):
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    sweeper = {"defaults": [{"sampler": "tpe"}], "_target_": f"{OPTUNA_SWEEPER}.optuna_sweeper.OptunaSweeper"}
    store.store(group="hydra/sweeper", name="optuna", node=sweeper)
    store.store(group="hydra/sweeper/sampler", name="tpe", node={"_target_": "optuna.samplers.TPESampler"})
