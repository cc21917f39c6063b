"""Checkpoints and run directories from elsewhere, or damaged: read as data, refused in one line.

| case | before | after |
|---|---|---|
| stored config names a callable (``data.train_transform._target_: augmix.files.write_text``, ``site.addsitedir``) | evaluate.py called it: a file was written, a sitedir added, its ``.pth`` ran | ``checkpoint config key data.train_transform._target_ names a callable that is not allowed: 'augmix.files.write_text'; allowed: ...``; nothing written or imported |
| stored ``data._target_`` names a module | the module was imported (its code ran) | ``checkpoint config key data._target_ names a callable that is not allowed: 'evilmod.build'; ...`` |
| stored transform with an extra ``_args_``, an ``${oc.env:...}`` value | passed to the class / resolved from the environment | ``... is not a setting of CenterCropOrPad`` / ``... is invalid: must be an integer in 1..8192`` |
| stored ``model.backbone: hf-hub:...`` / ``backbone_kwargs.checkpoint_path`` | timm fetched or loaded what they named | ``checkpoint config key model.backbone=... is invalid`` / ``... backbone_kwargs.checkpoint_path is not allowed`` |
| stored config that is not a mapping | TypeError traceback | ``... has a stored run config (augmix_config) that is not a mapping ...`` |
| refused stored config, weights wanted anyway | no way but editing the file | ``ignore_checkpoint_config=true model.backbone=NAME data=NAME`` evaluates the weights alone |
| ``AugMixDataModule.resume_point`` of another shape | used as given | ``checkpoint key AugMixDataModule.resume_point=... is invalid`` |
| NaN weights | evaluated, ``robustness.json`` held a bare ``NaN`` | ``... holds non-finite weights (NaN or infinity in 1 tensor(s), first '...') ...`` |
| finite weights, non-finite logits | NaN figures written | ``the model's outputs (logits) on set clean include NaN or infinity ...``, no set written |
| a non-finite float reaching ``write_json`` | written as bare ``NaN`` | ValueError naming the key; no file |
| ``trainer.max_epochs`` extended on a finished cosine run | resumed with the ended schedule; same fingerprint | ``... holds a run of another length (trainer.max_epochs 1 vs 2) whose learning-rate schedule (augmix.schedules.cosine) is laid out over the whole run ...`` |
| the same with ``model/scheduler=constant`` | resumed | resumed, bit-identical to the longer run from the start (slow test) |
| ``test=true`` / ``evaluate_after_fit`` added to a finished run | "already holds a finished run", nothing run | runs them on its checkpoints, records them in metrics.json; then skipped |
| the same without ``checkpoints/last.ckpt`` | nothing run, nothing said | ``... holds a finished run but not its checkpoints/last.ckpt, so test=true cannot run on it ...`` |
| ``ckpt_path=`` of another model / class count | size-mismatch traceback | ``ckpt_path=... was trained with other settings: model.backbone 'cifar_wrn16_1' vs 'cifar_wrn16_2'; ...`` |
| ``ckpt_path=`` of a plain state_dict | ``KeyError: 'pytorch-lightning_version'`` | ``... is not a train.py checkpoint (a plain state_dict): ...`` |
| truncated ``metrics.json`` | JSONDecodeError traceback | ``.../metrics.json is damaged (...): it is this run's record of its metrics. Delete it ...`` |
| damaged job files in a sweep | the summary callback failed | rows marked ``unreadable``, one warning per file |
| damaged evaluation manifest ``robustness_sets/run.json`` | JSONDecodeError traceback | ``... is damaged (...) ...; delete ... to evaluate every set again`` |
| pickle payload weights_only blocks | "not a PyTorch checkpoint, or it is damaged" | ``... was not loaded, for safety: it contains a reference to posix.system ...`` |
| empty checkpoint file | ``cannot read checkpoint ...: . Is the file complete?`` | ``checkpoint ... is empty (0 bytes) ...`` |
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch

from augmix.data import AugMixDataModule
from augmix.errors import CheckpointError, ConfigError, RunDirError
from augmix.evaluation.checkpoints import classifier_weight_key, read_checkpoint
from augmix.evaluation.run import ResultStore
from augmix.files import write_json
from augmix.fingerprint import run_fingerprint
from augmix.module import CONFIG_KEY
from augmix.sweeps import write_summary
from augmix.training import train
from tests.conftest import compose_train
from tests.evaluation_fixtures import evaluate_config

RUN = ("experiment=quickstart", "logger=csv", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
       "data.batch_size=16")
QUICK_EVALUATION = ("limit_per_set=8", "corruptions=[fog]", "severities=[1]", "progress=false")


def fit(out: Path, *overrides: str) -> dict:
    return train(compose_train(*RUN, f"paths.output_dir={out}", *overrides))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One real train.py run (2 steps), finished; tests copy it rather than train again."""
    out = tmp_path_factory.mktemp("trained") / "run"
    fit(out, "evaluate_after_fit=null")
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def hostile_copy(source: Path, target: Path, edit: Callable[[dict], None]) -> Path:
    """``source`` loaded as weights_only data, edited, saved: it still passes weights_only loading."""
    raw = torch.load(source, map_location="cpu", weights_only=True)
    edit(raw)
    torch.save(raw, target)
    return target


def evaluate_cli(checkpoint: Path, out: Path, capsys, *overrides: str) -> tuple[int, str]:
    """evaluate.py's entry point in-process: (exit code, stderr)."""
    import evaluate

    benchmark = [f"benchmark.{setting}" for setting in QUICK_EVALUATION]
    cfg = evaluate_config(checkpoint, out, ["benchmark=synthetic", *benchmark, *overrides])
    try:
        evaluate.main(cfg)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


def strict_load(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds bare {constant}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


# ---------------------------------------------------------------- a stored config never runs code


def test_a_checkpoint_config_that_names_callables_runs_nothing(trained_run, tmp_path, capsys):
    """The issue's repro: write_text drops a .pth into a folder that addsitedir would then execute."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    ran = tmp_path / "PWNED"

    def poison(raw: dict) -> None:
        data = raw[CONFIG_KEY]["data"]
        data["train_transform"] = {
            "_target_": "augmix.files.write_text",
            "path": str(site_dir / "zz.pth"),
            "text": f"import pathlib; pathlib.Path({str(ran)!r}).write_text('ran')\n",
        }
        data["eval_transform"] = {"_target_": "site.addsitedir", "sitedir": str(site_dir)}

    evil = hostile_copy(trained_run / "checkpoints" / "last.ckpt", tmp_path / "evil.ckpt", poison)
    path_before = list(sys.path)
    code, err = evaluate_cli(evil, tmp_path / "out", capsys)
    assert code == 2
    assert err.startswith(
        "Error: checkpoint config key data.train_transform._target_ names a callable that is not allowed: "
        "'augmix.files.write_text'; allowed: augmix.data.RandomCropFlip, augmix.data.RandomResizedCropFlip, "
        "augmix.data.ResizeCenterCrop, augmix.data.CenterCropOrPad; nothing named in a checkpoint is imported. "
        "To use only its weights, add ignore_checkpoint_config=true"
    ), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (site_dir / "zz.pth").exists() and not ran.exists(), "the checkpoint's callables ran"
    assert sys.path == path_before, "a sitedir named by the checkpoint was added"
    assert not (tmp_path / "out").exists(), "nothing may be written for a refused checkpoint"


def _module_target(raw: dict) -> None:
    raw[CONFIG_KEY]["data"]["_target_"] = "evilmod.build"


def _extra_argument(raw: dict) -> None:
    raw[CONFIG_KEY]["data"]["eval_transform"]["_args_"] = [64]


def _environment_value(raw: dict) -> None:
    raw[CONFIG_KEY]["data"]["train_transform"]["size"] = "${oc.env:HOME}"


def _hub_backbone(raw: dict) -> None:
    raw[CONFIG_KEY]["model"]["backbone"] = "hf-hub:timm/resnet18.a1_in1k"


def _weights_file_kwarg(raw: dict) -> None:
    raw[CONFIG_KEY]["model"]["backbone_kwargs"] = {"checkpoint_path": "/etc/passwd"}


def _config_not_a_mapping(raw: dict) -> None:
    raw[CONFIG_KEY] = ["data", "model"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (_module_target, "checkpoint config key data._target_ names a callable that is not allowed: 'evilmod.build'; allowed: augmix.data.AugMixDataModule;"),
        (_extra_argument, "checkpoint config key data.eval_transform._args_ is not a setting of CenterCropOrPad; known: ['size']"),
        (_environment_value, "checkpoint config key data.train_transform.size='${oc.env:HOME}' is invalid: must be an integer in 1..8192"),
        (_hub_backbone, "checkpoint config key model.backbone='hf-hub:timm/resnet18.a1_in1k' is invalid: must be a registered timm model name or torchvision:NAME"),
        (_weights_file_kwarg, "checkpoint config key model.backbone_kwargs.checkpoint_path is not allowed:"),
        (_config_not_a_mapping, "has a stored run config (augmix_config) that is not a mapping; it is not a train.py checkpoint"),
    ],
    ids=["module-target", "extra-argument", "environment-value", "hub-backbone", "weights-file-kwarg", "config-not-a-mapping"],
)
def test_hostile_checkpoint_configs_are_refused_naming_the_key(trained_run, tmp_path, capsys, monkeypatch, edit, message):
    modules = tmp_path / "modules"
    modules.mkdir()
    imported = tmp_path / "imported"
    (modules / "evilmod.py").write_text(
        f"import pathlib\npathlib.Path({str(imported)!r}).write_text('imported')\n\ndef build(**kwargs):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(modules))  # importable, so only the allowlist keeps it out
    evil = hostile_copy(trained_run / "checkpoints" / "last.ckpt", tmp_path / "evil.ckpt", edit)
    code, err = evaluate_cli(evil, tmp_path / "out", capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "evilmod" not in sys.modules and not imported.exists()
    assert not (tmp_path / "out").exists()


def test_ignore_checkpoint_config_evaluates_the_weights_of_a_refused_checkpoint(trained_run, tmp_path, capsys):
    def poison(raw: dict) -> None:
        raw[CONFIG_KEY]["data"]["_target_"] = "os.system"

    evil = hostile_copy(trained_run / "checkpoints" / "last.ckpt", tmp_path / "evil.ckpt", poison)
    code, err = evaluate_cli(
        evil, tmp_path / "out", capsys, "ignore_checkpoint_config=true", "model.backbone=cifar_wrn16_1", "data=digits"
    )
    assert code == 0, err
    summary = strict_load(tmp_path / "out" / "robustness.json")
    assert summary["checkpoint_kind"] == "state_dict" and summary["sets"]["clean"]["n"] == 8


def test_a_resume_point_of_another_shape_is_refused():
    module = AugMixDataModule("digits", ".", 10, 32, (0.5,) * 3, (0.5,) * 3, None, None)
    with pytest.raises(CheckpointError, match=r"AugMixDataModule.resume_point='0; import os' is invalid"):
        module.load_state_dict({"resume_point": "0; import os"})
    module.load_state_dict({"resume_point": [1, 3]})
    assert module.resume_point == (1, 3)


# ----------------------------------------------------------------------- non-finite weights, JSON


def test_nan_weights_stop_evaluation_with_one_line(trained_run, tmp_path, capsys):
    poisoned = {}

    def poison(raw: dict) -> None:
        key = next(k for k, v in raw["state_dict"].items() if k.startswith("net.") and v.is_floating_point())
        raw["state_dict"][key] = torch.full_like(raw["state_dict"][key], float("nan"))
        poisoned["key"] = key[len("net.") :]

    broken = hostile_copy(trained_run / "checkpoints" / "last.ckpt", tmp_path / "nan.ckpt", poison)
    code, err = evaluate_cli(broken, tmp_path / "out", capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"nan.ckpt holds non-finite weights (NaN or infinity in 1 tensor(s), first {poisoned['key']!r})" in err
    assert not (tmp_path / "out" / "robustness.json").exists()


def test_non_finite_logits_stop_before_the_set_is_written(tmp_path, capsys):
    model = timm.create_model("cifar_wrn16_1", num_classes=10)
    with torch.no_grad():  # finite weights whose products overflow float32
        model.state_dict()[classifier_weight_key(model)].fill_(3e38)
    torch.save(model.state_dict(), tmp_path / "overflow.pth")
    code, err = evaluate_cli(tmp_path / "overflow.pth", tmp_path / "out", capsys, "model.backbone=cifar_wrn16_1")
    assert code == 2 and err.count("\n") == 1, err
    assert "the model's outputs (logits) on set clean include NaN or infinity" in err
    assert not (tmp_path / "out" / "robustness_sets" / "clean.json").exists()
    assert not (tmp_path / "out" / "robustness.json").exists()


def test_json_files_are_strict(tmp_path):
    path = tmp_path / "robustness.json"
    with pytest.raises(ValueError, match=r"non-finite float\(s\) as JSON at \['sets.clean.loss'\]"):
        write_json(path, {"sets": {"clean": {"loss": float("nan"), "n": 8}}})
    assert not path.exists()
    write_json(path, {"loss": None, "error": 1.5})
    assert strict_load(path) == {"loss": None, "error": 1.5}


# ------------------------------------------------------------------------- schedules and lengths


def test_the_fingerprint_covers_every_setting_of_the_schedule():
    def fingerprint(*overrides: str) -> str:
        from omegaconf import OmegaConf

        cfg = compose_train("experiment=quickstart", "paths.output_dir=/run", *overrides)
        return run_fingerprint(OmegaConf.to_container(cfg, resolve=True))

    cosine = fingerprint()
    for change in (
        "trainer.max_epochs=2", "+trainer.max_steps=10", "+trainer.limit_train_batches=3",
        "+trainer.accumulate_grad_batches=2", "data.batch_size=32", "trainer.devices=2",
        "model.lr_reference_batch=256", "model.scheduler.final_lr=0.001", "model/scheduler=step_thirds",
    ):
        assert fingerprint(change) != cosine, change
    constant = fingerprint("model/scheduler=constant")
    assert fingerprint("model/scheduler=constant", "trainer.max_epochs=2") == constant  # its lr never depends on length
    assert fingerprint("model/scheduler=constant", "+trainer.limit_train_batches=3") != constant
    assert fingerprint("+trainer.max_time=00:01:00:00", "data.num_workers=3") == cosine  # budget and loaders only


def test_extending_a_finished_cosine_run_is_refused(run_copy):
    last = run_copy / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with pytest.raises(ConfigError) as error:
        fit(run_copy, "evaluate_after_fit=null", "trainer.max_epochs=2")
    message = str(error.value)
    assert message.startswith(
        f"{run_copy} holds a run of another length (trainer.max_epochs 1 vs 2) whose learning-rate schedule "
        "(augmix.schedules.cosine) is laid out over the whole run"
    ), message
    assert "fresh hydra.run.dir" in message and "model/scheduler=constant" in message
    assert last.read_bytes() == before


@pytest.mark.slow
def test_a_constant_schedule_run_extends_to_exactly_the_longer_run(tmp_path):
    constant = ("evaluate_after_fit=null", "model/scheduler=constant")
    fit(tmp_path / "straight", *constant, "trainer.max_epochs=2")
    fit(tmp_path / "extended", *constant)  # finished at 1 epoch
    fit(tmp_path / "extended", *constant, "trainer.max_epochs=2")
    straight, extended = (
        torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for run in ("straight", "extended")
    )
    assert all(torch.equal(straight[key], extended[key]) for key in straight)


# --------------------------------------------------------------------- post-fit steps on a finished run


def test_post_fit_steps_added_to_a_finished_run_run_on_its_checkpoints(run_copy, caplog):
    last = run_copy / "checkpoints" / "last.ckpt"
    stamp = last.stat().st_mtime_ns
    steps_before = json.loads((run_copy / "metrics.json").read_text())["global_step"]
    post_fit = ("test=true", *(f"evaluate_after_fit.{setting}" for setting in QUICK_EVALUATION))
    with caplog.at_level(logging.INFO, logger="augmix.training"):
        metrics = fit(run_copy, *post_fit)
    assert "running test=true and evaluate_after_fit on its checkpoints" in caplog.text
    assert 0 <= metrics["test/acc"] <= 1 and metrics["robustness/clean_error"] is not None
    recorded = strict_load(run_copy / "metrics.json")
    assert recorded["test/acc"] == metrics["test/acc"] and recorded["finished"]
    assert recorded["global_step"] == steps_before and last.stat().st_mtime_ns == stamp, "no training happened"
    assert strict_load(run_copy / "robustness.json")["sets"]["clean"]["n"] == 8

    report = (run_copy / "robustness.json").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="augmix.training"):
        again = fit(run_copy, *post_fit)
    assert "returning its metrics without training" in caplog.text  # nothing new asked: skipped
    assert again["test/acc"] == metrics["test/acc"] and (run_copy / "robustness.json").stat().st_mtime_ns == report


def test_post_fit_steps_without_the_checkpoint_say_they_cannot_run(run_copy):
    (run_copy / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(ConfigError, match=r"holds a finished run but not its checkpoints/last.ckpt, so test=true cannot run on it"):
        fit(run_copy, "evaluate_after_fit=null", "test=true")


# ------------------------------------------------------------------------------ ckpt_path of others


@pytest.mark.parametrize(
    "overrides, differs",
    [
        (("model.backbone=cifar_wrn16_2",), "model.backbone 'cifar_wrn16_1' vs 'cifar_wrn16_2'"),
        (("data.num_classes=100",), "data.num_classes 10 vs 100, model.num_classes 10 vs 100"),
    ],
    ids=["another-model", "another-class-count"],
)
def test_resuming_another_runs_checkpoint_names_what_differs(trained_run, tmp_path, overrides, differs):
    last = trained_run / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError) as error:
        fit(tmp_path / "new", "evaluate_after_fit=null", f"ckpt_path={last}", *overrides)
    assert str(error.value).startswith(f"ckpt_path={last} was trained with other settings: {differs}; "), error.value
    assert not (tmp_path / "new" / "checkpoints").exists()


def test_resuming_a_plain_state_dict_says_it_is_not_a_train_checkpoint(tmp_path):
    torch.save(timm.create_model("cifar_wrn16_1", num_classes=10).state_dict(), tmp_path / "weights.pth")
    with pytest.raises(CheckpointError) as error:
        fit(tmp_path / "new", "evaluate_after_fit=null", f"ckpt_path={tmp_path / 'weights.pth'}")
    assert str(error.value).startswith(
        f"{tmp_path / 'weights.pth'} is not a train.py checkpoint (a plain state_dict): ckpt_path= continues a "
        f"train.py run from its last.ckpt. To evaluate these weights run evaluate.py checkpoint={tmp_path / 'weights.pth'} "
        "model.backbone=NAME"
    ), error.value


# -------------------------------------------------------------------------------- run-dir files


def test_a_truncated_metrics_json_is_one_line(tmp_path):
    (tmp_path / "metrics.json").write_text('{"val/acc": 0.')
    with pytest.raises(RunDirError) as error:
        fit(tmp_path, "evaluate_after_fit=null")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'metrics.json'} is damaged (") and "\n" not in message
    assert "Delete it and run the same command again" in message


def test_the_sweep_summary_marks_damaged_job_files(tmp_path, caplog):
    for job, overrides, metrics in (
        ("0", "- seed=0\n", '{"val/acc": 0.5, "finished": true}'),
        ("1", "- seed=1\n", '{"val/acc": 0.'),
        ("2", "- seed=2\n- [\n", '{"val/acc": 0.25, "finished": true}'),
    ):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(overrides)
        (tmp_path / job / "metrics.json").write_text(metrics)
    with caplog.at_level(logging.WARNING, logger="augmix.sweeps"):
        write_summary(tmp_path)
    rows = (tmp_path / "sweep_summary.csv").read_text().splitlines()[1:]
    assert [row.rsplit(",", 1)[1] for row in rows] == ["finished", "unreadable", "unreadable"]
    assert f"{tmp_path / '1' / 'metrics.json'} is damaged" in caplog.text
    assert f"{tmp_path / '2' / '.hydra' / 'overrides.yaml'} is damaged" in caplog.text


def test_a_damaged_evaluation_manifest_is_one_line(tmp_path):
    (tmp_path / "run.json").write_text('{"fingerprint": "ab')
    with pytest.raises(RunDirError, match=rf"run.json is damaged \(.*\).*delete {tmp_path} to evaluate every set again"):
        ResultStore(tmp_path, {"benchmark": "x"}).open()
    ResultStore(tmp_path, {"benchmark": "x"}, replace_stale=True).open()  # evaluate_after_fit: replaced
    assert strict_load(tmp_path / "run.json")["description"] == {"benchmark": "x"}


# ----------------------------------------------------------------------------- checkpoint messages


class Payload:
    def __reduce__(self):
        return (os.system, ("echo payload-ran",))


def test_a_blocked_payload_and_an_empty_file_say_what_they_are(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Payload()}, tmp_path / "payload.pth")
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(tmp_path / "payload.pth")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'payload.pth'} was not loaded, for safety: it contains a reference to {os.system.__module__}.system")
    assert "weights_only=True" in message and "If you trust its source" in message and "\n" not in message

    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pth is empty \(0 bytes\)"):
        read_checkpoint(tmp_path / "empty.pth")
