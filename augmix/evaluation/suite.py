"""One evaluation over a whole robustness suite (``evaluate.py suite=cifar10``): the clean test set and
every member found under its root, in one run with the reliability of a single -C benchmark.

Order, as for a single benchmark: the checkpoint's class count against the data and against every
member that needs a given count (ImageNet-R/A/Sketch/V2: 1000, CIFAR-10.1/10.2: 10), then every present
member's files, then the output folder, all before the first forward pass. A member whose root does
not exist is listed as "not found at ROOT" and the rest runs. All sets stream through one loop
(``augmix.evaluation.run``), sharded across ranks; each member keeps its finished sets in its own
folder ``robustness_sets/<member>/``, so a stopped or killed suite re-run recomputes nothing finished,
and a set added later (a new download) leaves the others' results valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from augmix.allowlist import USER_CONFIG, Origin, build_datamodule, check_data
from augmix.data.clean import clean_source
from augmix.data.sources import ImageSource
from augmix.environment import is_global_rank_zero
from augmix.errors import CheckpointError
from augmix.evaluation.checkpoints import Checkpoint, build_model, check_class_count
from augmix.evaluation.inputs import corrupted_sets, regeneration_info
from augmix.evaluation.inputs.corrupted import read_marker
from augmix.evaluation.inputs.perturbed import PerturbationSpec, perturbed_sets
from augmix.evaluation.inputs.perturbed import download_hint as perturbation_hint
from augmix.evaluation.inputs.sets import CLEAN, EvalSet, SourceSet, Transform
from augmix.evaluation.inputs.shift import ShiftSpec, shift_sets
from augmix.evaluation.inputs.shift import download_hint as shift_hint
from augmix.evaluation.inputs.spec import BenchmarkSpec, download_hint
from augmix.evaluation.inputs.suite import Member, SuiteSpec, kind
from augmix.evaluation.reports import to_loggers
from augmix.evaluation.run import SETS_FOLDER, ResultStore, StoreGroup, launch, model_description, run_sets
from augmix.evaluation.sections import corruption_section, evaluated_model, perturbation_section, shift_section
from augmix.evaluation.suite_reports import headline, log_suite, print_suite, write_suite_reports
from augmix.files import remove_stale_temporaries


def needed_classes(member: Member, data_classes: int) -> int:
    """The class count a member's labels need: its own where it has one, else the data config's."""
    if isinstance(member, ShiftSpec):
        return member.num_classes
    return member.num_classes or data_classes


def _hint(member: Member) -> str:
    if isinstance(member, BenchmarkSpec):
        return download_hint(member)
    return perturbation_hint(member) if isinstance(member, PerturbationSpec) else shift_hint(member)


def member_sets(member: Member, clean: ImageSource, transform: Transform, image_size: int, classes: int) -> list[EvalSet]:
    """A present member's sets, its files checked (on rank zero only where that reads every file)."""
    check = member if is_global_rank_zero() else dataclasses.replace(member, verify_files=False)  # scanned once
    if isinstance(member, BenchmarkSpec):
        return corrupted_sets(check, clean, transform, image_size, classes)
    if isinstance(member, PerturbationSpec):
        return perturbed_sets(check, list(clean.classes), len(clean), image_size)
    return shift_sets(check, clean, transform)


def member_description(member: Member) -> dict[str, Any]:
    """What changes a member's numbers besides the model (not what only changes its report)."""
    described = {
        "benchmark": member.name,
        "format": member.format,
        "root": str(member.root.resolve()) if member.root else None,
        "limit_per_set": member.limit_per_set,
    }
    if isinstance(member, BenchmarkSpec):
        described.update(protocol=member.protocol, corruption_set=member.corruption_set,
                         seed=member.seed if member.format == "synthetic" else None)
    if isinstance(member, PerturbationSpec):
        described["difficulty"] = member.difficulty
    return described


def _regeneration(member: Member, image_size: int) -> dict | None:
    if isinstance(member, BenchmarkSpec):
        return regeneration_info(member, image_size)
    return read_marker(member.root) if isinstance(member, PerturbationSpec) else None


def _section(member: Member, sets: list[EvalSet], results: Mapping[str, dict], clean: dict, classes: int,
             regenerated: dict | None, clean_images: int) -> dict:
    if isinstance(member, BenchmarkSpec):
        return corruption_section(member, sets, results, clean, classes, regenerated)
    if isinstance(member, PerturbationSpec):
        return perturbation_section(member, sets, results, regenerated, clean_images)
    return shift_section(member, sets, results, clean)


@dataclass(frozen=True)
class Target:
    """The model under evaluation, on which data and devices, and where its reports go (as
    ``augmix.evaluation.commands`` resolves them from the command line)."""

    checkpoint: Checkpoint
    data: Mapping[str, Any]  # checked against the allowlist before use; ``origin`` says where it came from
    backbone: str
    backbone_kwargs: Mapping[str, Any]
    trained_classes: int | None  # the stored config's class count, if any
    fabric_kwargs: Mapping[str, Any]
    output_dir: str | Path
    logger_config: DictConfig | None = None
    origin: Origin = USER_CONFIG


def run_suite(suite: SuiteSpec, target: Target) -> dict:
    """Evaluate the target's checkpoint on the clean test set and every present member of ``suite``;
    writes the reports into its output folder and returns the summary (rank zero; other ranks return {})."""
    checkpoint, backbone, backbone_kwargs = target.checkpoint, target.backbone, target.backbone_kwargs
    output_dir, fabric_kwargs, origin = target.output_dir, target.fabric_kwargs, target.origin
    trained_classes, logger_config = target.trained_classes, target.logger_config
    data = check_data(target.data, origin)
    classes = data["num_classes"]
    if trained_classes is not None:
        check_class_count(checkpoint, trained_classes, classes, f"data {data['name']}")
    for name, member in suite.members.items():
        if needed_classes(member, classes) != classes:
            raise CheckpointError(
                f"suite member {name} ({member.format}) needs a model of {needed_classes(member, classes)} classes but "
                f"{checkpoint.path} is evaluated with data {data['name']} of {classes}; choose the suite of the "
                f"checkpoint's dataset or leave the member out (suite.members.{name}=null)"
            )
    model = build_model(checkpoint, backbone, backbone_kwargs, classes, f"data {data['name']}")

    datamodule = build_datamodule(data, origin)
    clean = clean_source(datamodule)
    image_size, transform = data["image_size"], datamodule.eval_transform
    clean_set = SourceSet(clean, transform, suite.limit_per_set)
    clean_set.member = CLEAN
    present: dict[str, tuple[Member, list[EvalSet]]] = {}
    not_found: dict[str, str] = {}
    for name, member in suite.members.items():
        if member.root is not None and not member.root.is_dir():
            not_found[name] = f"not found at {member.root}. {_hint(member)}"
            continue
        sets = member_sets(member, clean, transform, image_size, classes)
        for evalset in sets:
            evalset.member, evalset.batch_size = name, member.batch_size
        present[name] = (member, sets)
    regenerated = {name: _regeneration(member, image_size) for name, (member, _) in present.items()}

    common = model_description(checkpoint.sha256, backbone, backbone_kwargs, data, len(clean), classes,
                               fabric_kwargs.get("precision"), checkpoint.weights)
    folder = Path(output_dir) / SETS_FOLDER
    stores = {CLEAN: ResultStore(folder / CLEAN, {**common, "limit_per_set": suite.limit_per_set})}
    stores.update({name: ResultStore(folder / name, {**common, **member_description(member)})
                   for name, (member, _) in present.items()})
    store = StoreGroup(folder, stores)
    if is_global_rank_zero():
        store.open()
        remove_stale_temporaries(output_dir)  # of the reports

    fabric, model = launch(fabric_kwargs, model)
    workers = [member.num_workers for member, _ in present.values() if member.num_workers is not None]
    results = run_sets(
        fabric,
        model,
        datamodule.normalize,
        [clean_set, *(evalset for _, sets in present.values() for evalset in sets)],
        store,
        batch_size=data["eval_batch_size"],
        num_workers=max(workers) if workers else data["num_workers"],
        num_classes=classes,
        show_progress=suite.progress,
    )
    if fabric.global_rank != 0:
        return {}

    clean_metrics = results[clean_set.result_key]
    sections = {
        name: _section(member, sets, results, clean_metrics, classes, regenerated[name], len(clean))
        for name, (member, sets) in present.items()
    }
    summary = {
        "suite": suite.name,
        **evaluated_model(checkpoint, backbone, data["name"], classes),
        "limit_per_set": suite.limit_per_set,
        "regenerated": any(section["regenerated"] for section in sections.values()),
        "complete": suite.limit_per_set is None and all(section["complete"] for section in sections.values()),
        "clean_error": clean_metrics["error"],
        "clean_top5_error": clean_metrics["top5_error"],
        "calibration": {"clean": {"rms": clean_metrics["rms_calibration_error"], "ece": clean_metrics["ece"]}},
        "members": {name: kind(member) for name, member in suite.members.items()},
        "not_found": not_found,
        "benchmarks": sections,
        "sets": {CLEAN: clean_metrics},
    }
    summary["headline"] = headline(summary)
    paths = write_suite_reports(summary, output_dir)
    console = Console()
    print_suite(summary, console)
    console.print(f"Reports: {', '.join(str(path) for path in paths.values())}")
    to_loggers(logger_config, lambda loggers: log_suite(loggers, summary, paths))
    return summary
