"""Which runs may be compared, which are repeats of one recipe, and their figures.

Runs are compared only when their reports measured the same thing: benchmark, training set,
corruptions, severities, image limit, protocol, released vs regenerated files (and, for
regenerated ones, the same generator settings) and complete vs partial. Runs whose training
settings are equal except ``seed`` form one group with mean ± std; the first run's group is the
baseline that the others' relative reductions refer to.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from augmix.comparison.reading import Run
from augmix.errors import ConfigError

# Settings that say where a run's files go or how it is shown and logged, not what it trains.
# evaluate_after_fit is compared through the reports themselves.
IGNORED_SETTINGS = (
    "seed", "paths", "hydra", "logger", "tags", "task_name", "ckpt_path", "resume", "optimized_metric", "test",
    "evaluate_after_fit", "trainer.enable_progress_bar", "trainer.log_every_n_steps",
    "data.root", "data.num_workers", "data.pin_memory", "data.persistent_workers",
)
FIGURES = ("clean_error", "mean_corruption_error", "mCE", "relative_mCE")


def _label(report: dict) -> str:
    return "REGENERATED" if report["regenerated"] else "released files"


def _completeness(report: dict) -> str:
    return "complete" if report["complete"] else "PARTIAL"


# (what differs, how to read it from a report) for every property two reports must share
MUST_MATCH: tuple[tuple[str, Callable[[dict], Any]], ...] = (
    ("benchmark", lambda r: f"{r['benchmark']} ({r['format']})"),
    ("training set", lambda r: r["data"]),
    ("corruptions", lambda r: r["corruptions"]),
    ("severities", lambda r: r["severities"]),
    ("limit_per_set", lambda r: r["limit_per_set"]),
    ("protocol", lambda r: r["protocol"]),
    ("corruption files", _label),
    ("regenerated sets", lambda r: r["regeneration"]),
    ("completeness", _completeness),
)


def check_comparable(runs: list[Run]) -> None:
    """One ConfigError line naming the first run that differs from the first run, and how."""
    baseline = runs[0]
    for run in runs[1:]:
        for what, read in MUST_MATCH:
            mine, theirs = read(run.report), read(baseline.report)
            if mine != theirs:
                raise ConfigError(
                    f"cannot compare {run.path} with the baseline {baseline.path}: their {what} differ "
                    f"({theirs} vs {mine}); compare runs evaluated on the same benchmark, subset and protocol"
                )


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as {"a.b.c": value}; lists become tuples so values compare and hash."""
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(node, list):
        return {prefix: tuple(repr(v) if isinstance(v, (dict, list)) else v for v in node)}
    return {prefix: node}


def recipe(run: Run) -> dict[str, Any] | None:
    """The settings that decide what a run trains (all but ``IGNORED_SETTINGS``)."""
    if run.settings is None:
        return None
    return {
        key: value
        for key, value in flatten(run.settings).items()
        if not any(key == ignored or key.startswith(ignored + ".") for ignored in IGNORED_SETTINGS)
    }


@dataclass
class Group:
    """Runs of one recipe (repeats over seeds), in the order they were given."""

    runs: list[Run]
    recipe: dict[str, Any] | None
    label: str = ""
    stats: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # figure -> (mean, std)
    corruption_stats: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean, and sample standard deviation over repeats (None for one run, or when undefined)."""
    known = [v for v in values if v is not None]
    if not known or len(known) != len(values):
        return None, None
    return statistics.fmean(known), (statistics.stdev(known) if len(known) > 1 else None)


def group_runs(runs: list[Run]) -> list[Group]:
    """Groups in order of their first run; runs without known settings stay on their own."""
    groups: list[Group] = []
    for run in runs:
        settings = recipe(run)
        home = next((g for g in groups if settings is not None and g.recipe == settings), None)
        if home is None:
            groups.append(Group([run], settings))
        else:
            home.runs.append(run)
    _name(groups)
    for group in groups:
        group.stats = {name: mean_std([run.report[name] for run in group.runs]) for name in FIGURES}
        corruptions = group.runs[0].report["corruptions"]
        group.corruption_stats = {c: mean_std([run.report["mean_errors"][c] for run in group.runs]) for c in corruptions}
    return groups


def _name(groups: list[Group]) -> None:
    """Label each group by the settings that vary across groups (e.g. ``augmix.enabled=false``)."""
    known = [g.recipe for g in groups if g.recipe is not None]
    keys = sorted({k for r in known for k in r})
    varying = [k for k in keys if len({repr(r.get(k, "<unset>")) for r in known}) > 1]
    for group in groups:
        if group.recipe is None or not varying:
            group.label = str(group.runs[0].path.name if group.recipe is None or len(groups) > 1 else "all runs")
        else:
            group.label = " ".join(f"{k}={_show(group.recipe.get(k, '<unset>'))}" for k in varying)
    if len({g.label for g in groups}) < len(groups):  # e.g. two runs without settings in same-named folders
        for group in groups:
            group.label = f"{group.label} ({group.runs[0].path})"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def reduction(baseline: float | None, value: float | None) -> float | None:
    """Relative reduction in percent, (baseline - value) / baseline; None where undefined."""
    if baseline is None or value is None or baseline == 0:
        return None
    return 100.0 * (baseline - value) / baseline
