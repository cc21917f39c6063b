"""Reports of a suite: robustness.json (one section per benchmark), robustness.md (a summary table, then
each benchmark's tables: the -C ones as a single benchmark's), robustness.csv (one row per set), the
figures (robustness.png: the -C heatmap; robustness_<member>.png for another -C or -C-bar member;
robustness_p.png: flip probability per perturbation), the terminal tables, and all of it to the loggers.

Every headline figure is one entry of ``headline``: ``<member>/<figure>`` (``cifar10p/mFP``), the same
names in robustness.json, the summary table and the logged scalars (``robustness/<member>/<figure>``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pytorch_lightning.loggers import Logger, WandbLogger
from rich.console import Console
from rich.table import Table

from augmix.evaluation.reports import (
    LABEL_COLUMNS,
    METRIC_COLUMNS,
    error_columns,
    error_rows,
    fmt,
    heatmap,
    markdown_text,
    terminal_table,
)
from augmix.evaluation.sections import ALEXNET_P_NOTE
from augmix.files import atomic_write, write_json, write_text
from augmix.references import published_lines

STABILITY_COLUMNS = ("flip_probability", "top5_distance", "zipf_distance")
CSV_COLUMNS = ("benchmark", "set", "n", *METRIC_COLUMNS, *STABILITY_COLUMNS, *LABEL_COLUMNS)
FIGURE = "figure/"  # prefix of the figure entries of write_suite_reports' paths


def _sections(summary: dict, kind: str) -> dict[str, dict]:
    return {name: section for name, section in summary["benchmarks"].items() if section["kind"] == kind}


def headline(summary: dict) -> dict[str, float | None]:
    """The suite's headline figures by ``<member>/<figure>`` (null where undefined, as mFR)."""
    figures: dict[str, float | None] = {"clean/error": summary["clean_error"]}
    if any("top5_error" in section or "clean_top5_error" in section for section in summary["benchmarks"].values()):
        figures["clean/top5_error"] = summary["clean_top5_error"]  # next to members that report top-5
    for name, section in summary["benchmarks"].items():
        if section["kind"] == "corruption":
            keys = ["mean_corruption_error", "mean_extra_corruption_error", "mCE", "relative_mCE", "mean_corruption_top5_error"]
            figures.update({f"{name}/{key}": section[key] for key in keys if section.get(key) is not None})
        elif section["kind"] == "perturbation":
            keys = ["mFP", "mean_top5_distance", "mean_extra_flip_probability", "mFR", "mT5D"]
            figures.update({f"{name}/{key}": section[key] for key in keys if key in section})
        else:
            keys = ["error", "gap", "top5_error"]
            figures.update({f"{name}/{key}": section[key] for key in keys if key in section})
    return figures


def _labels(section: dict) -> str:
    tags = ["REGENERATED"] if section["regenerated"] else []
    return ", ".join([*tags, *([] if section["complete"] else ["PARTIAL"])])


def summary_rows(summary: dict) -> list[tuple[str, str, str, str]]:
    """(benchmark, figure, value, labels) rows of the summary table, the clean set first."""
    rows = [("clean", "top-1 error (%)", fmt(summary["clean_error"]), "" if summary["limit_per_set"] is None else "PARTIAL")]
    for name, section in summary["benchmarks"].items():
        labels = _labels(section)
        if section["kind"] == "corruption":
            family = "-C" if section["corruption_set"] == "c" else "-C-bar"
            rows.append((name, f"{family} mean corruption error (%)", fmt(section["mean_corruption_error"]), labels))
            if section["mCE"] is not None:
                rows.append((name, "mCE (%, AlexNet-normalised)", fmt(section["mCE"]), labels))
            rows += [(name, "published", line.removeprefix("published: "), "") for line in published_lines(as_report(summary, section))]
        elif section["kind"] == "perturbation":
            rows += [
                (name, "mFP (%)", fmt(section["mFP"]), labels),
                (name, "mean top-5 distance", fmt(section["mean_top5_distance"], 3), labels),
                (name, "mFR, mT5D", "not reported (AlexNet baseline unverified)", labels),
            ]
        else:
            value = f"{fmt(section['error'])} ({section['gap']:+.2f} vs reference)"
            rows.append((name, "top-1 error (%)", value, labels))
    rows += [(name, "not found", where.split(". ")[0].removeprefix("not found at "), "") for name, where in summary["not_found"].items()]
    return rows


def as_report(summary: dict, section: dict) -> dict:
    """A -C member's section with the suite's checkpoint, data and backbone: what a single
    benchmark's robustness.json holds."""
    return {**section, **{key: summary[key] for key in ("checkpoint", "data", "backbone")}}


def _perturbation_markdown(name: str, section: dict) -> list[str]:
    out = [
        f"## Perturbation stability: {name}",
        "",
        f"- {section['format']} at `{section['root']}`, difficulty {section['difficulty']}; "
        + (_labels(section) or "released files, complete"),
        f"- {ALEXNET_P_NOTE}.",
        "",
        "| perturbation | flip probability (%) | top-5 distance | Zipf distance | videos |",
        "|---|---|---|---|---|",
    ]
    for perturbation in section["perturbations"]:
        m = section["sets"][perturbation]
        out.append(f"| {perturbation} | {fmt(m['flip_probability'])} | {fmt(m['top5_distance'], 3)} | "
                   f"{fmt(m['zipf_distance'], 4)} | {m['n']} |")
    out.append(f"| **mean (benchmark perturbations)** | {fmt(section['mFP'])} | {fmt(section['mean_top5_distance'], 3)} | | |")
    return out


def _shift_markdown(name: str, section: dict) -> list[str]:
    images = section["sets"]["images"]
    rows = [
        ("top-1 error (%)", fmt(section["error"])),
        ("top-5 error (%)", fmt(section.get("top5_error"))),
        ("RMS calibration error (%)", fmt(section["calibration"]["rms"])),
        ("ECE (%)", fmt(section["calibration"]["ece"])),
        ("reference error (%)", fmt(section["reference_error"])),
        ("gap (percentage points)", f"{section['gap']:+.2f}"),
    ]
    return [
        f"## Distribution shift: {name}",
        "",
        f"- {section['format']} at `{section['root']}`, {images['n']} images scored over {section['outputs']} outputs; "
        f"reference: {section['reference']}" + (f"; {_labels(section)}" if _labels(section) else ""),
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in rows),
    ]


def markdown_suite(summary: dict) -> str:
    label = "REGENERATED sets in the suite (not all released files)" if summary["regenerated"] else "released files"
    out = [
        f"# Robustness suite: {summary['suite']}",
        "",
        f"- checkpoint: `{summary['checkpoint']}`",
        f"- data: {summary['data']} ({summary['num_classes']} classes); {label}"
        + ("" if summary["complete"] else "; PARTIAL (subsets: not comparable with published numbers)"),
        "",
        "| benchmark | figure | value | labels |",
        "|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in summary_rows(summary)),
    ]
    for name, section in summary["benchmarks"].items():
        out.append("")
        if section["kind"] == "corruption":
            out.append(markdown_text({**as_report(summary, section), "benchmark": name}, heading="##").rstrip("\n"))
        elif section["kind"] == "perturbation":
            out += _perturbation_markdown(name, section)
        else:
            out += _shift_markdown(name, section)
    return "\n".join(out) + "\n"


def csv_suite(summary: dict) -> str:
    """One row per set of every benchmark, the clean set first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    rows = [("clean", "clean", summary["sets"]["clean"], [False, summary["limit_per_set"] is None])]
    for name, section in summary["benchmarks"].items():
        rows += [(name, key, m, [section["regenerated"], section["complete"]]) for key, m in section["sets"].items()]
    for name, key, m, flags in rows:
        figures = ("" if m.get(c) is None else f"{m[c]:.6g}" for c in (*METRIC_COLUMNS, *STABILITY_COLUMNS))
        writer.writerow([name, key, m["n"], *figures, *("true" if flag else "false" for flag in flags)])
    return buffer.getvalue()


def stability_figure(summary: dict, path: Path) -> None:
    """Flip probability per perturbation, one panel per -P benchmark, mFP as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = _sections(summary, "perturbation")
    fig, axes = plt.subplots(len(sections), 1, figsize=(8.0, 3.2 * len(sections)), squeeze=False)
    for ax, (name, section) in zip(axes[:, 0], sections.items()):
        names = section["perturbations"]
        values = [section["flip_probabilities"][p] for p in names]
        ax.bar(range(len(names)), values, color="tab:purple")
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("flip probability (%)")
        if section["mFP"] is not None:
            ax.axhline(section["mFP"], color="black", linestyle="--", linewidth=1)
        tags = (" [regenerated]" if section["regenerated"] else "") + ("" if section["complete"] else " [partial]")
        ax.set_title(f"{name}{tags}: mFP {fmt(section['mFP'])}%, mean top-5 distance "
                     f"{fmt(section['mean_top5_distance'], 3)} (difficulty {section['difficulty']})", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    plt.close(fig)


def write_suite_reports(summary: dict, directory: str | Path) -> dict[str, Path]:
    """Write the report files; returns their paths, the figures under ``figure/<member>``
    (``figure/perturbation`` for robustness_p.png)."""
    directory = Path(directory)
    paths = {ext: directory / f"robustness.{ext}" for ext in ("json", "csv", "md")}
    write_json(paths["json"], summary)
    write_text(paths["csv"], csv_suite(summary))
    write_text(paths["md"], markdown_suite(summary))
    corruption = _sections(summary, "corruption")
    first = next((name for name, s in corruption.items() if s["corruption_set"] == "c"), next(iter(corruption), None))
    for name, section in corruption.items():
        path = directory / ("robustness.png" if name == first else f"robustness_{name}.png")
        heatmap({**section, "benchmark": name}, path)
        paths[FIGURE + name] = path
    if _sections(summary, "perturbation"):
        paths[FIGURE + "perturbation"] = directory / "robustness_p.png"
        stability_figure(summary, paths[FIGURE + "perturbation"])
    return paths


def print_suite(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"robustness suite {summary['suite']}", caption="; ".join(
        filter(None, ["REGENERATED sets" if summary["regenerated"] else "", "" if summary["complete"] else "PARTIAL"])))
    for column in ("benchmark", "figure", "value", "labels"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in summary_rows(summary):
        table.add_row(*row)
    console.print(table)
    for name, section in _sections(summary, "corruption").items():
        console.print(terminal_table({**as_report(summary, section), "benchmark": name}))


# ------------------------------------------------------------------------------------- to the loggers

def suite_scalars(summary: dict, prefix: str = "robustness") -> dict[str, float]:
    """Every headline figure, each -C member's mean error per corruption and each -P member's flip
    probability per perturbation, with the REGENERATED / PARTIAL labels (1 or 0); nulls left out."""
    scalars: dict[str, float | None] = {f"{prefix}/{key}": value for key, value in summary["headline"].items()}
    for name, section in summary["benchmarks"].items():
        for corruption, mean in section.get("mean_errors", {}).items():
            scalars[f"{prefix}/{name}/mean_error/{corruption}"] = mean
        for perturbation, flip in section.get("flip_probabilities", {}).items():
            scalars[f"{prefix}/{name}/flip_probability/{perturbation}"] = flip
        for label in LABEL_COLUMNS:
            scalars[f"{prefix}/{name}/{label}"] = section[label]
    for label in LABEL_COLUMNS:
        scalars[f"{prefix}/{label}"] = summary[label]
    return {key: float(value) for key, value in scalars.items() if value is not None}


def log_suite(loggers: list[Logger], summary: dict, paths: dict[str, Path]) -> None:
    """Scalars to every logger; with wandb also the summary table, each benchmark's table and every figure."""
    scalars = suite_scalars(summary)
    for logger in loggers:
        logger.log_metrics(scalars)
        if not isinstance(logger, WandbLogger):
            continue
        logger.log_table(key="robustness/summary", columns=["benchmark", "figure", "value", "labels"],
                         data=[list(row) for row in summary_rows(summary)])
        for name, section in _sections(summary, "corruption").items():
            logger.log_table(key=f"robustness/{name}/table", columns=[*error_columns(section), *LABEL_COLUMNS],
                             data=[[*row, section["regenerated"], section["complete"]] for row in error_rows(section)])
        for name, section in _sections(summary, "perturbation").items():
            logger.log_table(key=f"robustness/{name}/table", columns=["perturbation", *STABILITY_COLUMNS],
                             data=[[p, *(section["sets"][p][c] for c in STABILITY_COLUMNS)] for p in section["perturbations"]])
        for key, path in paths.items():
            if key.startswith(FIGURE):
                logger.log_image(key=f"robustness/{key[len(FIGURE):]}/figure", images=[str(path)])
