"""The train-side schemas and start-up validation.

Each config group has one schema, and each schema field one rule from ``augmix.rules``:

- ``augmix`` (``AugMixConfig``, registered in Hydra's ConfigStore, so a mistyped key or a value of
  the wrong type fails at composition) and the top level of train.yaml (``TrainConfig``) are
  dataclasses whose fields carry their rules;
- ``data``, ``model``, ``loss`` and ``trainer`` are ``_target_`` nodes: their keys are the
  arguments of the callable they name (``augmix.config_checks``), their values are checked by the
  tables ``DATA``, ``MODEL``, ``LOSS`` and ``TRAINER``.

Keys added with ``+`` bypass Hydra's own checks, so ``validate`` (and ``validate_evaluate`` /
``validate_make_corrupted``) first compare the whole config with the schemas, then check values
and the rules between settings, and raise a one-line ``ConfigError`` naming the key, before any
data is touched. The allowlist for configs read from checkpoints uses the same ``DATA`` table, and
``AugMix``, ``JSDLoss``, ``MixUpCutMix`` and ``RandomErasing`` the same rules.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from augmix import extras
from augmix.config_checks import check_finite, check_known_keys, check_target_arguments, schema_fields
from augmix.corruptions.names import check_corruptions, check_severities, corruption_group
from augmix.rules import (
    ALPHA,
    BATCH_SCOPE,
    BATCH_SIZE,
    BOOLEAN,
    CHANNELS,
    CHECKPOINT_WEIGHT_SET,
    CLASS_COUNT,
    CUTMIX_ALPHA,
    DATASET,
    DECODE,
    DEPTH,
    EMA_DECAY,
    ERASE_AREA,
    ERASE_MODE,
    ERASE_RATIO,
    ERASE_VIEW,
    EXECUTOR,
    FILL,
    JSD_WEIGHT,
    KEYED_SAMPLER,
    LABEL_SMOOTHING,
    LEARNING_RATE,
    LR_REFERENCE_BATCH,
    LR_WARMUP_EPOCHS,
    MAX_EPOCHS,
    MIX_MODE,
    MIXUP_ALPHA,
    NON_NEGATIVE_NUMBER,
    ON_BAD_IMAGE,
    OP_LIST,
    PLACEMENT,
    POSITIVE_NUMBER,
    PROBABILITY,
    SEED,
    SEVERITY,
    SIDE,
    STD,
    TEXT,
    VAL_FRACTION,
    VERIFY_FILES,
    WIDTH,
    WORKERS,
    Rules,
    check,
    check_table,
    fail,
    is_int,
)

RULES = "rules"  # the key of a schema field's rules in its dataclass metadata


def setting(rules: Rules, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    """A schema field whose value must pass ``rules``."""
    return field(default=default, default_factory=factory, metadata={RULES: rules})


def rules_of(schema: type) -> dict[str, Any]:
    """A schema dataclass as a rules table: each field's rules, or the table of a nested schema."""
    hints = typing.get_type_hints(schema)
    table: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[f.name]):
            table[f.name] = rules_of(hints[f.name])
        elif RULES in f.metadata:
            table[f.name] = f.metadata[RULES]
    return table


# --- augmix --------------------------------------------------------------------------------------


@dataclass
class MixUpConfig:
    alpha: float = setting(MIXUP_ALPHA, 0.0)  # Beta(alpha, alpha) mixing weight; 0 disables MixUp


@dataclass
class CutMixConfig:
    alpha: float = setting(CUTMIX_ALPHA, 0.0)  # Beta(alpha, alpha) kept share; 0 disables CutMix


@dataclass
class EraseConfig:
    """Random erasing (CutOut), as timm's RandomErasing. Defaults are timm's, with prob 0 (off)."""

    prob: float = setting(PROBABILITY, 0.0)
    area: list[float] = setting(ERASE_AREA, factory=lambda: [0.02, 1 / 3])  # erased share of the image
    ratio: list[float] = setting(ERASE_RATIO, factory=lambda: [0.3, 1 / 0.3])  # aspect ratio, log-uniform
    mode: str = setting(ERASE_MODE, "const")
    views: str = setting(ERASE_VIEW, "augmented")  # augmented: the clean view stays clean; all: the clean view too


@dataclass
class AugMixConfig:
    """The ``augmix`` group. Defaults are the paper's CIFAR settings."""

    enabled: bool = setting(BOOLEAN, True)  # false: clean images only (the baseline)
    jsd: bool = setting(BOOLEAN, True)  # (clean, aug1, aug2) + JSD loss; false: one AugMix view with plain CE
    severity: int = setting(SEVERITY, 3)
    width: int = setting(WIDTH, 3)
    depth: int = setting(DEPTH, -1)
    alpha: float = setting(ALPHA, 1.0)
    all_ops: bool = setting(BOOLEAN, False)
    ops: Optional[list[str]] = setting(OP_LIST, None)
    fill: Any = setting(FILL, 0)
    placement: str = setting(PLACEMENT, "auto")  # auto: device when the trainer has an accelerator, else workers
    executor: str = setting(EXECUTOR, "auto")
    # MixUp / CutMix and random erasing, applied after AugMix to every view (all off by default).
    mixup: MixUpConfig = field(default_factory=MixUpConfig)
    cutmix: CutMixConfig = field(default_factory=CutMixConfig)
    mix_prob: float = setting(PROBABILITY, 1.0)
    switch_prob: float = setting(PROBABILITY, 0.5)
    mix_mode: str = setting(MIX_MODE, "batch")
    erase: EraseConfig = field(default_factory=EraseConfig)


# --- _target_ groups: keys from the callable, values from these tables ---------------------------

#: ``augmix.data.AugMixDataModule``'s arguments (train.py, make_corrupted.py, and data configs
#: read from checkpoints through ``augmix.allowlist``).
DATA: dict[str, Rules] = {
    "name": DATASET,
    "root": TEXT,
    "num_classes": CLASS_COUNT,
    "image_size": SIDE,
    "mean": CHANNELS,
    "std": STD,
    "batch_size": BATCH_SIZE,
    "batch_scope": BATCH_SCOPE,
    "eval_batch_size": BATCH_SIZE,
    "num_workers": WORKERS,
    "pin_memory": BOOLEAN,
    "persistent_workers": BOOLEAN,
    "drop_last": BOOLEAN,
    "download": BOOLEAN,
    "val_fraction": VAL_FRACTION,
    "seed": SEED,
    "verify_files": VERIFY_FILES,
    "on_bad_image": ON_BAD_IMAGE,
    "decode": DECODE,
}
#: ``augmix.module.AugMixModule``'s settings (the backbone is checked against timm's registry).
MODEL: dict[str, Any] = {
    "optimizer": {"lr": LEARNING_RATE, "weight_decay": NON_NEGATIVE_NUMBER, "momentum": NON_NEGATIVE_NUMBER},
    "scheduler": {"final_lr": NON_NEGATIVE_NUMBER, "gamma": POSITIVE_NUMBER},
    "lr_reference_batch": LR_REFERENCE_BATCH,
    "lr_warmup_epochs": LR_WARMUP_EPOCHS,
    # EMA weights (timm's ModelEmaV3): the keys model.ema accepts, each with its rule
    "ema": {"decay": EMA_DECAY, "evaluate": BOOLEAN},
    "pretrained": BOOLEAN,
    "split_bn": BOOLEAN,
    "channels_last": BOOLEAN,
    "compile": BOOLEAN,
}
#: ``augmix.losses.JSDLoss``'s arguments.
LOSS: dict[str, Rules] = {"weight": JSD_WEIGHT, "label_smoothing": LABEL_SMOOTHING}
#: The Trainer settings the project relies on.
TRAINER: dict[str, Rules] = {"max_epochs": MAX_EPOCHS}


@dataclass(kw_only=True)
class TrainConfig:
    """The top level of configs/train.yaml: its own keys and its config groups (a key schema that
    is never instantiated; the groups' values are checked by the schema named in each field)."""

    task_name: Any
    tags: Any
    seed: int = setting(SEED)
    ckpt_path: Any
    resume: bool = setting(BOOLEAN)
    optimized_metric: Any  # validate_objective
    test: bool = setting(BOOLEAN)
    evaluate_after_fit: Any  # evaluation.check_evaluate_after_fit
    val_corruptions: Any  # validate_val_corruptions
    augmix: AugMixConfig
    data: Any  # validate_data
    model: Any = setting(MODEL)
    loss: Any = setting(LOSS)
    trainer: Any = setting(TRAINER)
    callbacks: Any
    logger: Any
    paths: Any
    hydra: Any  # present in configs composed with return_hydra_config


#: Top-level keys of each entry config (configs/<name>.yaml): its own keys and its config groups,
#: each mapped to the schema its subtree is checked against, or None where the subtree is open
#: (checked against its ``_target_``'s arguments and by its own validator).
TRAIN_KEYS: dict[str, Any] = schema_fields(TrainConfig)
TRAIN_RULES: dict[str, Any] = rules_of(TrainConfig)
EVALUATE_KEYS: dict[str, Any] = {
    **dict.fromkeys(("task_name", "tags", "checkpoint", "checkpoint_weights", "ignore_checkpoint_config", "benchmark", "data", "trainer", "logger", "paths", "hydra")),
    "suite": None,  # checked by augmix.evaluation.inputs.suite
    "model": dict.fromkeys(("backbone", "backbone_kwargs")),
}
MAKE_CORRUPTED_KEYS: dict[str, Any] = dict.fromkeys(
    ("task_name", "format", "out", "corruptions", "extra", "seed", "limit", "workers", "data", "paths", "hydra")
)


def register_schemas() -> None:
    """The config nodes train.py and evaluate.py compose with: the ``augmix`` schema, and stand-ins
    for optional sweepers that are not installed (see ``augmix.extras``)."""
    ConfigStore.instance().store(group="augmix", name="schema", node=AugMixConfig)
    extras.register_stand_ins()


def metric_direction(metric: str) -> str:
    """Sweeper direction for a metric name: accuracies go up, errors and losses go down."""
    return "maximize" if "acc" in metric.rsplit("/", 1)[-1] else "minimize"


def short_hash(text: str) -> str:
    """8 hex digits naming a sweep job folder after its overrides (see hparams_search)."""
    return hashlib.sha256(str(text).encode()).hexdigest()[:8]


register_schemas()
for _name, _resolver in (
    ("metric_direction", metric_direction),
    ("short_hash", short_hash),
    ("corruptions", corruption_group),  # ${corruptions:held_out} in configs/val_corruptions/held_out.yaml
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)
# configs/hydra/launcher/submitit_slurm.yaml deliberately shares the plugin's node name, so that
# `hydra/launcher=submitit_slurm` gets this project's defaults. Hydra then also type-checks it
# against the plugin's schema and warns that such matching is deprecated; the file is complete on
# its own, so it keeps working when the matching goes away.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_slurm' is validated against ConfigStore schema")


def validate_data(data: DictConfig | dict) -> None:
    """The ``data`` node's values, and the DataModule arguments it may not leave out."""
    from augmix.data import AugMixDataModule

    for name, parameter in inspect.signature(AugMixDataModule).parameters.items():
        if parameter.default is parameter.empty and name in DATA and name not in data:
            check(f"data.{name}", None, DATA[name])
    check_table(data, DATA, "data.")
    crop = (data.get("train_transform") or {}).get("_target_", "")
    if data.get("decode") == "draft" and crop.rsplit(".", 1)[-1] != "RandomResizedCropFlip":
        fail("data.decode", "draft", f"has nothing to act on: only RandomResizedCropFlip training crops decode JPEG files in draft mode, not {crop}")


def validate_backbone(model: DictConfig) -> None:
    import timm

    import augmix.models  # noqa: F401  (registers the CIFAR architectures)

    backbone = model.get("backbone")
    if not isinstance(backbone, str) or not timm.is_model(backbone):
        close = difflib.get_close_matches(str(backbone), timm.list_models(), n=3)
        hint = f"; did you mean {close}?" if close else "; see timm.list_models() or the cifar_* models"
        fail("model.backbone", backbone, f"is not a registered timm model{hint}")


#: Metrics a run can hand to a sweeper, and what has to be configured for each to exist.
OPTIMIZABLE = {
    "val/acc": None,
    "val/acc5": None,
    "val/acc_best": None,
    "val/loss": None,
    "val/corruption_error": "val_corruptions",
    "test/acc": "test",
    "test/loss": "test",
    "robustness/clean_error": "evaluate_after_fit",
    "robustness/mean_corruption_error": "evaluate_after_fit",
}


def validate_objective(cfg: DictConfig) -> None:
    name = cfg.get("optimized_metric")
    if name is None:
        return
    if name not in OPTIMIZABLE:
        fail("optimized_metric", name, f"must be one of {list(OPTIMIZABLE)}")
    needs = OPTIMIZABLE[name]
    if needs and not cfg.get(needs):
        fail("optimized_metric", name, f"is only logged with {needs} set (e.g. val_corruptions=held_out, test=true)")


def validate_val_corruptions(node: DictConfig | None) -> None:
    if node is None:
        return
    check_corruptions("val_corruptions.corruptions", node.get("corruptions"))
    check_severities("val_corruptions.severities", node.get("severities"))
    limit = node.get("limit")
    if limit is not None and (not is_int(limit) or limit < 1):
        fail("val_corruptions.limit", limit, "must be null (the whole validation split) or an integer >= 1")


def validate_structure(cfg: DictConfig, keys: dict[str, Any], config_name: str) -> None:
    """Known keys only (``+`` typos included), arguments that their ``_target_`` takes, no nan or
    inf anywhere, and the optional packages the loggers need: the checks every entry point runs first."""
    check_known_keys(cfg, keys, owner=f"the top level of {config_name}.yaml")
    check_target_arguments(cfg)
    check_finite(cfg)
    extras.check_loggers(cfg.get("logger"))


def validate_evaluate(cfg: DictConfig) -> None:
    """Check a composed evaluate.py config (its benchmark node is checked by ``benchmark_spec``)."""
    validate_structure(cfg, EVALUATE_KEYS, "evaluate")
    check("checkpoint_weights", cfg.get("checkpoint_weights", "model"), CHECKPOINT_WEIGHT_SET)


def validate_make_corrupted(cfg: DictConfig) -> None:
    """Check a composed make_corrupted.py config (its data node is checked by ``write_corrupted``)."""
    validate_structure(cfg, MAKE_CORRUPTED_KEYS, "make_corrupted")


def configured_processes(trainer: DictConfig) -> int | None:
    """How many processes a trainer config runs (devices x nodes), when the config says it in
    numbers; None for ``devices: auto`` or ``-1`` (known once the Trainer has looked)."""
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    elif isinstance(devices, str) and "," in devices:  # "0,1,3": those devices
        devices = len([d for d in devices.split(",") if d.strip()])
    elif not isinstance(devices, int) and devices is not None and hasattr(devices, "__len__"):
        devices = len(devices)  # a list of device indices
    if devices is None:
        devices = 1
    if not is_int(devices) or devices < 1 or not is_int(nodes) or nodes < 1:
        return None
    return devices * nodes


def validate_batch(cfg: DictConfig) -> None:
    """A global batch that the configured processes cannot share evenly fails here, before any data
    is read (with ``devices: auto`` the Trainer's own count is checked when it is built)."""
    processes = configured_processes(cfg.trainer)
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    if processes is not None and is_int(accumulate) and accumulate >= 1:
        from augmix.schedules import batch_plan

        batch_plan(cfg.data.batch_size, cfg.data.get("batch_scope", "process"), processes, accumulate)


def validate_ema(model: DictConfig) -> None:
    ema = model.get("ema")
    if ema is None:
        return
    if not isinstance(ema, DictConfig):
        fail("model.ema", ema, "must be a mapping with decay and evaluate (e.g. model.ema.decay=0.9998)")
    check_known_keys(ema, dict.fromkeys(MODEL["ema"]), "model.ema.", "model.ema")
    if ema.get("evaluate") and ema.get("decay") is None:
        fail("model.ema.evaluate", True, "needs EMA weights to evaluate: set model.ema.decay (e.g. 0.9998)")


def may_run_several_processes(trainer: DictConfig) -> bool:
    """Could this trainer config run more than one process (devices or nodes above one)?"""
    return trainer.get("devices") not in (1, "1", None) or int(trainer.get("num_nodes") or 1) > 1


def validate(cfg: DictConfig) -> None:
    """Check a composed training config; raises ConfigError with a one-line message."""
    validate_structure(cfg, TRAIN_KEYS, "train")
    check_table(cfg, TRAIN_RULES)  # seed, augmix.*, model.*, loss.*, trainer.*: each key's own rules
    validate_data(cfg.data)
    validate_objective(cfg)
    validate_val_corruptions(cfg.get("val_corruptions"))
    validate_backbone(cfg.model)
    validate_ema(cfg.model)
    validate_batch(cfg)
    if may_run_several_processes(cfg.trainer):  # Lightning's default is true
        check("trainer.use_distributed_sampler", cfg.trainer.get("use_distributed_sampler", True), KEYED_SAMPLER)
    augmix, erase = cfg.augmix, cfg.augmix.erase
    if erase.prob > 0 and erase.views == "augmented" and not augmix.enabled:
        fail("augmix.erase.views", "augmented", "has no view to erase with augmix.enabled=false; use augmix.erase.views=all")
    if cfg.model.get("split_bn") and cfg.trainer.get("sync_batchnorm"):
        fail("trainer.sync_batchnorm", True, "would turn the auxiliary BatchNorm of model.split_bn=true back into one shared BN; turn one of them off")
    if cfg.model.get("split_bn") and not (augmix.enabled and augmix.jsd):
        fail("model.split_bn", True, "needs clean and augmented views in each batch: set augmix.enabled=true and augmix.jsd=true")
