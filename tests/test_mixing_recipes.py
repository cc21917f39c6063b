"""MixUp/CutMix/erasing/split-BN settings: validation, recipes, and real training runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import timm
import torch
from hydra.errors import ConfigCompositionException

from augmix.config import validate
from augmix.errors import ConfigError
from augmix.models.split_bn import AUX_BN_KEY, strip_aux_bn
from augmix.module import CONFIG_KEY
from augmix.training import train
from tests.conftest import compose_train


def test_defaults_keep_the_paper_recipe():
    cfg = compose_train()
    assert cfg.augmix.mixup.alpha == 0 and cfg.augmix.cutmix.alpha == 0 and cfg.augmix.erase.prob == 0
    assert cfg.augmix.erase.views == "augmented" and cfg.augmix.erase.mode == "const"
    assert cfg.loss.label_smoothing == 0 and cfg.model.split_bn is False


@pytest.mark.parametrize(
    "experiment, mixup, cutmix, mix_prob",
    [("cifar10_wrn40_2_mixup", 1.0, 0.0, 1.0), ("cifar10_wrn40_2_cutmix", 0.0, 1.0, 0.5)],
)
def test_mixing_recipes_extend_the_wrn_recipe(experiment, mixup, cutmix, mix_prob):
    base, cfg = compose_train("experiment=cifar10_wrn40_2"), compose_train(f"experiment={experiment}")
    validate(cfg)
    assert (cfg.augmix.mixup.alpha, cfg.augmix.cutmix.alpha, cfg.augmix.mix_prob) == (mixup, cutmix, mix_prob)
    assert cfg.augmix.jsd and cfg.task_name == experiment
    assert cfg.model == base.model and cfg.data == base.data and cfg.trainer == base.trainer and cfg.loss == base.loss


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("augmix.mixup.alpha=-1",), "augmix.mixup.alpha=-1.0 is invalid: must be a number >= 0"),
        (("augmix.cutmix.alpha=-0.5",), "augmix.cutmix.alpha=-0.5 is invalid: must be a number >= 0"),
        (("augmix.mix_prob=1.5",), "augmix.mix_prob=1.5 is invalid: must be a probability in [0, 1]"),
        (("augmix.switch_prob=-0.1",), "augmix.switch_prob=-0.1 is invalid: must be a probability in [0, 1]"),
        (("augmix.mix_mode=pairs",), "augmix.mix_mode='pairs' is invalid: must be one of ['batch', 'pair', 'elem']"),
        (("augmix.erase.prob=2",), "augmix.erase.prob=2.0 is invalid: must be a probability in [0, 1]"),
        (("augmix.erase.area=[0.5,0.1]",), "augmix.erase.area=[0.5, 0.1] is invalid: must be [min, max]"),
        (("augmix.erase.area=[0.1]",), "augmix.erase.area=[0.1] is invalid"),
        (("augmix.erase.area=[0,0.3]",), "augmix.erase.area=[0.0, 0.3] is invalid"),
        (("augmix.erase.ratio=[0,1]",), "augmix.erase.ratio=[0.0, 1.0] is invalid: must be [min, max] with 0 < min"),
        (("augmix.erase.mode=zero",), "augmix.erase.mode='zero' is invalid: must be one of ['const', 'rand', 'pixel']"),
        (("augmix.erase.views=clean",), "augmix.erase.views='clean' is invalid: must be one of ['augmented', 'all']"),
        (("augmix.enabled=false", "augmix.erase.prob=0.5"), "augmix.erase.views='augmented' is invalid: has no view"),
        (("model.split_bn=true", "augmix.jsd=false"), "model.split_bn=True is invalid: needs clean and augmented views"),
        (("model.split_bn=true", "augmix.enabled=false"), "model.split_bn=True is invalid"),
        (("model.split_bn=maybe",), "model.split_bn='maybe' is invalid: must be true or false"),
    ],
)
def test_bad_mixing_values_get_one_line_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(compose_train(*overrides))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("override", ["augmix.mixup.alhpa=1", "augmix.erase.prob=abc", "augmix.erase.colour=0"])
def test_schema_rejects_unknown_nested_keys_and_wrong_types(override):
    with pytest.raises(ConfigCompositionException):
        compose_train(override)


def test_valid_mixing_settings_pass():
    validate(compose_train("augmix.mixup.alpha=0.2", "augmix.cutmix.alpha=1", "augmix.mix_mode=elem",
                           "augmix.erase.prob=0.25", "augmix.erase.mode=pixel", "augmix.erase.views=all",
                           "model.split_bn=true", "loss.label_smoothing=0.1"))
    validate(compose_train("augmix.enabled=false", "augmix.erase.prob=0.5", "augmix.erase.views=all"))


# -------------------------------------------------------------------------------------- training


def fit(tmp_path: Path, *overrides: str) -> dict:
    """A short quickstart fit; the corruption benchmark after fitting is not what these tests check."""
    cfg = compose_train(
        "experiment=quickstart", "logger=csv", f"paths.output_dir={tmp_path}", "++evaluate_after_fit=null", *overrides
    )
    return train(cfg)


def test_split_bn_checkpoint_loads_into_the_plain_backbone_without_auxiliary_keys(tmp_path):
    fit(tmp_path, "model.split_bn=true", "augmix.cutmix.alpha=1.0", "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1", "trainer.max_epochs=1")
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint[CONFIG_KEY]["model"]["split_bn"] is True
    weights = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    auxiliary = [k for k in weights if AUX_BN_KEY.search(k)]
    assert auxiliary and all(".aux_bn." in k for k in auxiliary)
    assert any(not torch.equal(weights[k], weights[k.replace(".aux_bn.", ".")]) for k in auxiliary if "running_mean" in k)
    plain = timm.create_model("cifar_wrn16_1", num_classes=10)
    plain.load_state_dict(strip_aux_bn(weights), strict=True)


@pytest.mark.slow
def test_quickstart_with_mixup_and_jsd_reports_accuracy_and_the_loss_decreases(tmp_path):
    metrics = fit(tmp_path, "augmix.mixup.alpha=1.0", "+trainer.limit_train_batches=6", "+trainer.limit_val_batches=1",
                  "trainer.max_epochs=3")
    assert 0.0 <= metrics["val/acc"] <= 1.0 and 0.0 <= metrics["train/acc"] <= 1.0 and metrics["train/jsd_epoch"] > 0
    rows = list(csv.DictReader((next(tmp_path.glob("csv/*/metrics.csv"))).open()))
    epoch_losses = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert len(epoch_losses) == 3 and epoch_losses[-1] < epoch_losses[0]
