"""What ``evaluate.py`` and ``train.py``'s ``evaluate_after_fit`` ask for, resolved and run: which
checkpoint, backbone, data config and devices (``evaluate``), then one evaluation from those inputs
(``run_evaluation``): check everything, build the model and the sets, run every pending set, report.

Order matters: class counts, benchmark files, the clean data and the output folder are all checked
before the first forward pass, so bad input stops the run at once with one clear line.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from augmix import interrupts
from augmix.allowlist import CHECKPOINT, USER_CONFIG, Origin, build_datamodule, check_backbone, check_data
from augmix.config import validate_evaluate
from augmix.data.clean import clean_source
from augmix.environment import is_global_rank_zero
from augmix.errors import CheckpointError, ConfigError, DataError
from augmix.evaluation.checkpoints import Checkpoint, build_model, check_class_count, read_checkpoint
from augmix.evaluation.exported import foreign_folder_data, is_foreign_folder, open_checkpoint
from augmix.evaluation.inputs import (
    CLEAN,
    BenchmarkSpec,
    SourceSet,
    benchmark_spec,
    corrupted_sets,
    download_hint,
    regeneration_info,
)
from augmix.evaluation.inputs.suite import SuiteSpec, is_corruption_node, single_suite, suite_spec
from augmix.evaluation.reports import log_summary, print_table, to_loggers, write_reports
from augmix.evaluation.run import SETS_FOLDER, ResultStore, launch, model_description, run_sets
from augmix.evaluation.sections import corruption_section, evaluated_model
from augmix.evaluation.suite import Target, run_suite
from augmix.files import remove_stale_temporaries


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
        check_class_count(checkpoint, trained_classes, expected, f"benchmark {spec.name}")
    check_benchmark_against_data(spec, data)
    model = build_model(checkpoint, backbone, backbone_kwargs, expected, f"benchmark {spec.name}")

    datamodule = build_datamodule(data, origin)
    clean = clean_source(datamodule)
    image_size = data["image_size"]
    check = spec if is_global_rank_zero() else dataclasses.replace(spec, verify_files=False)  # scanned once
    sets = [
        SourceSet(clean, datamodule.eval_transform, spec.limit_per_set),  # limited like the corrupted sets
        *corrupted_sets(check, clean, datamodule.eval_transform, image_size, expected),
    ]
    regenerated = regeneration_info(spec, image_size)

    store = ResultStore(
        Path(output_dir) / SETS_FOLDER,
        {  # everything that changes a set's numbers; not what only changes the report (top5, mCE)
            **model_description(
                checkpoint.sha256, backbone, backbone_kwargs, data, len(clean), expected, fabric_kwargs.get("precision"),
                checkpoint.weights,
            ),
            "benchmark": spec.name,
            "format": spec.format,
            "protocol": spec.protocol,
            "root": str(spec.root.resolve()) if spec.root else None,
            "limit_per_set": spec.limit_per_set,
            "seed": spec.seed if spec.format == "synthetic" else None,
        },
        replace_stale=replace_stale,
    )
    if is_global_rank_zero():
        store.open()
        remove_stale_temporaries(output_dir)  # of the reports

    fabric, model = launch(fabric_kwargs, model)
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

    section = corruption_section(spec, sets[1:], results, results[CLEAN], expected, regenerated)
    summary = {
        **section,
        **evaluated_model(checkpoint, backbone, data["name"], expected),
        "sets": {CLEAN: results[CLEAN], **section["sets"]},
    }
    paths = write_reports(summary, output_dir)
    console = Console()
    print_table(summary, console)
    console.print(f"Reports: {Path(output_dir) / 'robustness'}.{{json,csv,md,png}}")
    to_loggers(logger_config, lambda loggers: log_summary(loggers, summary, paths["png"]))
    return summary


def _command_line() -> list[Any]:
    if not HydraConfig.initialized():
        return []
    return OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))


def command_line_data_overrides() -> tuple[list[str], bool]:
    """Keys under ``data.`` set on the command line, and whether a ``data=NAME`` choice was made."""
    parsed = _command_line()
    keys = [o.key_or_group[len("data.") :] for o in parsed if o.key_or_group.startswith("data.") and not o.is_delete()]
    return keys, any(o.key_or_group == "data" for o in parsed)


def command_line_choices(group: str) -> list[str]:
    """The command line's overrides of ``group`` (``group=NAME``) or of its keys (``group.KEY=...``)."""
    return [o.input_line for o in _command_line() if o.key_or_group == group or o.key_or_group.startswith(group + ".")]


def data_config(cfg: DictConfig, checkpoint: Checkpoint, keys: Sequence[str], group_chosen: bool) -> dict[str, Any]:
    """A Lightning checkpoint's own data config (plain data, checked against the allowlist) with the
    command line's ``data.KEY=VALUE`` applied; the composed one for plain state_dicts.

    The checkpoint never chooses where files are written: its ``download`` is ignored (false) unless
    the command line sets ``data.download``."""
    if checkpoint.config is None:
        return check_data(plain(cfg.data), USER_CONFIG)
    if is_foreign_folder(checkpoint):
        return foreign_folder_data(checkpoint, plain(cfg.data), group_chosen)
    if group_chosen:
        raise ConfigError(
            f"this {checkpoint.kind} checkpoint brings its own data config (normalisation, classes, eval transform); "
            "drop data=NAME and change single keys instead, e.g. data.root=DIR"
        )
    stored = checkpoint.config.get("data")
    if not isinstance(stored, Mapping):
        raise CheckpointError(f"checkpoint config key data holds {type(stored).__name__}: it must be a mapping (the run's data config)")
    data = copy.deepcopy(dict(stored))
    data["download"] = False
    data.setdefault("root", plain(cfg.data.get("root")))  # an exported folder names none: the default, or data.root=DIR
    for key in keys:
        _set_dotted(data, key, plain(OmegaConf.select(cfg.data, key)))
    return check_data(data, CHECKPOINT)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[a][b] = value`` for ``key`` "a.b", creating (or replacing non-mapping) levels on the way."""
    *parents, last = key.split(".")
    for name in parents:
        if not isinstance(data.get(name), dict):
            data[name] = {}
        data = data[name]
    data[last] = value


def model_choice(cfg: DictConfig, checkpoint: Checkpoint) -> tuple[str, dict, int | None]:
    """(backbone, backbone_kwargs, trained class count) from the checkpoint's config or ``model.*``,
    checked: a registered architecture and plain keyword arguments."""
    requested = cfg.model.get("backbone")
    if checkpoint.config is not None:
        trained = checkpoint.config.get("model")
        if not isinstance(trained, Mapping):
            raise CheckpointError(
                f"checkpoint config key model holds {type(trained).__name__}: it must be a mapping (the run's model config)"
            )
        backbone, kwargs = check_backbone(
            trained.get("backbone"), trained.get("backbone_kwargs"), CHECKPOINT, trained.get("num_classes")
        )
        if requested and requested != backbone:
            raise ConfigError(
                f"model.backbone={requested!r} but this {checkpoint.kind} checkpoint was trained as {backbone!r}; "
                "drop model.backbone"
            )
        return backbone, kwargs, trained.get("num_classes")
    if not requested:
        raise ConfigError(
            f"{checkpoint.path} is a plain state_dict without a training config; name its architecture with "
            "model.backbone=NAME (a timm model, e.g. resnet50 for the official AugMix ImageNet release, "
            "or torchvision:NAME)"
        )
    backbone, kwargs = check_backbone(requested, cfg.model.get("backbone_kwargs"), USER_CONFIG)
    return backbone, kwargs, None


def fabric_settings(trainer: Mapping[str, Any] | None) -> dict[str, Any]:
    """Lightning Fabric arguments from a ``trainer`` config node (devices=N shards every set)."""
    trainer = trainer or {}
    return {
        "accelerator": trainer.get("accelerator", "auto"),
        "devices": trainer.get("devices", 1),
        "num_nodes": trainer.get("num_nodes", 1),
        "strategy": trainer.get("strategy", "auto"),
        "precision": trainer.get("precision", "32-true"),
    }


def evaluate(cfg: DictConfig, data_overrides: tuple[list[str], bool] | None = None) -> dict:
    """``evaluate.py``: ``cfg`` is configs/evaluate.yaml as composed by Hydra. A stop signal keeps
    the finished sets and stops at the next batch (see ``run_sets``)."""
    with interrupts.handling_stops():
        return _evaluate(cfg, data_overrides)


def evaluation_spec(cfg: DictConfig) -> BenchmarkSpec | SuiteSpec:
    """What ``evaluate.py`` runs: ``suite=NAME`` (the clean set and every member found), a -C
    ``benchmark=NAME`` (reported as ever), or any other ``benchmark=NAME`` as a suite of one member."""
    if cfg.get("suite") is None:
        return benchmark_spec(cfg.benchmark) if is_corruption_node(cfg.benchmark) else single_suite(cfg.benchmark)
    if command_line_choices("benchmark"):
        raise ConfigError(
            "benchmark=... / benchmark.KEY=... do nothing with suite=...: a suite evaluates its members; change one "
            "with suite.members.NAME.KEY=VALUE (e.g. suite.members.cifar10c.root=DIR) or leave it out with suite.members.NAME=null"
        )
    return suite_spec(cfg.suite)


def _evaluate(cfg: DictConfig, data_overrides: tuple[list[str], bool] | None) -> dict:
    validate_evaluate(cfg)
    if OmegaConf.is_missing(cfg, "checkpoint") or not cfg.get("checkpoint"):
        raise ConfigError(
            "checkpoint=PATH is required: a train.py .ckpt, an exported model folder, or a state_dict/.pth.tar/"
            ".safetensors with model.backbone=NAME"
        )
    spec = evaluation_spec(cfg)
    checkpoint = open_checkpoint(cfg.checkpoint, weights=cfg.get("checkpoint_weights", "model"))
    if cfg.get("ignore_checkpoint_config"):
        checkpoint = dataclasses.replace(checkpoint, config=None)  # weights only, like a plain state_dict
    keys, group_chosen = data_overrides if data_overrides is not None else command_line_data_overrides()
    data = data_config(cfg, checkpoint, keys, group_chosen)
    backbone, kwargs, trained_classes = model_choice(cfg, checkpoint)
    origin = CHECKPOINT if checkpoint.config is not None else USER_CONFIG
    devices, output_dir, logger = fabric_settings(cfg.get("trainer")), cfg.paths.output_dir, cfg.get("logger")
    if isinstance(spec, SuiteSpec):
        return run_suite(spec, Target(checkpoint, data, backbone, kwargs, trained_classes, devices, output_dir, logger, origin))
    return run_evaluation(
        checkpoint, spec, data, backbone, kwargs, trained_classes, devices, output_dir, logger_config=logger, origin=origin
    )


def check_evaluate_after_fit(cfg: DictConfig) -> None:
    """Fail before training, not after it, when ``evaluate_after_fit`` is misconfigured."""
    node = cfg.get("evaluate_after_fit")
    if node:
        check_data(plain(cfg.data), USER_CONFIG)  # evaluation builds its data from the allowlist alone
        check_benchmark_against_data(benchmark_spec(node, prefix="evaluate_after_fit."), plain(cfg.data))


def evaluate_after_fit(cfg: DictConfig, trainer: Any) -> dict[str, float]:
    """After ``trainer.fit``: evaluate the best checkpoint on ``cfg.evaluate_after_fit`` (a benchmark
    node) on one device of the training accelerator, in rank zero only, writing the reports into
    the run dir and logging them to the training loggers. Returns the headline figures as metrics."""
    if not cfg.get("evaluate_after_fit") or not trainer.is_global_zero:
        return {}
    callback = trainer.checkpoint_callback
    path = callback.best_model_path or callback.last_model_path if callback is not None else None
    if not path:
        raise CheckpointError("evaluate_after_fit needs a saved checkpoint; keep callbacks.model_checkpoint enabled")
    spec = benchmark_spec(cfg.evaluate_after_fit, prefix="evaluate_after_fit.")
    ema = cfg.model.get("ema") or {}
    summary = run_evaluation(
        read_checkpoint(path, weights="ema" if ema.get("evaluate") else "model"),  # what validation picked it by
        spec,
        cfg.data,
        cfg.model.backbone,
        plain(cfg.model.get("backbone_kwargs")) or {},
        cfg.model.get("num_classes"),
        {"accelerator": cfg.trainer.get("accelerator", "auto"), "devices": 1, "num_nodes": 1, "precision": "32-true"},
        cfg.paths.output_dir,
        replace_stale=True,
    )
    log_summary(list(trainer.loggers), summary, Path(cfg.paths.output_dir) / "robustness.png")
    figures = {"clean_error": summary["clean_error"], "mean_corruption_error": summary["mean_corruption_error"]}
    return {f"robustness/{name}": value for name, value in figures.items() if value is not None}
