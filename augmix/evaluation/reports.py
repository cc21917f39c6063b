"""Reports of one evaluation: robustness.json / .csv / .md / .png in the run dir, a terminal table, and the
same figures sent to the experiment loggers (wandb offline-safe, csv, tensorboard)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import Logger, WandbLogger
from rich.console import Console
from rich.table import Table

from augmix.files import atomic_write, write_json, write_text
from augmix.loggers import build_loggers
from augmix.references import published_lines

METRIC_COLUMNS = ("error", "top5_error", "loss", "rms_calibration_error", "ece")
LABEL_COLUMNS = ("regenerated", "complete")  # the REGENERATED / PARTIAL labels, on every row
CSV_COLUMNS = ("corruption", "severity", "n", *METRIC_COLUMNS, *LABEL_COLUMNS)


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _severities(summary: dict) -> list[str]:
    return [str(s) for s in summary["severities"]]


def _label(summary: dict) -> str:
    tags = ["REGENERATED corruptions (not the released files)" if summary["regenerated"] else "released files"]
    if not summary["complete"]:
        tags.append("PARTIAL (subset of corruptions/severities/images: not comparable with published numbers)")
    return "; ".join(tags)


def label_values(summary: dict) -> list[bool]:
    """The values of ``LABEL_COLUMNS``."""
    return [summary[column] for column in LABEL_COLUMNS]


def csv_text(summary: dict) -> str:
    """One row per (corruption, severity), the clean set first with severity 0."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    rows = [("clean", 0, summary["sets"]["clean"])]
    rows += [
        (name, s, summary["sets"][f"{name}-{s}"]) for name in summary["corruptions"] for s in summary["severities"]
    ]
    flags = ["true" if flag else "false" for flag in label_values(summary)]
    for name, severity, m in rows:
        figures = ("" if m[c] is None else f"{m[c]:.6g}" for c in METRIC_COLUMNS)
        writer.writerow([name, severity, m["n"], *figures, *flags])
    return buffer.getvalue()


def _headline(summary: dict) -> list[tuple[str, str]]:
    lines = [
        ("clean error", fmt(summary["clean_error"])),
        ("mean corruption error", fmt(summary["mean_corruption_error"])),
    ]
    if summary.get("clean_top5_error") is not None:
        lines += [
            ("clean top-5 error", fmt(summary["clean_top5_error"])),
            ("mean corruption top-5 error", fmt(summary["mean_corruption_top5_error"])),
        ]
    if summary["mean_extra_corruption_error"] is not None:
        lines.append(("mean error, 4 extra corruptions", fmt(summary["mean_extra_corruption_error"])))
    if summary["mCE"] is not None:
        lines += [("mCE (AlexNet-normalised)", fmt(summary["mCE"])), ("relative mCE", fmt(summary["relative_mCE"]))]
    calibration = summary["calibration"]
    lines += [
        ("RMS calibration, clean", fmt(calibration["clean"]["rms"])),
        ("RMS calibration, corrupted", fmt(calibration["corrupted"]["rms"])),
        ("ECE, clean", fmt(calibration["clean"]["ece"])),
        ("ECE, corrupted", fmt(calibration["corrupted"]["ece"])),
    ]
    return lines


def error_rows(summary: dict, with_ce: bool = True) -> list[list]:
    """[corruption, error at each severity..., mean (, CE when mCE applies)] per corruption."""
    rows = []
    for name in summary["corruptions"]:
        row = [
            name,
            *(summary["corruption_errors"][name][s] for s in _severities(summary)),
            summary["mean_errors"][name],
        ]
        if with_ce and summary["mCE"] is not None:
            row.append((summary["corruption_ce"] or {}).get(name))
        rows.append(row)
    return rows


def error_columns(summary: dict, with_ce: bool = True) -> list[str]:
    columns = ["corruption", *(f"s{s}" for s in _severities(summary)), "mean"]
    return columns + (["CE"] if with_ce and summary["mCE"] is not None else [])


def markdown_text(summary: dict, heading: str = "#") -> str:
    out = [
        f"{heading} Corruption robustness: {summary['benchmark']}",
        "",
        f"- checkpoint: `{summary['checkpoint']}`",
        f"- data: {_label(summary)}; protocol `{summary['protocol']}`",
        "",
        "| metric | % |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in _headline(summary)),
        *published_markdown(summary),
        "",
        "Top-1 error (%) by corruption and severity:",
        "",
        "| " + " | ".join(error_columns(summary)) + " |",
        "|---" * len(error_columns(summary)) + "|",
    ]
    for row in error_rows(summary):
        out.append(f"| {row[0]} | " + " | ".join(fmt(v) for v in row[1:]) + " |")
    return "\n".join(out) + "\n"


def published_markdown(summary: dict) -> list[str]:
    """The published figures of the same benchmark, dataset and architecture, as markdown list
    items under the measured ones (only on released, complete data: ``augmix.references``)."""
    lines = published_lines(summary)
    return ["", *(f"- {line}" for line in lines)] if lines else []


def terminal_table(summary: dict) -> Table:
    severities = _severities(summary)
    caption = "\n".join([_label(summary), *published_lines(summary)])
    table = Table(title=f"{summary['benchmark']}: top-1 error (%)", caption=caption)
    table.add_column("corruption")
    for s in severities:
        table.add_column(f"s{s}", justify="right")
    table.add_column("mean", justify="right", style="bold")
    for row in error_rows(summary, with_ce=False):
        table.add_row(row[0], *(fmt(v) for v in row[1:]))
    table.add_section()
    for name, value in _headline(summary):
        table.add_row(name, *([""] * len(severities)), value)
    return table


def heatmap(summary: dict, path: Path) -> None:
    """Error by corruption x severity, annotated; the clean error is the first column, set apart,
    and a line on the colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    severities = _severities(summary)
    names = summary["corruptions"]
    clean = summary["clean_error"]
    errors = np.array([[clean, *(summary["corruption_errors"][n][s] for s in severities)] for n in names])
    top = max(float(errors.max()), 1.0)
    fig, ax = plt.subplots(figsize=(1.0 * len(severities) + 4.0, 0.36 * len(names) + 1.8))
    image = ax.imshow(errors, cmap="magma_r", vmin=0, vmax=top, aspect="auto")
    ax.set_xticks(range(len(severities) + 1), ["clean", *(f"s{s}" for s in severities)])
    ax.set_yticks(range(len(names)), names)
    ax.axvline(0.5, color="white", linewidth=4)
    for i in range(len(names)):
        for j in range(len(severities) + 1):
            ax.text(
                j,
                i,
                f"{errors[i, j]:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if errors[i, j] > 0.6 * top else "black",
            )
    bar = fig.colorbar(image, ax=ax, label="top-1 error (%)")
    bar.ax.axhline(clean, color="tab:cyan", linewidth=2)
    tag = (" [regenerated]" if summary["regenerated"] else "") + ("" if summary["complete"] else " [partial]")
    ax.set_title(
        f"{summary['benchmark']}{tag}: clean {clean:.2f}%, mean corruption {fmt(summary['mean_corruption_error'])}%",
        fontsize=9,
    )
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    plt.close(fig)


def write_reports(summary: dict, directory: str | Path) -> dict[str, Path]:
    """Write the four report files; returns their paths."""
    directory = Path(directory)
    paths = {ext: directory / f"robustness.{ext}" for ext in ("json", "csv", "md", "png")}
    write_json(paths["json"], summary)
    write_text(paths["csv"], csv_text(summary))
    write_text(paths["md"], markdown_text(summary))
    heatmap(summary, paths["png"])
    return paths


def print_table(summary: dict, console: Console | None = None) -> None:
    (console or Console()).print(terminal_table(summary))


# ------------------------------------------------------------------------------------- to the loggers

def scalar_metrics(summary: dict, prefix: str = "robustness") -> dict[str, float]:
    """The headline figures as flat, non-null scalars, with the REGENERATED / PARTIAL labels as
    ``regenerated`` and ``complete`` (1 or 0), so no logged figure loses them."""
    names = (
        "clean_error",
        "mean_corruption_error",
        "mean_extra_corruption_error",
        "mCE",
        "relative_mCE",
        "clean_top5_error",
        "mean_corruption_top5_error",
    )
    scalars = {f"{prefix}/{name}": summary.get(name) for name in names}
    measures = {"rms": "rms_calibration_error", "ece": "ece"}
    for split in ("clean", "corrupted"):
        for measure, value in summary["calibration"][split].items():
            scalars[f"{prefix}/{measures[measure]}_{split}"] = value
    for name, mean in summary["mean_errors"].items():
        scalars[f"{prefix}/mean_error/{name}"] = mean
    for name in LABEL_COLUMNS:
        scalars[f"{prefix}/{name}"] = summary[name]
    return {key: float(value) for key, value in scalars.items() if value is not None}


def log_summary(loggers: list[Logger], summary: dict, heatmap: Path) -> None:
    """Scalars to every logger; with wandb also the error table printed at the end and the heatmap."""
    scalars = scalar_metrics(summary)
    for logger in loggers:
        logger.log_metrics(scalars)
        if isinstance(logger, WandbLogger):
            logger.log_table(
                key="robustness/table",
                columns=[*error_columns(summary), *LABEL_COLUMNS],
                data=[[*row, *label_values(summary)] for row in error_rows(summary)],
            )
            logger.log_image(key="robustness/heatmap", images=[str(heatmap)])


def to_loggers(logger_config: Any, log: Callable[[list[Logger]], None]) -> None:
    """Open the loggers ``logger_config`` names (none when it is None), hand them to ``log``, close them."""
    if logger_config is None:
        return
    loggers = build_loggers(logger_config)
    log(loggers)
    close(loggers)


def close(loggers: list[Logger]) -> None:
    """Flush and close loggers this evaluation opened (a wandb run is finished, so it can be synced)."""
    for logger in loggers:
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
