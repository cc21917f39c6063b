"""Every config composes and instantiates; bad values fail early with a one-line message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from augmix import AugMix
from augmix.config import validate
from augmix.erasing import RandomErasing
from augmix.errors import ConfigError
from augmix.losses import JSDLoss
from augmix.mixing import MixUpCutMix
from augmix.module import AugMixModule
from augmix.training import build_callbacks, build_datamodule, build_model
from tests.conftest import ROOT, compose_train

EXPERIMENTS = sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))


def test_default_config_is_the_paper_cifar10_recipe():
    cfg = compose_train()
    assert cfg.data.name == "cifar10" and cfg.model.backbone == "cifar_wrn40_2"
    assert cfg.trainer.max_epochs == 100 and cfg.data.batch_size == 128
    assert cfg.model.optimizer.lr == 0.1 and cfg.model.optimizer.nesterov and cfg.model.optimizer.weight_decay == 5e-4
    assert cfg.model.scheduler._target_ == "augmix.schedules.cosine" and cfg.model.scheduler.final_lr == 1e-6
    assert (cfg.augmix.severity, cfg.augmix.width, cfg.augmix.depth, cfg.augmix.alpha) == (3, 3, -1, 1.0)
    assert cfg.augmix.jsd and cfg.loss.weight == 12.0 and "wandb" in cfg.logger


@pytest.mark.parametrize(
    "experiment, expected",
    [
        ("cifar10_wrn40_2", {"backbone": "cifar_wrn40_2", "epochs": 100, "wd": 5e-4, "data": "cifar10"}),
        ("cifar100_wrn40_2", {"backbone": "cifar_wrn40_2", "epochs": 100, "wd": 5e-4, "data": "cifar100"}),
        ("cifar10_resnext29", {"backbone": "cifar_resnext29_4x32", "epochs": 200, "wd": 5e-4, "data": "cifar10"}),
        ("cifar10_densenet", {"backbone": "cifar_densenet40_12", "epochs": 200, "wd": 1e-4, "data": "cifar10"}),
        ("cifar10_allconv", {"backbone": "cifar_allconv", "epochs": 100, "wd": 5e-4, "data": "cifar10"}),
        ("imagenet_resnet50", {"backbone": "resnet50", "epochs": 180, "wd": 1e-4, "data": "imagenet"}),
    ],
)
def test_paper_recipes(experiment, expected):
    cfg = compose_train(f"experiment={experiment}")
    assert cfg.model.backbone == expected["backbone"] and cfg.data.name == expected["data"]
    assert cfg.trainer.max_epochs == expected["epochs"]
    assert cfg.model.optimizer.weight_decay == expected["wd"]
    if experiment == "imagenet_resnet50":
        assert cfg.augmix.severity == 1 and cfg.model.lr_reference_batch == 256
        assert cfg.model.scheduler._target_ == "augmix.schedules.step_thirds" and not cfg.model.optimizer.nesterov
    else:
        assert cfg.data.batch_size == 128 and cfg.model.optimizer.nesterov


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_validates_and_instantiates(experiment, tmp_path: Path):
    cfg = compose_train(f"experiment={experiment}", f"paths.output_dir={tmp_path}", "logger=csv")
    validate(cfg)
    data = build_datamodule(cfg)
    assert data.num_classes == cfg.data.num_classes
    model = build_model(cfg)
    assert isinstance(model, AugMixModule) and isinstance(model.loss, JSDLoss)
    assert (model.hparams.num_views, model.hparams.jsd) == (data.views.num_views, data.views.jsd) == (3, True)
    callbacks = build_callbacks(cfg.callbacks, has_logger=True)
    assert {type(c).__name__ for c in callbacks} >= {"ModelCheckpoint", "AugMixSamples", "MetricsJSON"}
    trainer_cfg = OmegaConf.to_container(cfg.trainer)
    assert trainer_cfg["use_distributed_sampler"] is False


@pytest.mark.parametrize("logger", ["wandb", "csv", "tensorboard", "none"])
def test_logger_choices_compose(logger):
    cfg = compose_train(f"logger={logger}")
    assert (cfg.logger is None or len(cfg.logger) == 0) if logger == "none" else logger in cfg.logger


@pytest.mark.parametrize(
    "override, message",
    [
        ("augmix.severity=0", "augmix.severity=0 is invalid: must be an integer in 1..10"),
        ("augmix.severity=11", "augmix.severity=11 is invalid"),
        ("augmix.width=0", "augmix.width=0 is invalid: must be an integer >= 1"),
        ("augmix.depth=4", "augmix.depth=4 is invalid"),
        ("augmix.depth=0", "augmix.depth=0 is invalid"),
        ("augmix.alpha=0", "augmix.alpha=0.0 is invalid: must be a number > 0"),
        ("augmix.alpha=-1", "augmix.alpha=-1.0 is invalid"),
        ("augmix.ops=[rotate,blur]", "augmix.ops=['rotate', 'blur'] is invalid"),
        ("augmix.fill=300", "augmix.fill=300 is invalid"),
        ("augmix.placement=gpu", "augmix.placement='gpu' is invalid"),
        ("data.name=cifar11", "data.name='cifar11' is invalid"),
        ("data.batch_size=0", "data.batch_size=0 is invalid"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5 is invalid"),
        ("model.backbone=resnet5", "model.backbone='resnet5' is invalid"),
        ("model.optimizer.lr=0", "model.optimizer.lr=0 is invalid"),
        ("loss.weight=-1", "loss.weight=-1 is invalid"),
        ("loss.label_smoothing=1.0", "loss.label_smoothing=1.0 is invalid"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid"),
        ("seed=-3", "seed=-3 is invalid"),
        ("optimized_metric=val/corruption_eror", "optimized_metric='val/corruption_eror' is invalid: must be one of"),
        ("optimized_metric=val/corruption_error", "optimized_metric='val/corruption_error' is invalid: is only logged with val_corruptions"),
        ("optimized_metric=test/acc", "optimized_metric='test/acc' is invalid: is only logged with test"),
        ("data.mean=[0.5]", "data.mean=[0.5] is invalid: must be a list of 3 numbers"),
        ("data.std=[0.5,0,0.5]", "data.std=[0.5, 0, 0.5] is invalid: must be positive"),
    ],
)
def test_bad_values_get_one_line_errors_naming_the_key(override, message):
    cfg = compose_train(override)
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    text = str(error.value)
    assert text.startswith(message) and "\n" not in text


def test_backbone_typo_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean"):
        validate(compose_train("model.backbone=cifar_wrn40_3"))


@pytest.mark.parametrize("override", ["augmix.sevrity=3", "augmix.width=abc", "augmix.jsd=maybe"])
def test_schema_rejects_unknown_keys_and_wrong_types_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        compose_train(override)


def test_split_bn_with_sync_batchnorm_is_refused():
    with pytest.raises(ConfigError, match="trainer.sync_batchnorm=True is invalid"):
        validate(compose_train("model.split_bn=true", "trainer=ddp", "trainer.sync_batchnorm=true"))


@pytest.mark.parametrize(
    "override, key",
    [
        ("val_corruptions.corruptions=[fog,rain]", "val_corruptions.corruptions"),
        ("val_corruptions.severities=[0]", "val_corruptions.severities"),
        ("val_corruptions.limit=0", "val_corruptions.limit"),
    ],
)
def test_held_out_corruption_settings_are_checked(override, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        validate(compose_train("val_corruptions=held_out", override))


def test_held_out_corruptions_are_read_from_the_one_constant_not_retyped():
    from augmix.corruptions import EXTRA_CORRUPTIONS, HELD_OUT_CORRUPTIONS

    raw = OmegaConf.load(ROOT / "configs" / "val_corruptions" / "held_out.yaml")
    assert OmegaConf.is_interpolation(raw, "corruptions")  # a list typed here could drift from the code
    cfg = compose_train("val_corruptions=held_out")
    assert tuple(cfg.val_corruptions.corruptions) == HELD_OUT_CORRUPTIONS == EXTRA_CORRUPTIONS


@pytest.mark.parametrize("place", ["val_corruptions", "benchmark", "CorruptedSource", "write_cifar_c", "corrupt_batch"])
def test_every_place_that_takes_corruption_names_phrases_a_bad_one_alike(place, tmp_path):
    """One check (augmix.corruptions.names) behind every entry point that takes corruption names."""
    import numpy as np

    from augmix.corruptions import corrupt_batch, write_cifar_c
    from augmix.data.corrupted import CorruptedSource
    from augmix.evaluation import benchmark_spec

    calls = {
        "val_corruptions": lambda: validate(compose_train("val_corruptions=held_out", "val_corruptions.corruptions=[fog,haze]")),
        "benchmark": lambda: benchmark_spec({"name": "b", "format": "synthetic", "corruptions": ["fog", "haze"]}),
        "CorruptedSource": lambda: CorruptedSource(None, ["fog", "haze"], [1], None),
        "write_cifar_c": lambda: write_cifar_c(np.zeros((1, 8, 8, 3), np.uint8), [0], tmp_path, ["fog", "haze"]),
        "corrupt_batch": lambda: corrupt_batch(np.zeros((1, 8, 8, 3), np.uint8), "haze", 1, 0),
    }
    with pytest.raises(ConfigError, match=r"=.*is invalid: unknown (name\(s\) \['haze'\]|corruption); choose from \['gaussian_noise'"):
        calls[place]()


def test_split_bn_on_a_model_without_batchnorm_is_refused():
    from augmix.training import instantiate_node

    cfg = compose_train("model.split_bn=true", "model.backbone=convnext_atto")
    with pytest.raises(ConfigError, match="has no BatchNorm layers"):
        instantiate_node(cfg.model, loss=instantiate(cfg.loss))


def test_a_logger_whose_optional_packages_are_missing_is_refused_with_the_install_line(monkeypatch):
    from augmix import extras

    monkeypatch.setattr(extras, "_installed", lambda module: module not in ("tensorboard", "tensorboardX"))
    with pytest.raises(ConfigError) as error:
        validate(compose_train("logger=tensorboard"))
    assert str(error.value) == (
        "logger=tensorboard needs the optional 'tensorboard' packages (tensorboard or tensorboardX not installed): "
        'pip install -e ".[tensorboard]"'
    )
    validate(compose_train("logger=csv"))


@pytest.mark.parametrize(
    "override, build",
    [
        ("augmix.severity=11", lambda: AugMix(severity=11)),
        ("augmix.depth=0", lambda: AugMix(depth=0)),
        ("augmix.fill=300", lambda: AugMix(fill=300)),
        ("loss.label_smoothing=1.0", lambda: JSDLoss(label_smoothing=1.0)),
        ("augmix.mix_mode=pairs", lambda: MixUpCutMix(1.0, 0.0, 10, mode="pairs")),
        ("augmix.erase.area=[0.5,0.1]", lambda: RandomErasing(0.5, area=(0.5, 0.1))),
    ],
)
def test_the_classes_for_your_own_code_refuse_what_the_config_refuses_in_the_same_words(override, build):
    with pytest.raises(ConfigError) as from_config:
        validate(compose_train(override))
    with pytest.raises(ConfigError) as from_code:
        build()
    assert str(from_code.value).split(" is invalid: ")[1] == str(from_config.value).split(" is invalid: ")[1]


def test_a_multi_process_trainer_must_leave_sharding_to_the_keyed_sampler():
    with pytest.raises(ConfigError, match=r"^trainer.use_distributed_sampler=True is invalid: must be false"):
        validate(compose_train("trainer=ddp_cpu", "trainer.use_distributed_sampler=true"))
    validate(compose_train("trainer.use_distributed_sampler=true"))  # one process: nothing to replace
