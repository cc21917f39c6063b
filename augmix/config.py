"""Structured-config schemas and start-up validation.

The schemas are registered in Hydra's ConfigStore, so a mistyped key or a value of the wrong type
in the ``augmix`` group fails at composition. Keys added with ``+`` bypass that, so ``validate``
(and ``validate_evaluate`` / ``validate_make_corrupted``) first compare the whole config with the
schemas below, then check ranges and names, and raise a one-line ``ConfigError`` naming the key,
before any data is touched.
"""

from __future__ import annotations

import difflib
import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from augmix.augment.ops import ALL_OPS
from augmix.config_checks import check_finite, check_known_keys, check_target_arguments
from augmix.corruptions.names import check_corruptions, check_severities, corruption_group
from augmix.erasing import ERASE_MODES
from augmix.mixing import MIX_MODES
from augmix.rules import fail, is_int, is_number, is_pair

DATASETS = ("cifar10", "cifar100", "imagenet", "tinyimagenet", "imagefolder", "digits")
PLACEMENTS = ("auto", "workers", "device")
EXECUTORS = ("auto", "grouped", "fused")
ERASE_VIEWS = ("augmented", "all")


@dataclass
class MixUpConfig:
    alpha: float = 0.0  # Beta(alpha, alpha) mixing weight; 0 disables MixUp


@dataclass
class CutMixConfig:
    alpha: float = 0.0  # Beta(alpha, alpha) kept share; 0 disables CutMix


@dataclass
class EraseConfig:
    """Random erasing (CutOut), as timm's RandomErasing. Defaults are timm's, with prob 0 (off)."""

    prob: float = 0.0
    area: list[float] = field(default_factory=lambda: [0.02, 1 / 3])  # erased share of the image
    ratio: list[float] = field(default_factory=lambda: [0.3, 1 / 0.3])  # aspect ratio, log-uniform
    mode: str = "const"
    views: str = "augmented"  # augmented: the clean view stays clean; all: the clean view too


@dataclass
class AugMixConfig:
    """The ``augmix`` group. Defaults are the paper's CIFAR settings."""

    enabled: bool = True  # false: clean images only (the baseline)
    jsd: bool = True  # (clean, aug1, aug2) + JSD loss; false: one AugMix view with plain CE
    severity: int = 3
    width: int = 3
    depth: int = -1
    alpha: float = 1.0
    all_ops: bool = False
    ops: Optional[list[str]] = None
    fill: Any = 0
    placement: str = "auto"  # auto: device when the trainer has an accelerator, else workers
    executor: str = "auto"
    # MixUp / CutMix and random erasing, applied after AugMix to every view (all off by default).
    mixup: MixUpConfig = field(default_factory=MixUpConfig)
    cutmix: CutMixConfig = field(default_factory=CutMixConfig)
    mix_prob: float = 1.0
    switch_prob: float = 0.5
    mix_mode: str = "batch"
    erase: EraseConfig = field(default_factory=EraseConfig)


#: Top-level keys of each entry config (configs/<name>.yaml): its own keys and its config groups,
#: each mapped to the schema its subtree is checked against, or None where the subtree is open
#: (checked against its ``_target_``'s arguments and by its own validator). ``hydra`` is there for
#: configs composed with return_hydra_config.
TRAIN_KEYS: dict[str, Any] = {
    **dict.fromkeys(("task_name", "tags", "seed", "ckpt_path", "resume", "optimized_metric", "test")),
    **dict.fromkeys(("evaluate_after_fit", "val_corruptions", "data", "model", "loss", "trainer")),
    **dict.fromkeys(("callbacks", "logger", "paths", "hydra")),
    "augmix": AugMixConfig,
}
EVALUATE_KEYS: dict[str, Any] = {
    **dict.fromkeys(("task_name", "tags", "checkpoint", "ignore_checkpoint_config", "benchmark", "data", "trainer", "logger", "paths", "hydra")),
    "suite": None,  # checked by augmix.evaluation.inputs.suite
    "model": dict.fromkeys(("backbone", "backbone_kwargs")),
}
MAKE_CORRUPTED_KEYS: dict[str, Any] = dict.fromkeys(
    ("task_name", "format", "out", "corruptions", "extra", "seed", "limit", "workers", "data", "paths", "hydra")
)


def register_schemas() -> None:
    ConfigStore.instance().store(group="augmix", name="schema", node=AugMixConfig)


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


def validate_augmix(augmix: DictConfig | dict, prefix: str = "augmix") -> None:
    get = augmix.get
    if not is_int(get("severity")) or not 1 <= get("severity") <= 10:
        fail(f"{prefix}.severity", get("severity"), "must be an integer in 1..10 (paper: 3 on CIFAR, 1 on ImageNet)")
    if not is_int(get("width")) or get("width") < 1:
        fail(f"{prefix}.width", get("width"), "must be an integer >= 1 (paper: 3)")
    if not is_int(get("depth")) or get("depth") not in (-1, 1, 2, 3):
        fail(f"{prefix}.depth", get("depth"), "must be -1 (random 1-3 per chain) or 1, 2 or 3")
    if not is_number(get("alpha")) or get("alpha") <= 0:
        fail(f"{prefix}.alpha", get("alpha"), "must be a number > 0 (paper: 1)")
    ops = get("ops")
    if ops is not None:
        unknown = [op for op in ops if op not in ALL_OPS]
        if unknown or len(ops) == 0:
            fail(f"{prefix}.ops", ops, f"must be a non-empty list drawn from {list(ALL_OPS)}")
    fill = get("fill", 0)
    values = list(fill) if isinstance(fill, (list, tuple, ListConfig)) else [fill]
    if len(values) not in (1, 3) or not all(is_number(v) and 0 <= v <= 255 for v in values):
        fail(f"{prefix}.fill", fill, "must be a number in 0..255 or a list of 3 (one per channel)")
    if get("placement") not in PLACEMENTS:
        fail(f"{prefix}.placement", get("placement"), f"must be one of {list(PLACEMENTS)}")
    if get("executor") not in EXECUTORS:
        fail(f"{prefix}.executor", get("executor"), f"must be one of {list(EXECUTORS)}")


def _check_probability(key: str, value: Any) -> None:
    if not is_number(value) or not 0.0 <= value <= 1.0:
        fail(key, value, "must be a probability in [0, 1]")


def validate_mixing(augmix: DictConfig | dict, prefix: str = "augmix") -> None:
    """MixUp/CutMix and random erasing; they apply with or without AugMix, so always checked."""
    get = augmix.get
    for method, name in (("mixup", "MixUp"), ("cutmix", "CutMix")):
        alpha = get(method).get("alpha")
        if not is_number(alpha) or alpha < 0:
            fail(f"{prefix}.{method}.alpha", alpha, f"must be a number >= 0 (0 disables {name}; 1 is usual on CIFAR)")
    _check_probability(f"{prefix}.mix_prob", get("mix_prob"))
    _check_probability(f"{prefix}.switch_prob", get("switch_prob"))
    if get("mix_mode") not in MIX_MODES:
        fail(f"{prefix}.mix_mode", get("mix_mode"), f"must be one of {list(MIX_MODES)}")
    erase = get("erase")
    _check_probability(f"{prefix}.erase.prob", erase.get("prob"))
    area, ratio = erase.get("area"), erase.get("ratio")
    if not is_pair(area) or not 0 < area[0] <= area[1] <= 1:
        fail(f"{prefix}.erase.area", area, "must be [min, max] with 0 < min <= max <= 1 (shares of the image; timm: [0.02, 1/3])")
    if not is_pair(ratio) or not 0 < ratio[0] <= ratio[1]:
        fail(f"{prefix}.erase.ratio", ratio, "must be [min, max] with 0 < min <= max (aspect ratios; timm: [0.3, 1/0.3])")
    if erase.get("mode") not in ERASE_MODES:
        fail(f"{prefix}.erase.mode", erase.get("mode"), f"must be one of {list(ERASE_MODES)}")
    if erase.get("views") not in ERASE_VIEWS:
        fail(f"{prefix}.erase.views", erase.get("views"), f"must be one of {list(ERASE_VIEWS)}")
    if erase.get("prob") > 0 and erase.get("views") == "augmented" and not get("enabled"):
        fail(f"{prefix}.erase.views", "augmented", f"has no view to erase with {prefix}.enabled=false; use {prefix}.erase.views=all")


def validate_data(data: DictConfig) -> None:
    if data.get("name") not in DATASETS:
        fail("data.name", data.get("name"), f"must be one of {list(DATASETS)}")
    for key in ("batch_size", "eval_batch_size"):
        if not is_int(data.get(key)) or data.get(key) < 1:
            fail(f"data.{key}", data.get(key), "must be an integer >= 1")
    if not is_int(data.get("num_workers")) or data.get("num_workers") < 0:
        fail("data.num_workers", data.get("num_workers"), "must be an integer >= 0")
    fraction = data.get("val_fraction", 0.0)
    if not is_number(fraction) or not 0.0 <= fraction < 1.0:
        fail("data.val_fraction", fraction, "must be in [0, 1): the share of the training set held out for validation")
    for key in ("mean", "std"):
        values = data.get(key)
        if not isinstance(values, (list, tuple, ListConfig)) or len(values) != 3 or not all(is_number(v) for v in values):
            fail(f"data.{key}", values, "must be a list of 3 numbers, one per RGB channel")
    if any(v <= 0 for v in data.get("std")):
        fail("data.std", data.get("std"), "must be positive")
    if not is_int(data.get("num_classes")) or data.get("num_classes") < 2:
        fail("data.num_classes", data.get("num_classes"), "must be an integer >= 2")
    if not isinstance(data.get("verify_files", True), bool):
        fail("data.verify_files", data.get("verify_files"), "must be true or false (check every image file before training)")
    if data.get("on_bad_image", "error") not in ("error", "skip"):
        fail("data.on_bad_image", data.get("on_bad_image"), "must be 'error' (stop, naming the file) or 'skip' (leave it out)")


def validate_model(model: DictConfig) -> None:
    import timm

    import augmix.models  # noqa: F401  (registers the CIFAR architectures)

    backbone = model.get("backbone")
    if not isinstance(backbone, str) or not timm.is_model(backbone):
        close = difflib.get_close_matches(str(backbone), timm.list_models(), n=3)
        hint = f"; did you mean {close}?" if close else "; see timm.list_models() or the cifar_* models"
        fail("model.backbone", backbone, f"is not a registered timm model{hint}")
    lr = model.get("optimizer", {}).get("lr")
    if not is_number(lr) or lr <= 0:
        fail("model.optimizer.lr", lr, "must be a number > 0")
    if not isinstance(model.get("split_bn", False), bool):
        fail("model.split_bn", model.get("split_bn"), "must be true or false")


def validate_loss(loss: DictConfig) -> None:
    if not is_number(loss.get("weight")) or loss.get("weight") < 0:
        fail("loss.weight", loss.get("weight"), "must be a number >= 0 (the JSD weight lambda; paper: 12)")
    smoothing = loss.get("label_smoothing", 0.0)
    if not is_number(smoothing) or not 0.0 <= smoothing < 1.0:
        fail("loss.label_smoothing", smoothing, "must be in [0, 1) (paper: 0)")


def validate_trainer(trainer: DictConfig) -> None:
    epochs = trainer.get("max_epochs")
    if epochs is not None and (not is_int(epochs) or epochs < 1):
        fail("trainer.max_epochs", epochs, "must be an integer >= 1")


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
    """Known keys only (``+`` typos included), arguments that their ``_target_`` takes, and no
    nan or inf anywhere: the checks every entry point runs first."""
    check_known_keys(cfg, keys, owner=f"the top level of {config_name}.yaml")
    check_target_arguments(cfg)
    check_finite(cfg)


def validate_evaluate(cfg: DictConfig) -> None:
    """Check a composed evaluate.py config (its benchmark node is checked by ``benchmark_spec``)."""
    validate_structure(cfg, EVALUATE_KEYS, "evaluate")


def validate_make_corrupted(cfg: DictConfig) -> None:
    """Check a composed make_corrupted.py config (its data node is checked by ``write_corrupted``)."""
    validate_structure(cfg, MAKE_CORRUPTED_KEYS, "make_corrupted")


def validate(cfg: DictConfig) -> None:
    """Check a composed training config; raises ConfigError with a one-line message."""
    validate_structure(cfg, TRAIN_KEYS, "train")
    if not is_int(cfg.get("seed")) or cfg.get("seed") < 0:
        fail("seed", cfg.get("seed"), "must be a non-negative integer")
    validate_augmix(cfg.augmix)
    validate_mixing(cfg.augmix)
    validate_data(cfg.data)
    validate_objective(cfg)
    validate_val_corruptions(cfg.get("val_corruptions"))
    validate_model(cfg.model)
    if cfg.model.get("split_bn") and cfg.trainer.get("sync_batchnorm"):
        fail("trainer.sync_batchnorm", True, "would turn the auxiliary BatchNorm of model.split_bn=true back into one shared BN; turn one of them off")
    if cfg.model.get("split_bn") and not (cfg.augmix.enabled and cfg.augmix.jsd):
        fail("model.split_bn", True, "needs clean and augmented views in each batch: set augmix.enabled=true and augmix.jsd=true")
    validate_loss(cfg.loss)
    validate_trainer(cfg.trainer)
