"""Global-batch semantics: the recipe's batch on any number of devices, linear lr scaling, the
warmup large batches get, and the documented lr curve for 1, 8 and 16 simulated devices."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from augmix.config import validate
from augmix.data.batches import KeyedBatchSampler
from augmix.errors import ConfigError
from augmix.fingerprint import run_fingerprint
from augmix.schedules import batch_plan, cosine
from augmix.training import build_datamodule, build_model, check_batch_plan, check_resumable
from tests.conftest import compose_train

STEPS_PER_EPOCH, EPOCHS = 10, 18  # a short run with the recipe's shape: thirds at epochs 6 and 12
IMAGENET_TRAIN = 1_281_167


pytestmark = pytest.mark.usefixtures("one_thread")


def simulated(devices: int, *overrides: str):
    """The ImageNet recipe as `train.py experiment=imagenet_resnet50 ... trainer.devices=N` composes it,
    on CPU processes (nothing is started: a Trainer only counts them), with a small backbone (the lr
    does not depend on it)."""
    cfg = compose_train(
        "experiment=imagenet_resnet50", "trainer=ddp_cpu", f"trainer.devices={devices}", f"trainer.max_epochs={EPOCHS}",
        "model.backbone=cifar_wrn16_1", "logger=csv", "paths.output_dir=unused", *overrides,
    )
    validate(cfg)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    return cfg, trainer


def lr_curve(cfg, trainer) -> list[float]:
    """The lr of every optimizer step, read from the scheduler the module configures, stepped once per step."""
    model = build_model(cfg)
    model.trainer = trainer
    configured = model.optimization(STEPS_PER_EPOCH * EPOCHS, STEPS_PER_EPOCH)
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    curve = []
    for _ in range(STEPS_PER_EPOCH * EPOCHS):
        curve.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: changes nothing, keeps the scheduler's order check quiet
        scheduler.step()
    return curve


def documented(step: int, lr: float, batch: int, reference: int = 256, warmup_epochs: float = 5) -> float:
    """README / augmix.schedules: lr(s) = lr x B/B_ref x w(s) x f(s), w ramps from B_ref/B to 1 over
    the warmup steps (only when B > B_ref), f = step_thirds (0.1 after each third of the epochs)."""
    scaled = lr * batch / reference
    warmup = round(warmup_epochs * STEPS_PER_EPOCH) if batch > reference else 0
    start = reference / batch
    w = start + (1 - start) * step / warmup if step < warmup else 1.0
    f = 0.1 ** min((step // STEPS_PER_EPOCH) // (EPOCHS // 3), 2)
    return scaled * w * f


@pytest.mark.parametrize("devices", [1, 8, 16])
def test_the_recipe_keeps_its_global_batch_256_and_lr_0_1_on_any_device_count(devices):
    cfg, trainer = simulated(devices)
    data = build_datamodule(cfg)
    data.trainer = trainer
    plan = data.batch_plan()
    assert (plan.global_batch, plan.per_process, plan.processes) == (256, 256 // devices, devices)
    curve = lr_curve(cfg, trainer)
    assert curve == pytest.approx([documented(s, 0.1, 256) for s in range(len(curve))], rel=1e-12, abs=0)
    assert curve[0] == pytest.approx(0.1) and curve[-1] == pytest.approx(0.001)  # no warmup: 0.1, /10, /100
    # every device count takes the same steps per epoch over ImageNet's 1,281,167 training images
    steps = len(KeyedBatchSampler(IMAGENET_TRAIN, plan.per_process, True, False, 0, 0, devices))
    assert steps == math.ceil(IMAGENET_TRAIN / 256) == 5005


@pytest.mark.parametrize("devices", [1, 8, 16])
def test_a_larger_global_batch_scales_the_lr_and_warms_up_from_the_reference_lr(devices, caplog):
    cfg, trainer = simulated(devices, "data.batch_size=2048")
    with caplog.at_level(logging.INFO, logger="augmix.module"):
        curve = lr_curve(cfg, trainer)
    assert curve == pytest.approx([documented(s, 0.1, 2048) for s in range(len(curve))], rel=1e-12, abs=0)
    warmup = 5 * STEPS_PER_EPOCH
    assert curve[0] == pytest.approx(0.1) and curve[warmup] == pytest.approx(0.8)
    assert all(b > a for a, b in zip(curve[:warmup], curve[1 : warmup + 1])), "linear, rising every step"
    assert curve[warmup : 6 * STEPS_PER_EPOCH] == pytest.approx([0.8] * STEPS_PER_EPOCH)
    logged = [r.getMessage() for r in caplog.records if r.name == "augmix.module"]
    assert logged == [
        f"global batch 2048 = {2048 // devices} per process x {devices} process(es) x 1 accumulated "
        "(data.batch_scope=global); lr 0.8 = 0.1 x 2048 / 256 (model.lr_reference_batch); "
        "warmup 5 epochs = 50 steps, linear from 0.1 to 0.8 (model.lr_warmup_epochs)"
    ]


def test_a_per_process_batch_scales_with_the_devices_and_warmup_can_be_turned_off():
    cfg, trainer = simulated(8, "data.batch_scope=process")
    assert lr_curve(cfg, trainer) == pytest.approx([documented(s, 0.1, 2048) for s in range(STEPS_PER_EPOCH * EPOCHS)])
    cfg, trainer = simulated(8, "data.batch_scope=process", "model.lr_warmup_epochs=0")
    assert lr_curve(cfg, trainer)[0] == pytest.approx(0.8)


def test_warmup_composes_with_the_cosine_schedule_per_step():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.4)
    scheduler = cosine(optimizer, total_steps=100, steps_per_epoch=10, final_lr=0.0, warmup_steps=20, warmup_start=0.25)
    for step in range(100):
        ramp = 0.25 + 0.75 * step / 20 if step < 20 else 1.0
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.4 * ramp * 0.5 * (1 + math.cos(math.pi * step / 100)))
        optimizer.step()
        scheduler.step()


def test_a_global_batch_that_does_not_divide_is_one_error_naming_the_numbers():
    with pytest.raises(ConfigError) as error:
        validate(compose_train("experiment=imagenet_resnet50", "trainer=ddp_cpu", "trainer.devices=3"))
    message = str(error.value)
    assert "\n" not in message and message.startswith("data.batch_size=256 is the global batch")
    assert "3 process(es) x 1 accumulated batch(es) = 3 shares (256 / 3 = 85.33 images each)" in message
    assert "data.batch_size=258 or 255" in message and "data.batch_scope=process" in message
    # devices known only to the Trainer (auto) or accumulation: the same check when it is built
    cfg = compose_train("trainer=ddp_cpu", "+trainer.accumulate_grad_batches=3", "paths.output_dir=unused")  # CIFAR: 128 / (2 x 3)
    with pytest.raises(ConfigError, match=r"128 / 6 = 21.33"):
        check_batch_plan(cfg, instantiate(cfg.trainer, logger=False, enable_checkpointing=False))


def test_cifar_recipes_keep_the_paper_batch_128_at_lr_0_1_under_ddp():
    cfg = compose_train("trainer=ddp_cpu", "paths.output_dir=unused")
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    data = build_datamodule(cfg)
    data.trainer = trainer
    assert data.batch_plan() == batch_plan(128, "global", 2)
    assert data.batch_plan().per_process == 64
    model = build_model(compose_train("trainer=ddp_cpu", "model.backbone=cifar_wrn16_1"))
    model.trainer = trainer
    assert model.lr_plan(0.1).scaled == 0.1 and model.lr_plan(0.1).warmup_epochs == 0


def resolved(*overrides: str) -> dict:
    return OmegaConf.to_container(compose_train("experiment=imagenet_resnet50", "paths.output_dir=unused", *overrides), resolve=True)


def test_the_fingerprint_covers_the_batch_its_scope_the_warmup_and_ema():
    base = run_fingerprint(resolved())
    for override in ("data.batch_size=512", "data.batch_scope=process", "model.lr_warmup_epochs=0",
                     "model.lr_reference_batch=512", "model.ema.decay=0.9998", "trainer.devices=8"):
        assert run_fingerprint(resolved(override)) != base, override


def test_resuming_on_another_device_count_is_refused_with_the_layout_to_resume_on(tmp_path):
    stored, current = resolved("trainer=ddp", "trainer.devices=8"), resolved("trainer=ddp", "trainer.devices=16")
    with pytest.raises(ConfigError) as error:
        check_resumable("last.ckpt", stored, current, tmp_path, explicit=True)
    message = str(error.value)
    assert message.startswith("ckpt_path=last.ckpt was trained with other settings: trainer.devices 8 vs 16; ")
    assert "resume with trainer.devices=8 trainer.num_nodes=1 trainer.accumulate_grad_batches=1" in message
    with pytest.raises(ConfigError, match=r"holds a run with different settings \(trainer.num_nodes 1 vs 2\); .*resume with trainer.devices=8 trainer.num_nodes=1"):
        check_resumable("last.ckpt", stored, resolved("trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"), tmp_path, False)
