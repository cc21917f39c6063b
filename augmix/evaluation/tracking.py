"""Send an evaluation's figures to the experiment loggers (wandb offline-safe, csv, tensorboard)."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.loggers import Logger, WandbLogger

from augmix.evaluation.reports import (
    LABEL_COLUMNS,
    error_columns,
    error_rows,
    label_values,
)


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


def close(loggers: list[Logger]) -> None:
    """Flush and close loggers this evaluation opened (a wandb run is finished, so it can be synced)."""
    for logger in loggers:
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
