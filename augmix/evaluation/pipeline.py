"""One evaluation from resolved inputs: check everything, evaluate every pending set, report.

Order matters: class counts, benchmark files, the clean data and the output folder are all
checked before the first forward pass, so bad input stops the run at once with one clear line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_fabric import Fabric
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from augmix.allowlist import USER_CONFIG, Origin, build_datamodule, check_data
from augmix.data.clean import clean_source
from augmix.environment import is_global_rank_zero
from augmix.errors import CheckpointError, ConfigError, DataError
from augmix.evaluation.benchmark import clean_set, corrupted_sets, regeneration_info
from augmix.evaluation.checkpoints import Checkpoint, checkpoint_classes, create_backbone, load_weights
from augmix.evaluation.metrics import summarise
from augmix.evaluation.reports import print_table, write_reports
from augmix.evaluation.runner import run_sets
from augmix.evaluation.sets import CLEAN
from augmix.evaluation.settings import BenchmarkSpec, download_hint
from augmix.evaluation.store import ResultStore
from augmix.evaluation.tracking import close, log_summary
from augmix.files import remove_stale_temporaries
from augmix.loggers import build_loggers

SETS_FOLDER = "robustness_sets"


def plain(node: Any) -> Any:
    """A config node as plain, resolved Python containers."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def check_benchmark_against_data(spec: BenchmarkSpec, data: Mapping[str, Any]) -> None:
    """Cheap checks that need no file reads beyond the benchmark root's existence (checked here only:
    the format readers rely on it)."""
    if spec.num_classes is not None and spec.num_classes != data["num_classes"]:
        raise ConfigError(
            f"benchmark {spec.name} has {spec.num_classes} classes but data {data['name']} has {data['num_classes']}; "
            "pick the matching data config (or set benchmark.num_classes for your own -C set)"
        )
    if spec.root is not None and not spec.root.is_dir():
        raise DataError(f"benchmark root {spec.root} does not exist. {download_hint(spec)}")


def _check_classes(spec: BenchmarkSpec, checkpoint: Checkpoint, model_classes: int, expected: int) -> None:
    if model_classes != expected:
        raise CheckpointError(
            f"{checkpoint.path} was trained for {model_classes} classes but benchmark {spec.name} has {expected}; "
            "evaluate it on the benchmark of its own dataset"
        )


def run_evaluation(
    checkpoint: Checkpoint,
    spec: BenchmarkSpec,
    data: Mapping[str, Any],
    backbone: str,
    backbone_kwargs: Mapping[str, Any],
    trained_classes: int | None,
    fabric_kwargs: Mapping[str, Any],
    output_dir: str | Path,
    logger_config: DictConfig | None = None,
    replace_stale: bool = False,
    origin: Origin = USER_CONFIG,
) -> dict:
    """Evaluate ``checkpoint`` on ``spec`` and write reports into ``output_dir``; returns the summary
    (on rank zero; other ranks return an empty dict). ``data`` is built from the allowlist only
    (``augmix.allowlist``); ``origin`` names where it came from in messages."""
    data = check_data(data, origin)
    expected = spec.num_classes or data["num_classes"]
    if trained_classes is not None:
        _check_classes(spec, checkpoint, trained_classes, expected)
    check_benchmark_against_data(spec, data)
    model = create_backbone(backbone, expected, backbone_kwargs)
    found = checkpoint_classes(checkpoint, model)
    if found is not None:
        _check_classes(spec, checkpoint, found, expected)
    load_weights(model, checkpoint, backbone)

    datamodule = build_datamodule(data, origin)
    clean = clean_source(datamodule)
    image_size = data["image_size"]
    check = spec if is_global_rank_zero() else dataclasses.replace(spec, verify_files=False)  # scanned once
    sets = [
        clean_set(spec, clean, datamodule.eval_transform),
        *corrupted_sets(check, clean, datamodule.eval_transform, image_size, expected),
    ]
    regenerated = regeneration_info(spec, image_size)

    store = ResultStore(
        Path(output_dir) / SETS_FOLDER,
        {  # everything that changes a set's numbers; not what only changes the report (top5, mCE)
            "checkpoint_sha256": checkpoint.sha256,
            "backbone": backbone,
            "backbone_kwargs": dict(backbone_kwargs),
            "benchmark": spec.name,
            "format": spec.format,
            "protocol": spec.protocol,
            "root": str(spec.root.resolve()) if spec.root else None,
            "limit_per_set": spec.limit_per_set,
            "seed": spec.seed if spec.format == "synthetic" else None,
            "data": {key: data.get(key) for key in ("name", "image_size", "mean", "std", "eval_transform")},
            "clean": {"root": str(Path(data["root"]).resolve()), "images": len(clean)},
            "num_classes": expected,
            "precision": str(fabric_kwargs.get("precision")),
        },
        replace_stale=replace_stale,
    )
    if is_global_rank_zero():
        store.open()
        remove_stale_temporaries(output_dir)  # of the reports

    fabric = Fabric(**fabric_kwargs)
    fabric.launch()
    model = fabric.strategy.precision.convert_module(model).to(fabric.device)
    results = run_sets(
        fabric,
        model,
        datamodule.normalize,
        sets,
        store,
        batch_size=spec.batch_size or data["eval_batch_size"],
        num_workers=data["num_workers"] if spec.num_workers is None else spec.num_workers,
        num_classes=expected,
        show_progress=spec.progress,
    )
    if fabric.global_rank != 0:
        return {}

    corrupted: dict[str, dict[int, dict]] = {}
    for evalset in sets[1:]:
        corrupted.setdefault(evalset.corruption, {})[evalset.severity] = results[evalset.key]
    summary = {
        "benchmark": spec.name,
        "format": spec.format,
        "root": str(spec.root) if spec.root else None,
        "checkpoint": str(checkpoint.path),
        "checkpoint_sha256": checkpoint.sha256,
        "checkpoint_kind": checkpoint.kind,
        "backbone": backbone,
        "data": data["name"],
        "num_classes": expected,
        "protocol": spec.protocol,
        "regenerated": regenerated is not None,
        "regeneration": regenerated,
        "complete": spec.complete,
        "limit_per_set": spec.limit_per_set,
        "corruptions": list(spec.corruptions),
        "severities": list(spec.severities),
        **summarise(results[CLEAN], corrupted, spec.reports_mce(expected), spec.top5),
        "sets": {evalset.key: results[evalset.key] for evalset in sets},
    }
    paths = write_reports(summary, output_dir)
    console = Console()
    print_table(summary, console)
    console.print(f"Reports: {Path(output_dir) / 'robustness'}.{{json,csv,md,png}}")
    if logger_config is not None:
        loggers = build_loggers(logger_config)
        log_summary(loggers, summary, paths["png"])
        close(loggers)
    return summary
