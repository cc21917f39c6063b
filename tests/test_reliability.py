"""Exact resume, pre-emption, divergence, atomic checkpoints, wandb re-attachment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import augmix.losses
from augmix.callbacks.reliability import DivergenceError
from augmix.errors import AugMixError
from augmix.files import atomic_write
from augmix.training import train
from tests.conftest import ROOT, compose_train
from tests.scripts import run_script

LIMITS = ("+trainer.limit_train_batches=4", "+trainer.limit_val_batches=1", "evaluate_after_fit=null", "data.batch_size=16")


def fit(out: Path, *overrides: str) -> dict:
    return train(compose_train("experiment=quickstart", "logger=csv", f"paths.output_dir={out}", *LIMITS, *overrides))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


CRASH_AT_EPOCH_1 = ("+callbacks.crash._target_=tests.helpers.CrashAtEpochStart", "+callbacks.crash.epoch=1")


def test_two_epochs_equal_one_epoch_stop_and_resume_bitwise(tmp_path):
    fit(tmp_path / "straight", "trainer.max_epochs=2")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path / "resumed", "trainer.max_epochs=2", *CRASH_AT_EPOCH_1)
    fit(tmp_path / "resumed", "trainer.max_epochs=2")  # resume=true picks up the run dir's last.ckpt
    for run in ("straight", "resumed"):  # last.ckpt is the last epoch's, whether or not val/acc improved
        assert torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    straight = weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    resumed = weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert metrics["finished"] and metrics["epoch"] == 1 and metrics["global_step"] == 8


def test_a_mid_epoch_checkpoint_from_validation_resumes_exactly(tmp_path):
    """Not only pre-emption saves mid-epoch: with val_check_interval the DataModule's state must
    still make the resumed epoch skip exactly the batches already trained."""
    mid = ("trainer.max_epochs=1", "+trainer.val_check_interval=2")
    fit(tmp_path / "straight", *mid)
    crash = ("+callbacks.crash._target_=tests.helpers.CrashAtBatchStart", "+callbacks.crash.batch=3")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path / "resumed", *mid, *crash)
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    fit(tmp_path / "resumed", *mid)
    straight = weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    resumed = weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_run_dir_with_other_settings_is_neither_skipped_nor_resumed(tmp_path):
    fit(tmp_path, "trainer.max_epochs=1")
    with pytest.raises(AugMixError, match="holds a run with different settings"):
        fit(tmp_path, "trainer.max_epochs=1", "augmix.severity=5")
    (tmp_path / "metrics.json").unlink()  # only the checkpoint left: still refused
    with pytest.raises(AugMixError, match="holds a run with different settings"):
        fit(tmp_path, "trainer.max_epochs=2", "augmix.severity=5")


def test_a_run_stopped_by_max_time_is_not_marked_finished(tmp_path):
    fit(tmp_path, "trainer.max_epochs=50", "+trainer.max_time=00:00:00:03")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epoch"] < 49 and not metrics["finished"]


def test_a_finished_run_is_not_trained_again(tmp_path):
    fit(tmp_path, "trainer.max_epochs=1")
    stamp = (tmp_path / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    again = fit(tmp_path, "trainer.max_epochs=1")
    assert again["finished"] and (tmp_path / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp


def test_explicit_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(AugMixError, match="does not exist"):
        fit(tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}")


# Runs extended in place below: only a schedule that does not depend on the run's length allows it.
EXTENDABLE = "model/scheduler=constant"


def test_nan_loss_stops_with_the_step_and_keeps_the_good_checkpoint(tmp_path, monkeypatch):
    fit(tmp_path, "trainer.max_epochs=1", EXTENDABLE)
    last = tmp_path / "checkpoints" / "last.ckpt"
    good = weights(last)
    original = augmix.losses.JSDLoss.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        parts = original(self, *args, **kwargs)
        calls["n"] += 1
        return parts._replace(total=parts.total * float("inf")) if calls["n"] == 3 else parts

    monkeypatch.setattr(augmix.losses.JSDLoss, "forward", poisoned)
    with pytest.raises(DivergenceError) as error:
        fit(tmp_path, "trainer.max_epochs=3", EXTENDABLE)
    message = str(error.value)
    assert "global step 6" in message and "epoch 1" in message  # resumed at step 4; the 3rd step of epoch 1
    assert "model.optimizer.lr" in message and "loss.weight" in message and "trainer.precision" in message
    assert str(last) in message
    kept = weights(last)
    assert all(torch.equal(good[k], kept[k]) for k in good), "a diverged run must not overwrite last.ckpt"


def test_atomic_write_leaves_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"good checkpoint")

    def crash(handle):
        handle.write(b"half a checkp")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_bytes() == b"good checkpoint"
    assert list(tmp_path.iterdir()) == [target], "no temp files left behind"
    previous = os.umask(0o022)
    try:
        atomic_write(target, lambda handle: handle.write(b"new"))
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == 0o644, "collaborators can read results, as with open()"


def test_checkpoint_save_failure_keeps_the_previous_last_ckpt(tmp_path, monkeypatch):
    fit(tmp_path, "trainer.max_epochs=1", EXTENDABLE)
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    def failing_save(obj, handle, *args, **kwargs):
        handle.write(b"truncated")
        raise OSError("killed while writing")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        fit(tmp_path, "trainer.max_epochs=2", EXTENDABLE)
    assert last.read_bytes() == before


def test_wandb_run_is_reattached_on_resume(tmp_path):
    out = tmp_path / "run"
    common = ("experiment=quickstart", "logger=wandb", f"paths.output_dir={out}", *LIMITS, EXTENDABLE)
    train(compose_train(*common, "trainer.max_epochs=1"))
    first = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["wandb_run_id"]
    train(compose_train(*common, "trainer.max_epochs=2"))
    second = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["wandb_run_id"]
    assert first == second
    runs = sorted(p.name for p in (out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(first) for name in runs), runs


# SIGUSR1 takes the same handler (tests/hostile/test_interruptions.py checks each signal in-process);
# its full-process run is in the slow suite.
@pytest.mark.parametrize("stop", [signal.SIGTERM, pytest.param(signal.SIGUSR1, marks=pytest.mark.slow)], ids=["SIGTERM", "SIGUSR1"])
def test_stop_signal_saves_mid_epoch_and_the_run_resumes(tmp_path, stop, capfd):
    out, marker = tmp_path / "run", tmp_path / "paused"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    command = [
        sys.executable, str(ROOT / "train.py"), "experiment=quickstart", "evaluate_after_fit=null", "logger=csv", f"hydra.run.dir={out}",
        "trainer.max_epochs=2", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=1", "data.batch_size=16",
    ]
    pause = ["+callbacks.pause._target_=tests.helpers.PauseAtBatch", "+callbacks.pause.epoch=1",
             "+callbacks.pause.batch=2", f"+callbacks.pause.marker={marker}"]
    process = subprocess.Popen([*command, *pause], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not marker.exists():  # the run is now inside epoch 1, before its third batch
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"the run never reached the pause point: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    assert f"{stop.name}: saved" in stderr and "Traceback" not in stderr
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 5 + 3, "saved after the batch in flight: epoch 1, batch 3"
    assert checkpoint["AugMixDataModule"]["resume_point"] == [1, 3]
    assert not json.loads((out / "metrics.json").read_text())["finished"]

    resumed = run_script(capfd, "train.py", *command[2:], cwd=ROOT, env={"WANDB_MODE": "disabled"})  # the same command
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and metrics["global_step"] == 10, "the resumed epoch ran only its remaining batches"
