"""``compare.py``: the robustness reports of several runs side by side (comparison.md/.csv/.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from augmix.comparison.grouping import Group, check_comparable, group_runs
from augmix.comparison.reading import REPORT, read_runs
from augmix.comparison.reports import write_comparison
from augmix.errors import ConfigError

__all__ = ["compare", "compare_command", "default_output"]


def default_output(runs: list[str]) -> Path | None:
    """Where results go without ``out=``: a single multirun folder given holds them; else None
    (the command's own run dir)."""
    if len(runs) == 1:
        path = Path(runs[0])
        if path.is_dir() and not (path / REPORT).is_file() and not (path / ".hydra").is_dir():
            return path
    return None


def compare(runs: list[str | Path], out: str | Path) -> tuple[list[Group], dict[str, Path]]:
    """Read, check and group the runs' reports, then write the comparison into ``out``."""
    read = read_runs(runs)
    check_comparable(read)
    groups = group_runs(read)
    return groups, write_comparison(groups, Path(out))


def compare_command(cfg: DictConfig) -> dict[str, Path]:
    """``compare.py``: configs/compare.yaml as composed by Hydra."""
    if OmegaConf.is_missing(cfg, "runs") or cfg.runs is None:
        raise ConfigError("runs=[DIR,...] is required: run folders with a robustness.json, or one multirun folder")
    runs: Any = OmegaConf.to_container(cfg.runs) if OmegaConf.is_list(cfg.runs) else [cfg.runs]
    if not runs or not all(isinstance(run, str) and run for run in runs):
        raise ConfigError(f"runs={runs} is invalid: must be a list of folders, e.g. runs=[outputs/a,outputs/b]")
    out = Path(cfg.out) if cfg.get("out") else default_output(runs) or Path(cfg.paths.output_dir)
    _, paths = compare(runs, out)
    print(paths["md"].read_text())
    print(f"Wrote {paths['md']}, {paths['csv'].name} and {paths['png'].name}")
    return paths
