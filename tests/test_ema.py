"""EMA weights (model.ema): updated after every optimizer step, saved beside the model's weights,
resumed exactly (also mid-epoch), used for validation with evaluate=true, picked by evaluation with
checkpoint_weights=ema; under DDP in tests/test_ddp.py (one 2-process run checks both)."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import torch

from augmix.allowlist import CHECKPOINT, check_data
from augmix.errors import CheckpointError, ConfigError
from augmix.evaluation.checkpoints import read_checkpoint
from augmix.module import EMA_PREFIX, AugMixModule
from augmix.training import build_datamodule, build_model, train
from tests.conftest import compose_train

EMA = ("model.ema.decay=0.9", "model.ema.evaluate=true")  # a short decay, so a few steps move it visibly
TINY = (
    "experiment=quickstart", "logger=csv", "evaluate_after_fit=null", "data.batch_size=8", "data.eval_batch_size=16",
    "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
)


pytestmark = pytest.mark.usefixtures("one_thread")


def fit(out: Path, *overrides: str) -> dict:
    return train(compose_train(*TINY, f"paths.output_dir={out}", *EMA, *overrides))


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def module(**kwargs) -> AugMixModule:
    return AugMixModule("cifar_wrn16_1", 10, optimizer=partial(torch.optim.SGD, lr=0.1), **kwargs)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """Two epochs of two steps in one go (checkpoints after every step, so a crash can land mid-epoch)."""
    out = tmp_path_factory.mktemp("ema") / "straight"
    torch.set_num_threads(1)
    fit(out, "trainer.max_epochs=2", "+trainer.val_check_interval=1")
    return out / "checkpoints" / "last.ckpt"


def test_the_ema_moves_by_one_minus_decay_after_every_optimizer_step():
    model = module(ema={"decay": 0.75})
    before = {k: v.clone() for k, v in model.ema.module.state_dict().items()}
    optimizer = torch.optim.SGD(model.net.parameters(), lr=0.5)
    for parameter in model.net.parameters():
        parameter.grad = torch.ones_like(parameter)
    model.optimizer_step(0, 0, optimizer, lambda: None)
    trained = model.net.state_dict()
    for key, value in model.ema.module.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.75 * before[key] + 0.25 * trained[key], atol=1e-7), key
    assert not any(p.requires_grad for p in model.ema.parameters()), "frozen: not trained, not reduced by DDP"


def test_validation_runs_the_ema_weights_only_with_evaluate():
    images, target = torch.rand(4, 3, 32, 32), torch.arange(4)
    for evaluate in (True, False):
        model = module(ema={"decay": 0.9, "evaluate": evaluate}).eval()
        for value in model.ema.module.parameters():
            value.data.zero_()  # the EMA net now predicts zeros: a uniform distribution
        model.validation_step({"views": [images], "target": target, "split": "val"}, 0)
        uniform = model.val_loss.compute().item() == pytest.approx(math.log(10))
        assert uniform == evaluate
    with pytest.raises(ConfigError, match="model.ema.evaluate=true is invalid: needs EMA weights"):
        module(ema={"evaluate": True})
    with pytest.raises(ConfigError, match="unknown config key model.ema.decy"):
        module(ema={"decy": 0.9})


def test_two_epochs_equal_one_epoch_crash_and_resume_bitwise_for_weights_and_ema(straight, tmp_path):
    crash = ("+callbacks.crash._target_=tests.helpers.CrashAtEpochStart", "+callbacks.crash.epoch=1")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path, "trainer.max_epochs=2", "+trainer.val_check_interval=1", *crash)
    fit(tmp_path, "trainer.max_epochs=2", "+trainer.val_check_interval=1")
    expected, resumed = state(straight), state(tmp_path / "checkpoints" / "last.ckpt")
    assert expected.keys() == resumed.keys() and any(k.startswith(EMA_PREFIX) for k in expected)
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)


def test_a_mid_epoch_checkpoint_carries_the_ema_and_resumes_it_exactly(straight, tmp_path):
    crash = ("+callbacks.crash._target_=tests.helpers.CrashAtBatchStart", "+callbacks.crash.batch=1")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path, "trainer.max_epochs=2", "+trainer.val_check_interval=1", *crash)
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 1 and saved["AugMixDataModule"]["resume_point"] == [0, 1]
    fit(tmp_path, "trainer.max_epochs=2", "+trainer.val_check_interval=1")
    expected, resumed = state(straight), state(tmp_path / "checkpoints" / "last.ckpt")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)


def test_the_checkpoint_holds_both_sets_as_plain_data_and_evaluation_picks_either(straight, tmp_path):
    raw = torch.load(straight, map_location="cpu", weights_only=True)
    weights, ema = read_checkpoint(straight), read_checkpoint(straight, weights="ema")
    assert weights.weights == "model" and ema.weights == "ema" and weights.state_dict.keys() == ema.state_dict.keys()
    assert all(torch.equal(weights.state_dict[k], raw["state_dict"][f"net.{k}"]) for k in weights.state_dict)
    assert all(torch.equal(ema.state_dict[k], raw["state_dict"][f"{EMA_PREFIX}{k}"]) for k in ema.state_dict)
    assert any(not torch.equal(weights.state_dict[k], ema.state_dict[k]) for k in ema.state_dict)
    assert raw["augmix_config"]["model"]["ema"] == {"decay": 0.9, "evaluate": True}
    check_data(raw["augmix_config"]["data"], CHECKPOINT)  # the stored config stays plain, allowlisted data
    plain = tmp_path / "plain.ckpt"
    torch.save({**raw, "state_dict": {k: v for k, v in raw["state_dict"].items() if k.startswith("net.")}}, plain)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(plain, weights="ema")
    assert str(error.value) == (
        f"{plain} holds no EMA weights (only train.py runs with model.ema.decay save them); "
        "evaluate its trained weights with checkpoint_weights=model"
    )


def accuracy(checkpoint: Path, prefix: str, split: str = "val", limit: int | None = None) -> float:
    """Accuracy of the weights under ``prefix`` on the first ``limit`` images of ``split`` (all by
    default), in one process."""
    weights = {k[len(prefix) :]: v for k, v in state(checkpoint).items() if k.startswith(prefix)}
    cfg = compose_train("experiment=quickstart")
    data = build_datamodule(cfg)
    data.setup("validate")
    model = build_model(cfg).eval()
    model.net.load_state_dict(weights)
    source = data.source(split)
    count = len(source) if limit is None else limit
    images = torch.stack([source.image(i) for i in range(count)])
    targets = torch.tensor([source.target(i) for i in range(count)])
    with torch.no_grad():
        return float((model(data.normalize(images)).argmax(1) == targets).float().mean())


def test_evaluate_py_checkpoint_weights_ema_evaluates_the_ema_weights(straight, tmp_path):
    from augmix.evaluation import evaluate
    from tests.evaluation_fixtures import evaluate_config

    quick = ["benchmark=synthetic", "benchmark.corruptions=[gaussian_noise]", "benchmark.severities=[1]",
             "benchmark.limit_per_set=16"]
    results = {
        weights: evaluate(evaluate_config(straight, tmp_path / weights, [*quick, f"checkpoint_weights={weights}"]), ([], False))
        for weights in ("model", "ema")
    }
    assert results["ema"]["checkpoint_weights"] == "ema" and results["model"]["checkpoint_weights"] == "model"
    expected = 100 * (1 - accuracy(straight, EMA_PREFIX, "test", limit=16))  # reports give errors in %
    assert results["ema"]["clean_error"] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ConfigError, match=r"^checkpoint_weights='emma' is invalid: must be 'model'"):
        evaluate(evaluate_config(straight, tmp_path / "typo", [*quick, "checkpoint_weights=emma"]), ([], False))

