"""Experiment loggers from config, with wandb made safe for unattended and offline runs."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import Logger, WandbLogger

WANDB_TARGET = "pytorch_lightning.loggers.WandbLogger"


def wandb_has_credentials() -> bool:
    """True when wandb could log in without asking: an API key in the environment or ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def prepare_wandb(config: DictConfig) -> None:
    """Force offline mode unless wandb can log in, so a run never stops at a login prompt.

    ``WANDB_MODE`` set by the user (offline, disabled, online) always wins.
    """
    mode = os.environ.get("WANDB_MODE")
    offline = mode in ("offline", "dryrun", "disabled") or (mode != "online" and not wandb_has_credentials())
    with open_dict(config):
        config.offline = bool(config.get("offline")) or offline
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(config.save_dir).mkdir(parents=True, exist_ok=True)
    if config.offline and mode != "disabled":
        print(
            f"wandb: no API key found (or offline requested); logging offline to {config.save_dir}/wandb. "
            f"Upload later with: wandb sync {config.save_dir}/wandb/offline-run-*"
        )


def build_loggers(config: DictConfig | None, resume_id: str | None = None) -> list[Logger]:
    """Instantiate every logger under ``config`` (a mapping name -> logger config).

    ``resume_id`` (from the checkpoint a run resumes) re-attaches wandb to the same run.
    """
    loggers: list[Logger] = []
    for node in (config or {}).values():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        if node._target_ == WANDB_TARGET:
            prepare_wandb(node)
            if resume_id:
                with open_dict(node):
                    node.id, node.resume = resume_id, "allow"
        loggers.append(instantiate(node))
    return loggers


def finish_wandb(loggers: list[Logger]) -> None:
    """Close this run's wandb run, so the next job of a sweep (same process) starts its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()
