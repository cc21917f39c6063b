"""Exported model folders and .safetensors files from elsewhere: read as data (strict JSON, safetensors,
the allowlists), refused in one line before any compute.

| case | before | after |
|---|---|---|
| ``checkpoint=DIR`` (an export.py folder) | ``cannot read checkpoint DIR (...)`` | evaluated: figures equal to the .ckpt's (tests/test_export.py) |
| config.json ``architecture: hf-hub:...`` / ``local-dir:...`` | - | ``DIR/config.json key architecture='hf-hub:...' is invalid: must be a registered timm model name or torchvision:NAME`` |
| config.json ``model_args.pretrained_cfg_overlay`` (a file to load) | - | ``DIR/config.json key model_args.pretrained_cfg_overlay is not allowed: ...`` |
| config.json ``augmix.data._target_: os.system`` | - | ``DIR/config.json key augmix.data._target_ names a callable that is not allowed: 'os.system'; ...`` |
| config.json with ``NaN`` / not an object | - | ``DIR/config.json is not a strict JSON model config (NaN is not JSON); ...`` |
| model.safetensors with other tensors | - | ``DIR/model.safetensors does not fit backbone 'cifar_wrn16_1': N missing key(s) [...], 1 unexpected key(s) [...]`` |
| model.safetensors with NaN weights | - | ``DIR/model.safetensors holds non-finite weights (...)`` |
| model.safetensors that is a pickle | - | ``cannot read DIR/model.safetensors (...): it is not a safetensors file, or it is damaged; ...``, nothing unpickled |
| a folder without model.safetensors / config.json | - | ``DIR is not an exported model folder: it lacks model.safetensors (...)`` |
| a timm folder (no ``augmix`` entry) without ``data=NAME`` / with another normalisation | - | ``DIR has no data config of this project ...`` / ``DIR/config.json normalises inputs with mean ...`` |
| a bare .safetensors without ``model.backbone`` | - | ``... is a plain state_dict without a training config; name its architecture with model.backbone=NAME ...`` |
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from augmix.errors import ConfigError
from augmix.evaluation import evaluate
from augmix.export import export
from tests.evaluation_fixtures import evaluate_config, lightning_checkpoint
from tests.hostile.test_checkpoints import QUICK_EVALUATION, evaluate_cli, strict_load


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """An export.py folder of the (untrained) quickstart model."""
    root = tmp_path_factory.mktemp("exported")
    return export(lightning_checkpoint(root / "run" / "checkpoints" / "last.ckpt"), root / "wrn16-digits")


def edited(source: Path, target: Path, config: Callable[[dict], None] | None = None,
           weights: Callable[[dict], dict] | None = None) -> Path:
    """A copy of the export with its config.json and/or its tensors changed."""
    shutil.copytree(source, target)
    if config is not None:
        data = json.loads((target / "config.json").read_text())
        config(data)
        (target / "config.json").write_text(json.dumps(data))
    if weights is not None:
        save_file(weights(load_file(target / "model.safetensors")), target / "model.safetensors")
    return target


class Canary:
    """Unpickling this writes a file: proof that a loader ran the payload."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (self.path, "ran"))


def _pickle_as_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(pickle.dumps(Canary(folder.parent / "PWNED")))


def _nan_weight(tensors: dict) -> dict:
    tensors["fc.weight"][0, 0] = float("nan")
    return tensors


CASES = {
    "hub-architecture": (dict(config=lambda c: c.update(architecture="hf-hub:evil/model")),
                         "{config} key architecture='hf-hub:evil/model' is invalid: must be a registered timm model name or torchvision:NAME"),
    "local-dir-architecture": (dict(config=lambda c: c.update(architecture="local-dir:/tmp/elsewhere")),
                               "{config} key architecture='local-dir:/tmp/elsewhere' is invalid: must be a registered timm model name"),
    "file-in-model-args": (dict(config=lambda c: c["model_args"].update(pretrained_cfg_overlay={"file": "/etc/passwd"})),
                           "{config} key model_args.pretrained_cfg_overlay is not allowed: "),
    "callable-data": (dict(config=lambda c: c["augmix"]["data"].update(_target_="os.system")),
                      "{config} key augmix.data._target_ names a callable that is not allowed: 'os.system'; allowed: "
                      "augmix.data.AugMixDataModule; nothing named in an exported model's config.json is imported."),
    "wrong-tensors": (dict(weights=lambda t: {"fc.weight": t["fc.weight"], "head.bias": torch.zeros(10)}),
                      "{weights} does not fit backbone 'cifar_wrn16_1': "),
    "nan-weights": (dict(weights=_nan_weight),
                    "{weights} holds non-finite weights (NaN or infinity in 1 tensor(s), first 'fc.weight')"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_folders_are_refused_in_one_line(folder, tmp_path, capsys, case):
    changes, message = CASES[case]
    evil = edited(folder, tmp_path / "evil", **changes)
    code, err = evaluate_cli(evil, tmp_path / "out", capsys)
    expected = message.format(config=evil / "config.json", weights=evil / "model.safetensors")
    assert code == 2 and err.startswith(f"Error: {expected}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("text", "reason"), [
    (lambda text: text.replace('"num_classes": 10', '"num_classes": NaN', 1), "NaN is not JSON"),
    (lambda text: "[" + text + "]", "it holds a list, not a model config"),
])
def test_config_json_must_be_a_strict_json_object(folder, tmp_path, capsys, text, reason):
    evil = edited(folder, tmp_path / "evil")
    (evil / "config.json").write_text(text((evil / "config.json").read_text()))
    code, err = evaluate_cli(evil, tmp_path / "out", capsys)
    assert code == 2 and err.startswith(f"Error: {evil / 'config.json'} is not a strict JSON model config ({reason});"), err
    assert err.count("\n") == 1


def test_a_pickle_named_model_safetensors_is_never_unpickled(folder, tmp_path, capsys):
    evil = edited(folder, tmp_path / "evil")
    _pickle_as_weights(evil)
    code, err = evaluate_cli(evil, tmp_path / "out", capsys)
    assert code == 2 and err.startswith(f"Error: cannot read {evil / 'model.safetensors'} ("), err
    assert "it is not a safetensors file, or it is damaged" in err and err.count("\n") == 1
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json"])
def test_a_folder_missing_a_file_says_which(folder, tmp_path, capsys, missing):
    partial = edited(folder, tmp_path / "partial")
    (partial / missing).unlink()
    code, err = evaluate_cli(partial, tmp_path / "out", capsys)
    assert code == 2 and err == (
        f"Error: {partial} is not an exported model folder: it lacks {missing} (export.py writes config.json and "
        "model.safetensors; copy the whole folder)\n"
    )


def foreign(folder: Path, target: Path) -> Path:
    """The export as a timm folder from elsewhere: config.json without the augmix entry."""
    return edited(folder, target, config=lambda c: c.pop("augmix"))


def test_a_timm_folder_from_elsewhere_needs_data_with_its_normalisation(folder, tmp_path):
    timm_folder = foreign(folder, tmp_path / "timm")
    quick = ["benchmark=synthetic", *(f"benchmark.{setting}" for setting in QUICK_EVALUATION)]
    with pytest.raises(ConfigError, match=r"has no data config of this project \(config.json has no 'augmix' entry"):
        evaluate(evaluate_config(timm_folder, tmp_path / "a", quick), data_overrides=([], False))
    cfg = evaluate_config(timm_folder, tmp_path / "b", [*quick, "data=tinyimagenet"])
    with pytest.raises(ConfigError) as refused:
        evaluate(cfg, data_overrides=([], True))
    assert str(refused.value).startswith(
        f"{timm_folder / 'config.json'} normalises inputs with mean [0.5, 0.5, 0.5] / std [0.5, 0.5, 0.5] but data tinyimagenet with "
    )
    assert str(refused.value).endswith("add data.mean=[0.5,0.5,0.5] data.std=[0.5,0.5,0.5] to evaluate the model as it was trained")
    summary = evaluate(evaluate_config(timm_folder, tmp_path / "c", [*quick, "data=digits"]), data_overrides=([], True))
    assert summary["checkpoint_kind"] == "exported" and summary["data"] == "digits"


def test_a_bare_safetensors_file_needs_model_backbone(folder, tmp_path, capsys):
    code, err = evaluate_cli(folder / "model.safetensors", tmp_path / "out", capsys)
    assert code == 2 and "is a plain state_dict without a training config; name its architecture with model.backbone=NAME" in err
    code, err = evaluate_cli(folder / "model.safetensors", tmp_path / "out", capsys, "model.backbone=cifar_wrn16_1", "data=digits")
    assert code == 0, err
    assert strict_load(tmp_path / "out" / "robustness.json")["checkpoint_kind"] == "safetensors"
