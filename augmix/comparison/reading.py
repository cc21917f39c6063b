"""Run folders to compare, and what each holds: its robustness report and its training settings.

Everything is read as data: ``robustness.json`` as strict JSON (no NaN or Infinity) checked key by
key, ``.hydra/config.yaml`` with ``yaml.safe_load``. A missing or damaged file is one line that
names it and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from augmix.errors import ConfigError, RunDirError
from augmix.files import read_json_object
from augmix.rules import is_int, is_number

REPORT = "robustness.json"
HYDRA_CONFIG = Path(".hydra") / "config.yaml"


@dataclass
class Run:
    """One evaluated run: its folder, its report, and its training settings when they are known."""

    path: Path
    report: dict[str, Any]
    settings: dict[str, Any] | None

    @property
    def seed(self) -> int | None:
        seed = (self.settings or {}).get("seed")
        return seed if is_int(seed) else None


def run_folders(paths: list[str | Path]) -> list[Path]:
    """Each given run folder (or its ``robustness.json``), and the job folders of each given
    multirun folder in job order."""
    folders: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_file() and path.name == REPORT:
            folders.append(path.parent)
        elif (path / REPORT).is_file() or (path / ".hydra").is_dir():
            folders.append(path)  # a run folder; read_report names a missing report
        elif path.is_dir():
            jobs = sorted((p for p in path.iterdir() if (p / ".hydra").is_dir()), key=lambda p: (len(p.name), p.name))
            if not jobs:
                raise RunDirError(
                    f"{path} holds no {REPORT} and no run folders; give run folders evaluated by evaluate.py or by "
                    "train.py with evaluate_after_fit, or a multirun folder of them"
                )
            missing = [job for job in jobs if not (job / REPORT).is_file()]
            if missing:
                raise RunDirError(
                    f"{missing[0]} has no {REPORT} ({len(missing)} of the {len(jobs)} jobs of {path} have none): its "
                    "evaluation did not run or finish. Run the sweep again (finished jobs are skipped), or list the "
                    "evaluated runs with runs=[...]"
                )
            folders += jobs
        else:
            raise RunDirError(f"{path} does not exist; runs=[...] takes run folders, or a multirun folder")
    if not folders:
        raise ConfigError("runs=[] is empty: give at least one run folder, e.g. runs=[outputs/a,outputs/b]")
    return folders


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _optional_number(value: Any) -> bool:
    return value is None or is_number(value)


# What every report must hold to be compared (robustness.json as augmix.evaluation writes it).
REPORT_KEYS = {
    "benchmark": (_text, "a string"),
    "format": (_text, "a string"),
    "protocol": (_text, "a string"),
    "data": (_text, "a string"),
    "backbone": (_text, "a string"),
    "regenerated": (lambda v: isinstance(v, bool), "true or false"),
    "complete": (lambda v: isinstance(v, bool), "true or false"),
    "limit_per_set": (lambda v: v is None or is_int(v), "an integer or null"),
    "corruptions": (lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v), "a list of names"),
    "severities": (lambda v: isinstance(v, list) and v and all(is_int(s) for s in v), "a list of integers"),
    "clean_error": (is_number, "a number"),
    "mean_corruption_error": (_optional_number, "a number or null"),
    "mCE": (_optional_number, "a number or null"),
    "relative_mCE": (_optional_number, "a number or null"),
    "mean_errors": (lambda v: isinstance(v, dict) and all(_optional_number(x) for x in v.values()), "a mapping of numbers"),
    "regeneration": (lambda v: v is None or isinstance(v, dict), "a mapping or null"),
}


REDO = "evaluate the run again (evaluate.py checkpoint=... hydra.run.dir=RUN) to rewrite it"


def read_report(folder: Path, redo: str = REDO) -> dict[str, Any]:
    """``folder/robustness.json``, parsed strictly and checked; a failure is one line ending in ``redo``."""
    path = folder / REPORT
    if not path.is_file():
        raise RunDirError(f"{path} does not exist: {folder} was not evaluated; {redo}")
    try:
        report = read_json_object(path, "a report")
    except ValueError as error:
        raise RunDirError(f"{path} is damaged ({error}); {redo}") from None
    for key, (accepts, expected) in REPORT_KEYS.items():
        if key not in report or not accepts(report[key]):
            found = "missing" if key not in report else f"{report[key]!r}"[:60]
            raise RunDirError(f"{path} is damaged: {key} is {found}, expected {expected}; {redo}")
    absent = [name for name in report["corruptions"] if name not in report["mean_errors"]]
    if absent:
        raise RunDirError(f"{path} is damaged: mean_errors lacks {absent[:3]}; {redo}")
    return report


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunDirError(f"{path} is damaged ({reason}); restore it or leave the run out") from None
    if not isinstance(value, dict):
        raise RunDirError(f"{path} is damaged (it holds a {type(value).__name__}, not a config); restore it or leave the run out")
    return value


def read_settings(folder: Path, report: dict[str, Any]) -> dict[str, Any] | None:
    """The training config of the run: its own ``.hydra/config.yaml`` when train.py wrote it; for an
    evaluate.py run, that of the training run whose ``checkpoints/`` folder holds the checkpoint.
    None when neither is there (the run is then compared on its own, not grouped by seed)."""
    candidates = [folder / HYDRA_CONFIG]
    checkpoint = report.get("checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        candidates.append(Path(checkpoint).parent.parent / HYDRA_CONFIG)
    for path in candidates:
        if path.is_file():
            config = _yaml_mapping(path)
            if "model" in config and "augmix" in config:  # a training config, not evaluate.py's own
                return config
    return None


def read_runs(paths: list[str | Path]) -> list[Run]:
    runs = []
    for folder in run_folders(paths):
        report = read_report(folder)
        runs.append(Run(folder, report, read_settings(folder, report)))
    return runs
