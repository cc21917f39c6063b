"""Hydra callbacks for multirun sweeps: validate every job before any runs, summarise after each.

Registered in ``configs/hydra/default.yaml``; they run in the process that launches the sweep
(``on_multirun_*``) and in each job (``on_job_end``).
"""

from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from augmix import extras
from augmix.cli import EXIT_USER_ERROR
from augmix.errors import ConfigError
from augmix.sweep_summary import write_summary

log = logging.getLogger(__name__)


def grid_jobs(overrides: list[str]) -> list[list[str]]:
    """Expand command-line sweep overrides (``a=1,2 b=x,y``) into the override list of every job,
    in the order Hydra's basic sweeper runs them (a key given twice keeps its last value)."""
    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ConfigError(
                f"{override.input_line} is not a list of values: a grid sweep runs lists (a=1,2 or range(1,4)); "
                "intervals need a search sweeper (hparams_search=augmix_optuna)"
            )
    return [list(job) for job in itertools.product(*choices.values())]


class SweepSummary(Callback):
    """Checks every grid job's config up front, and keeps ``sweep_summary.csv``/``.md`` current.

    Validation runs in the launching process before the first job starts, so a bad value in the
    fifth job of a SLURM array fails immediately, naming the key, instead of hours later.
    """

    def __init__(self, config_name: str = "train") -> None:
        self.config_name = config_name

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra import compose

        from augmix.config import validate
        from augmix.training import check_multirun

        task_overrides = list(config.hydra.overrides.task)
        try:
            extras.check_sweep(config.hydra)  # a sweeper or launcher whose optional packages are missing
            if str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
                jobs = grid_jobs(task_overrides)
            else:  # Optuna and friends sample their own values; check the fixed part of the config
                jobs = [task_overrides]
        except ConfigError as error:
            stop(str(error))
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)  # e.g. for Optuna's SQLite study
        local = str(config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher")
        for number, job in enumerate(jobs):
            try:
                job_config = compose(config_name=self.config_name, overrides=job)
                validate(job_config)
                if local:
                    check_multirun(job_config)
            except ConfigError as error:
                stop(f"sweep job {number} ({' '.join(job)}): {error}")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode is not None and str(config.hydra.mode).endswith("MULTIRUN"):
            write_summary(Path(config.hydra.sweep.dir), objective(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = write_summary(Path(config.hydra.sweep.dir), objective(config))
        log.info(f"sweep summary: {path}")


def objective(config: DictConfig) -> str | None:
    """The metric a search sweeper (Optuna) optimises; None for grid sweeps, whose jobs return it unused."""
    if str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    return config.get("optimized_metric")


def stop(message: str) -> NoReturn:
    """Print the one-line error and exit: Hydra only warns about exceptions raised in callbacks."""
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)
