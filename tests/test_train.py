"""End to end: real train.py runs (subprocess) and in-process fits with short budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import timm
import torch
from PIL import Image

from augmix.errors import ConfigError
from augmix.module import CONFIG_KEY, AugMixModule
from augmix.schedules import global_batch_size, scaled_lr
from augmix.training import train
from tests.conftest import ROOT, compose_train
from tests.scripts import run_script

SHORT = ("+trainer.limit_train_batches=3", "+trainer.limit_val_batches=2", "trainer.max_epochs=1", "evaluate_after_fit=null")


def run_train(*overrides: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env["HOME"] = str(home)  # no ~/.netrc: wandb has no credentials
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=home, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )


def test_quickstart_run_writes_checkpoints_metrics_samples_and_offline_wandb(tmp_path):
    out = tmp_path / "run"
    result = run_train("experiment=quickstart", f"hydra.run.dir={out}", *SHORT, home=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "checkpoints").glob("best-*.ckpt"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["val/acc"] <= 1.0 and metrics["val/loss"] > 0
    with Image.open(out / "augmix_samples.png") as grid:
        assert grid.size == (8 * 34 + 2, 3 * 34 + 2)  # 8 images x (clean, aug1, aug2), 2px padding
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    config = checkpoint[CONFIG_KEY]
    assert config["data"]["name"] == "digits" and config["model"]["backbone"] == "cifar_wrn16_1"
    assert config["data"]["mean"] == [0.5, 0.5, 0.5]
    assert list((out / "wandb").glob("offline-run-*")), "without an API key wandb must log offline"
    assert "wandb sync" in result.stdout
    output = result.stdout + result.stderr
    noise = (
        "MaxMetric was called before the ``update`` method", "Total FLOPs", "LeafSpec", "anonymous setting",
        "TPU available", "Tip:", "smaller than the logging interval", "to estimate number of stepping batches",
        "Warning",
    )
    assert [line for line in output.splitlines() if any(n in line for n in noise)] == []


def test_config_errors_print_one_line_and_no_traceback(tmp_path, capfd):
    result = run_script(capfd, "train.py", "augmix.severity=11", cwd=tmp_path)
    assert result.returncode == 2
    assert "Error: augmix.severity=11 is invalid: must be an integer in 1..10" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_cifar_stops_with_instructions_and_no_traceback(tmp_path, capfd):
    result = run_script(capfd, "train.py", f"data.root={tmp_path / 'nowhere'}", "data.download=false", "logger=none", cwd=tmp_path)
    assert result.returncode == 2
    assert "cifar-10-batches-py" in result.stderr and "experiment=quickstart" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def fit(tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_train(
        "experiment=quickstart", "evaluate_after_fit=null", "logger=csv", f"paths.output_dir={tmp_path}", "data.batch_size=16", *overrides
    )
    return train(cfg)


def test_resume_from_last_checkpoint_continues_the_run(tmp_path, recwarn):
    limits = ("+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "model/scheduler=constant")  # extendable
    fit(tmp_path, *limits, "trainer.max_epochs=1")
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert first["epoch"] == 0 and first["global_step"] == 2
    fit(tmp_path, *limits, "trainer.max_epochs=2", f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}")
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert resumed["epoch"] == 1 and resumed["global_step"] == 4
    # resuming reads the run's own checkpoint folder: that it is not empty is no news
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]


@pytest.mark.parametrize("overrides", [("augmix.jsd=false",), ("augmix.enabled=false",)])
def test_single_view_modes_train_with_plain_cross_entropy(tmp_path, overrides):
    metrics = fit(tmp_path, *SHORT, *overrides)
    assert "train/jsd_epoch" not in metrics and metrics["train/ce_epoch"] == pytest.approx(metrics["train/loss_epoch"])


def test_channels_last_option_trains(tmp_path):
    metrics = fit(tmp_path, *SHORT, "model.channels_last=true")
    assert metrics["train/loss_epoch"] > 0


@pytest.mark.slow
def test_torch_compile_option_trains_and_keeps_plain_checkpoint_keys(tmp_path):
    fit(tmp_path, *SHORT, "model.compile=true")
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    plain = timm.create_model("cifar_wrn16_1", num_classes=10).state_dict()
    assert {k for k in state if k.startswith("net.")} == {f"net.{k}" for k in plain}
    assert not any("_orig_mod" in key for key in state)


# ------------------------------------------------------------------- what the LightningModule is told


def module(**kwargs) -> AugMixModule:
    return AugMixModule("cifar_wrn16_1", 10, optimizer=partial(torch.optim.SGD, lr=0.1), **kwargs)


def test_held_out_corruptions_are_recognised_by_the_split_the_batch_names_not_by_loader_order():
    model = module()
    images, target = torch.rand(4, 3, 32, 32), torch.arange(4)
    model.validation_step({"views": [images], "target": target, "split": "val_corrupted"}, 0, dataloader_idx=0)
    assert model.val_corrupted_acc.update_called and not model.val_acc.update_called
    model.validation_step({"views": [images], "target": target, "split": "val"}, 0, dataloader_idx=1)
    assert model.val_acc.update_called


def test_the_lr_scales_with_the_global_batch_from_the_batch_size_the_module_is_given():
    assert global_batch_size(64, world_size=8, accumulate_grad_batches=2) == 1024
    assert scaled_lr(0.1, 1024, 256) == pytest.approx(0.4) and scaled_lr(0.1, 1024, None) == 0.1
    model = module(lr_reference_batch=256, batch_size=64)
    model.trainer = pl.Trainer(accelerator="cpu", devices=1, accumulate_grad_batches=2, logger=False, enable_checkpointing=False)
    optimizer = model.configure_optimizers()["optimizer"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 64 * 2 / 256)
    with pytest.raises(ConfigError, match="pass the per-process batch_size"):
        module(lr_reference_batch=256)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_a_single_view_module_trains_with_plain_cross_entropy_and_refuses_triplets():
    model = module(num_views=1, jsd=False)
    images, target = torch.rand(4, 3, 32, 32), torch.arange(4)
    assert torch.isfinite(model.training_step({"views": [images], "target": target}, 0))
    with pytest.raises(ValueError, match=r"built for 1 view\(s\) per batch \(jsd=False\), got 3"):
        model.training_step({"views": [images] * 3, "target": target}, 0)
