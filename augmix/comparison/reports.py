"""comparison.md / .csv / .png: the compared groups side by side, written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from augmix.comparison.grouping import FIGURES, Group, reduction
from augmix.files import atomic_write, write_text
from augmix.references import published_lines

NAMES = {
    "clean_error": "clean error",
    "mean_corruption_error": "mean corruption error",
    "mCE": "mCE",
    "relative_mCE": "relative mCE",
}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _mean_std(stats: tuple[float | None, float | None]) -> str:
    mean, std = stats
    return _fmt(mean) if std is None else f"{mean:.2f} ± {std:.2f}"


def _seeds(group: Group) -> str:
    return ", ".join("?" if seed is None else str(seed) for seed in group.seeds)


def _shown_figures(groups: list[Group]) -> list[str]:
    """The figures some group has (mCE only where the benchmark defines it)."""
    return [name for name in FIGURES if any(g.stats[name][0] is not None for g in groups)]


def _reduction(groups: list[Group], group: Group, name: str) -> float | None:
    return reduction(groups[0].stats[name][0], group.stats[name][0])


def describe(report: dict) -> str:
    """The benchmark line: what was measured, and the REGENERATED / PARTIAL labels."""
    limit = "all images" if report["limit_per_set"] is None else f"first {report['limit_per_set']} images per set"
    labels = ["REGENERATED corruptions (not the released files)" if report["regenerated"] else "released files"]
    if not report["complete"]:
        labels.append("PARTIAL (not comparable with published numbers)")
    severities = ",".join(str(s) for s in report["severities"])
    return (
        f"benchmark `{report['benchmark']}` on `{report['data']}`, protocol `{report['protocol']}`, "
        f"{len(report['corruptions'])} corruptions x severities {severities}, {limit}; {'; '.join(labels)}"
    )


def markdown_text(groups: list[Group]) -> str:
    first = groups[0].runs[0].report
    figures = _shown_figures(groups)
    relative = [name for name in ("mean_corruption_error", "mCE") if name in figures]
    columns = ["runs", "seeds", *(NAMES[n] for n in figures), *(f"{NAMES[n]} reduction vs baseline" for n in relative)]
    out = [
        f"# Robustness comparison: {first['benchmark']}",
        "",
        f"- {describe(first)}",
        f"- baseline: **{groups[0].label}** (the first run given); reductions are (baseline - run) / baseline",
        "- figures are top-1 errors in %, mean ± sample std over the runs of a row (runs that differ only by seed)",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
    ]
    for group in groups:
        cells = [group.label, _seeds(group), *(_mean_std(group.stats[n]) for n in figures)]
        for name in relative:
            value = _reduction(groups, group, name)
            cells.append("baseline" if group is groups[0] else ("-" if value is None else f"{value:+.1f}%"))
        out.append("| " + " | ".join(cells) + " |")
    lines = sorted({line for group in groups for line in published_lines(group.runs[0].report)})
    if lines:
        out += ["", *(f"- {line}" for line in lines)]
    out += [
        "",
        "Mean error (%) over severities, by corruption:",
        "",
        "| corruption | " + " | ".join(g.label for g in groups) + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for name in first["corruptions"]:
        out.append(f"| {name} | " + " | ".join(_mean_std(g.corruption_stats[name]) for g in groups) + " |")
    out += ["", "Runs:", "", "| run | group | seed | clean error | mean corruption error |", "|---|---|---|---|---|"]
    for group in groups:
        for run in group.runs:
            seed = "?" if run.seed is None else str(run.seed)
            report = run.report
            out.append(
                f"| `{run.path}` | {group.label} | {seed} | {_fmt(report['clean_error'])} | "
                f"{_fmt(report['mean_corruption_error'])} |"
            )
    out += ["", "![comparison](comparison.png)"]
    return "\n".join(out) + "\n"


def csv_text(groups: list[Group]) -> str:
    """One row per group: figures as mean and std, reductions vs the baseline, per-corruption means."""
    corruptions = groups[0].runs[0].report["corruptions"]
    header = ["group", "runs", "seeds"]
    for name in FIGURES:
        header += [f"{name}_mean", f"{name}_std"]
    header += ["mean_corruption_error_reduction_pct", "mCE_reduction_pct", *(f"{c}_mean" for c in corruptions)]
    header += ["benchmark", "regenerated", "complete"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:.6g}"

    first = groups[0].runs[0].report
    for group in groups:
        row = [group.label, len(group.runs), " ".join("" if s is None else str(s) for s in group.seeds)]
        for name in FIGURES:
            row += [cell(v) for v in group.stats[name]]
        row += [cell(_reduction(groups, group, "mean_corruption_error")), cell(_reduction(groups, group, "mCE"))]
        row += [cell(group.corruption_stats[c][0]) for c in corruptions]
        row += [first["benchmark"], str(first["regenerated"]).lower(), str(first["complete"]).lower()]
        writer.writerow(row)
    return buffer.getvalue()


def figure(groups: list[Group], path: Path) -> None:
    """Left: mean error by corruption (clean first) as grouped bars, ± std over seeds. Right:
    clean vs mean corruption error, one dot per run and a ring per group mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first = groups[0].runs[0].report
    names = ["clean", *first["corruptions"]]
    fig, (bars, scatter) = plt.subplots(
        1, 2, figsize=(min(20.0, 6.0 + 0.35 * len(names) * max(1.0, len(groups) / 2)), 4.6),
        gridspec_kw={"width_ratios": [3, 1.2]},
    )
    width = 0.8 / len(groups)
    x = np.arange(len(names))
    colours = plt.get_cmap("tab10")
    for i, group in enumerate(groups):
        stats = [group.stats["clean_error"], *(group.corruption_stats[c] for c in first["corruptions"])]
        means = [np.nan if m is None else m for m, _ in stats]
        stds = [0.0 if s is None else s for _, s in stats] if len(group.runs) > 1 else None
        bars.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=stds, capsize=2, label=group.label, color=colours(i % 10))
        clean = [run.report["clean_error"] for run in group.runs]
        corrupted = [run.report["mean_corruption_error"] for run in group.runs]
        points = [(a, b) for a, b in zip(clean, corrupted) if b is not None]
        if points:
            scatter.scatter(*zip(*points), color=colours(i % 10), s=18, alpha=0.7)
        mean_clean, mean_corrupted = group.stats["clean_error"][0], group.stats["mean_corruption_error"][0]
        if mean_clean is not None and mean_corrupted is not None:
            scatter.scatter([mean_clean], [mean_corrupted], facecolors="none", edgecolors=colours(i % 10), s=120, linewidths=2)
    bars.axvline(0.5, color="grey", linewidth=0.8)
    bars.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    bars.set_ylabel("top-1 error (%)")
    tag = (" [regenerated]" if first["regenerated"] else "") + ("" if first["complete"] else " [partial]")
    bars.set_title(f"{first['benchmark']}{tag}: mean error over severities", fontsize=9)
    bars.legend(fontsize=7)
    top = max([*scatter.get_xlim(), *scatter.get_ylim()])
    scatter.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle=":")
    scatter.set_xlabel("clean error (%)")
    scatter.set_ylabel("mean corruption error (%)")
    scatter.set_title("clean vs corrupted (rings: group means)", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    plt.close(fig)


def write_comparison(groups: list[Group], out: Path) -> dict[str, Path]:
    paths = {ext: out / f"comparison.{ext}" for ext in ("md", "csv", "png")}
    write_text(paths["md"], markdown_text(groups))
    write_text(paths["csv"], csv_text(groups))
    figure(groups, paths["png"])
    return paths
