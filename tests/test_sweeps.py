"""Hydra multirun: grid sweeps with a summary, resume, Optuna, early config errors, SLURM rendering."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from augmix.errors import ConfigError
from augmix.sweeps import grid_jobs
from tests.conftest import CONFIGS, ROOT
from tests.scripts import Finished, run_script

TINY = ("experiment=quickstart", "evaluate_after_fit=null", "logger=none", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
        "data.batch_size=16", "data.eval_batch_size=32")  # small batches: these tests are about the sweep


def multirun(capfd, sweep_dir: Path, *overrides: str, cwd: Path) -> Finished:
    """``python train.py -m ...``, in this process (see tests/scripts.py)."""
    return run_script(capfd, "train.py", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides, cwd=cwd, env={"WANDB_MODE": "disabled"})


def read_summary(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "sweep_summary.csv") as handle:
        return list(csv.DictReader(handle))


def test_grid_expansion():
    assert grid_jobs(["augmix.severity=1,3", "seed=0,1", "trainer=cpu"]) == [
        ["augmix.severity=1", "seed=0", "trainer=cpu"],
        ["augmix.severity=1", "seed=1", "trainer=cpu"],
        ["augmix.severity=3", "seed=0", "trainer=cpu"],
        ["augmix.severity=3", "seed=1", "trainer=cpu"],
    ]


def test_grid_sweep_runs_every_job_summarises_and_resumes(tmp_path, capfd):
    sweep = tmp_path / "sweep"
    result = multirun(capfd, sweep, *TINY, "augmix.severity=1,5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_summary(sweep)
    assert [row["overrides"].split()[-1] for row in rows] == ["augmix.severity=1", "augmix.severity=5"]
    assert all(row["status"] == "finished" and 0 <= float(row["val/acc"]) <= 1 for row in rows)
    table = [line for line in (sweep / "sweep_summary.md").read_text().splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[1] for line in table[1:]] == ["augmix.severity=1", "augmix.severity=5"]  # what varies
    for job in ("0", "1"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()

    # Job 1 "was killed" after its checkpoint: re-running the sweep skips job 0 and resumes job 1.
    finished = json.loads((sweep / "0" / "metrics.json").read_text())
    stamp = (sweep / "0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    killed = json.loads((sweep / "1" / "metrics.json").read_text())
    (sweep / "1" / "metrics.json").write_text(json.dumps({**killed, "finished": False}))
    again = multirun(capfd, sweep, *TINY, "augmix.severity=1,5", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    assert "already holds a finished run" in log and "resuming from" in log
    assert (sweep / "0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    assert json.loads((sweep / "0" / "metrics.json").read_text()) == finished
    assert all(row["status"] == "finished" for row in read_summary(sweep))


def test_a_bad_value_in_a_later_job_fails_before_any_job_runs(tmp_path, capfd):
    sweep = tmp_path / "sweep"
    result = multirun(capfd, sweep, *TINY, "augmix.severity=3,11", cwd=tmp_path)
    assert result.returncode == 2
    assert "sweep job 1 (" in result.stderr and "augmix.severity=11 is invalid" in result.stderr
    assert not (sweep / "0").exists(), "no job may start when any job's config is invalid"


def test_an_unknown_override_fails_in_the_parent(tmp_path, capfd):
    sweep = tmp_path / "sweep"
    result = multirun(capfd, sweep, *TINY, "augmix.sevrity=1,3", cwd=tmp_path)
    assert result.returncode != 0 and "sevrity" in result.stderr
    assert not (sweep / "0").exists()


def test_grid_expansion_keeps_the_last_value_of_a_repeated_key_and_refuses_intervals():
    assert grid_jobs(["seed=0,1", "augmix.width=2", "seed=5"]) == [["seed=5", "augmix.width=2"]]
    with pytest.raises(ConfigError, match=r"^augmix.alpha=interval\(0.1, 1.0\) is not a list of values"):
        grid_jobs(["augmix.alpha=interval(0.1, 1.0)"])


def test_optuna_search_without_the_optuna_extra_says_what_to_install(tmp_path):
    """``pip install -e .`` leaves the Optuna stack out: the search stops before any job with one
    line naming the extra (simulated by hiding the installed packages)."""
    sweep = tmp_path / "optuna"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "without_packages.py"), "optuna,hydra_plugins.hydra_optuna_sweeper",
         str(ROOT / "train.py"), "-m", f"hydra.sweep.dir={sweep}", "hparams_search=augmix_optuna", *TINY],
        cwd=tmp_path, env={**os.environ, "WANDB_MODE": "disabled"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == (
        "Error: hparams_search=augmix_optuna (Hydra's Optuna sweeper) needs the optional 'optuna' packages "
        "(optuna, hydra_plugins.hydra_optuna_sweeper not installed): pip install -e \".[optuna]\"\n"
    )
    assert not sweep.exists()


def test_optuna_search_runs_trials_on_held_out_corruptions_and_continues(tmp_path, capfd):
    sweep = tmp_path / "optuna"
    search = (
        "hparams_search=augmix_optuna", *TINY, "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=4",
        "val_corruptions.limit=8", "val_corruptions.severities=[3]",
    )
    result = multirun(capfd, sweep, *search, "hydra.sweeper.sampler.seed=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert 0.0 <= best.best_value <= 1.0 and "augmix.severity" in best.best_params
    jobs = sorted(p for p in sweep.iterdir() if (p / "metrics.json").is_file())
    metrics = [json.loads((job / "metrics.json").read_text()) for job in jobs]
    assert len(metrics) == 2 and all(0.0 <= m["val/corruption_error"] <= 1.0 for m in metrics)
    assert best.best_value == min(m["val/corruption_error"] for m in metrics)

    # the same command and sweep dir again: the study continues with new trials in new folders
    again = multirun(capfd, sweep, *search, "hydra.sweeper.sampler.seed=1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    import optuna

    study = optuna.load_study(study_name="augmix_quickstart", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 4
    assert len([p for p in sweep.iterdir() if (p / "metrics.json").is_file()]) == 4
    assert "already holds a finished run" not in again.stdout + again.stderr


def test_a_diverged_job_is_reported_and_the_sweep_goes_on(tmp_path, capfd):
    sweep = tmp_path / "sweep"
    result = multirun(capfd, sweep, *TINY, "model.optimizer.lr=1e30,0.05", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training diverged" in result.stderr
    rows = read_summary(sweep)
    assert [row["status"] for row in rows] == ["diverged", "finished"]


def test_multi_process_ddp_inside_a_local_multirun_is_refused_up_front(tmp_path, capfd):
    sweep = tmp_path / "sweep"
    result = multirun(capfd, sweep, *TINY, "trainer=ddp_cpu", "seed=0,1", cwd=tmp_path)
    assert result.returncode == 2 and "cannot run inside a local multirun" in result.stderr
    assert not (sweep / "0").exists()


def test_optuna_config_tunes_on_held_out_data_and_corruptions():
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=augmix_optuna"], return_hydra_config=True)
    assert cfg.optimized_metric == "val/corruption_error" and cfg.hydra.sweeper.direction == "minimize"
    assert cfg.data.val_fraction > 0
    assert list(cfg.val_corruptions.corruptions) == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    assert set(cfg.hydra.sweeper.params) == {
        "augmix.severity", "augmix.width", "augmix.depth", "augmix.alpha", "loss.weight", "model.optimizer.lr"
    }
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        accuracy = compose("train", overrides=["hparams_search=augmix_optuna", "optimized_metric=val/acc"], return_hydra_config=True)
    assert accuracy.hydra.sweeper.direction == "maximize"


def test_slurm_launcher_renders_submitit_parameters_from_the_trainer(tmp_path, monkeypatch):
    overrides = [
        "hydra/launcher=submitit_slurm", "experiment=imagenet_resnet50", "trainer=ddp", "trainer.devices=4",
        "trainer.num_nodes=2", f"hydra.sweep.dir={tmp_path}", "hydra.job.name=augmix",
    ]
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)

    # Render the sbatch script the way the plugin does (its parameter mapping, submitit's executor).
    # submitit insists on finding srun; a stub on PATH is enough to render without a cluster.
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "srun").write_text("#!/bin/sh\n")
    (stub / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub}{os.pathsep}{os.environ['PATH']}")
    params = OmegaConf.to_container(launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(
        folder=params.pop("submitit_folder"), cluster="slurm", slurm_max_num_timeout=params.pop("max_num_timeout")
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    sbatch = executor._executor._make_submission_file_text("python train.py", "uid")
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--requeue", "--signal=USR2@120", "--time=1440"):
        assert f"#SBATCH {line}" in sbatch, line


def test_ddp_trainer_configs():
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        ddp = compose("train", overrides=["trainer=ddp", "trainer.sync_batchnorm=true"])
        cpu = compose("train", overrides=["trainer=ddp_cpu"])
    assert ddp.trainer.strategy == "ddp" and ddp.trainer.sync_batchnorm and ddp.trainer.accelerator == "gpu"
    assert cpu.trainer.accelerator == "cpu" and cpu.trainer.devices == 2
    assert not ddp.trainer.use_distributed_sampler and not cpu.trainer.use_distributed_sampler


@pytest.mark.parametrize("metric, direction", [("val/acc", "maximize"), ("val/corruption_error", "minimize"), ("val/loss", "minimize")])
def test_metric_direction(metric, direction):
    from augmix.config import metric_direction

    assert metric_direction(metric) == direction
