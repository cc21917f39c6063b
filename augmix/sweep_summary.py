"""``sweep_summary.csv`` / ``.md`` of a multirun folder, rebuilt from its job folders (so it is right
after resumes too): each job's overrides, final metrics, status, and its robustness figures once its
post-fit evaluation (``evaluate_after_fit``) is done.

Robustness figures come from the job's ``robustness.json``, read as strict JSON and checked key by key
(as ``compare.py`` reads it), because only the report has mCE, relative mCE and the REGENERATED /
PARTIAL labels. They are shown only when the job's ``metrics.json`` records that evaluation as done
on the job's final weights (``post_fit.evaluate_after_fit`` at the same ``global_step``): a report left
by an earlier evaluation of weights since trained further (a resumed or extended job) is not
presented as the job's result. A damaged job file is one warning line and an ``unreadable`` cell.

The .md prints the overrides every job shares once above the table and shows only those that vary
in it (likewise the benchmark description when every evaluated job has the same); the .csv keeps the
full ``overrides`` and ``varying`` columns and every metric column, for scripts.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from augmix.comparison.reading import read_report
from augmix.comparison.reports import describe
from augmix.errors import RunDirError
from augmix.files import write_text

log = logging.getLogger(__name__)
SUMMARY_METRICS = ("val/acc", "val/loss", "val/acc_best", "val/corruption_error", "test/acc", "epoch")
ROBUSTNESS = "robustness/"
ROBUSTNESS_FIGURES = tuple(ROBUSTNESS + name for name in ("clean_error", "mean_corruption_error", "mCE", "relative_mCE"))
BENCHMARK = ROBUSTNESS + "benchmark"
ROBUSTNESS_COLUMNS = (BENCHMARK, *ROBUSTNESS_FIGURES, ROBUSTNESS + "regenerated", ROBUSTNESS + "complete")
OBJECTIVE = "objective"
UNREADABLE = "unreadable"


def _read_job_file(path: Path, parse: Any, expected: type) -> Any:
    """A job's run-dir file as plain data (safe YAML / JSON, never instantiated); None when it is
    damaged, after one warning line naming it. The summary then marks the job instead of failing."""
    try:
        value = parse(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    else:
        if isinstance(value, expected):
            return value
        reason = f"holds {type(value).__name__}, not a {expected.__name__}"
    log.warning(
        f"{path} is damaged ({reason}); its job shows as 'unreadable' in the sweep summary. "
        "Run the sweep again to redo that job, or delete its folder"
    )
    return None


def evaluated(metrics: dict[str, Any]) -> bool:
    """Whether ``metrics.json`` records the post-fit evaluation as done on the job's final weights."""
    done = metrics.get("post_fit")
    return isinstance(done, dict) and "evaluate_after_fit" in done and done.get("global_step") == metrics.get("global_step")


def short_label(report: dict[str, Any]) -> str:
    """``synthetic (REGENERATED, PARTIAL)``: the benchmark and the labels its figures carry."""
    tags = [*(["REGENERATED"] if report["regenerated"] else []), *([] if report["complete"] else ["PARTIAL"])]
    return report["benchmark"] + (f" ({', '.join(tags)})" if tags else "")


def robustness_cells(job_dir: Path, metrics: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The robustness columns of a job (empty until its evaluation is recorded as done), and the
    report's full description for the .md."""
    if not evaluated(metrics):
        return {}, None
    redo = (
        f"its job's robustness shows as '{UNREADABLE}' in the sweep summary. Its robustness.md may still hold the "
        "figures; to measure them again, run evaluate.py on the job's checkpoint with a hydra.run.dir of its own"
    )
    try:
        report = read_report(job_dir, redo)
    except RunDirError as error:
        log.warning(str(error))
        return {BENCHMARK: UNREADABLE}, None
    cells = {name: report[name[len(ROBUSTNESS) :]] for name in ROBUSTNESS_FIGURES}
    cells.update({BENCHMARK: short_label(report), ROBUSTNESS + "regenerated": report["regenerated"],
                  ROBUSTNESS + "complete": report["complete"]})
    return cells, describe(report)


def split_override(override: str) -> tuple[str, str | None]:
    key, sign, value = override.partition("=")
    return key, value if sign else None


def varying_keys(rows: list[dict[str, Any]]) -> set[str]:
    """Override keys whose value is not the same in every readable job (or missing in some)."""
    jobs = [dict(map(split_override, row["_overrides"])) for row in rows if row["_overrides"] is not None]
    keys = {key for job in jobs for key in job}
    return {key for key in keys if len({repr(job[key]) if key in job else "<unset>" for job in jobs}) > 1}


def job_row(job_dir: Path, objective: str | None = None) -> dict[str, Any]:
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = _read_job_file(overrides_file, yaml.safe_load, list) if overrides_file.is_file() else []
    metrics_file = job_dir / "metrics.json"
    metrics = _read_job_file(metrics_file, json.loads, dict) if metrics_file.is_file() else {}
    overrides = None if overrides is None else [str(o) for o in overrides]
    row: dict[str, Any] = {"job": job_dir.name, "overrides": UNREADABLE if overrides is None else " ".join(overrides),
                           "_overrides": overrides}
    if objective:
        row[OBJECTIVE] = (metrics or {}).get(objective)
    row.update({name: (metrics or {}).get(name) for name in SUMMARY_METRICS})
    cells, description = robustness_cells(job_dir, metrics) if metrics else ({}, None)
    row.update({name: cells.get(name) for name in ROBUSTNESS_COLUMNS})
    row["_description"] = description
    if overrides is None or metrics is None:
        row["status"] = UNREADABLE
    elif metrics.get("diverged"):
        row["status"] = "diverged"
    else:
        row["status"] = "finished" if metrics.get("finished") else ("running or stopped" if metrics else "not started")
    return row


def _cell(column: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.2f}" if column.startswith(ROBUSTNESS) else f"{value:.4f}"
    return "" if value is None else str(value).replace("|", "\\|")


def markdown(rows: list[dict[str, Any]], columns: list[str], objective: str | None) -> str:
    """The table with only what differs between jobs; what all share is said once above it."""
    varying = varying_keys(rows)
    readable = [row["_overrides"] for row in rows if row["_overrides"] is not None]
    fixed = [o for o in readable[0] if split_override(o)[0] not in varying] if readable else []
    descriptions = {row["_description"] for row in rows if row["_description"] is not None}
    out = [f"# Sweep summary: {len(rows)} job(s)", ""]
    if fixed:
        out.append(f"- every job: `{' '.join(fixed)}`")
    if objective:
        out.append(f"- objective: `{objective}`")
    same_benchmark = len(descriptions) == 1 and all(row[BENCHMARK] != UNREADABLE for row in rows)
    if same_benchmark:
        out.append(f"- robustness (post-fit evaluation, top-1 error in %): {descriptions.pop()}")
    elif descriptions:
        out.append("- robustness (post-fit evaluation, top-1 error in %): benchmarks differ, see robustness/benchmark")
    shown = [
        c for c in columns
        if c in ("job", "status", OBJECTIVE) or (c != objective and any(row[c] is not None for row in rows))
    ]
    shown = [c for c in shown if c not in ("overrides", ROBUSTNESS + "regenerated", ROBUSTNESS + "complete")]
    if same_benchmark:
        shown.remove(BENCHMARK)
    if varying:
        shown.insert(1, "varying")
    header = [f"objective ({objective})" if c == OBJECTIVE else c for c in shown]
    out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        values = {**row, "varying": _varying(row, varying)}
        out.append("| " + " | ".join(_cell(c, values[c]) for c in shown) + " |")
    return "\n".join(out) + "\n"


def _varying(row: dict[str, Any], varying: set[str]) -> str:
    if row["_overrides"] is None:
        return UNREADABLE
    return " ".join(o for o in row["_overrides"] if split_override(o)[0] in varying)


def write_summary(sweep_dir: Path, objective: str | None = None) -> Path:
    """Rebuild ``sweep_summary.csv`` and ``.md`` from the job folders on disk. ``objective`` is the
    metric a search sweeper optimises (its column comes first)."""
    job_dirs = sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: (len(p.name), p.name))
    rows = [job_row(p, objective) for p in job_dirs]
    columns = ["job", "overrides", *([OBJECTIVE] if objective else []), *SUMMARY_METRICS, *ROBUSTNESS_COLUMNS, "status"]
    varying = varying_keys(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["job", "overrides", "varying", *columns[2:]])
    for row in rows:
        cells = [row["job"], row["overrides"], _varying(row, varying)]
        writer.writerow(cells + [_csv_cell(row[c]) for c in columns[2:]])
    write_text(sweep_dir / "sweep_summary.csv", buffer.getvalue())
    write_text(sweep_dir / "sweep_summary.md", markdown(rows, columns, objective))
    return sweep_dir / "sweep_summary.csv"


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else value
