"""export.py: a train.py checkpoint as a folder timm and the Hugging Face Hub load without this project."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import timm
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file, save_file
from timm.models._hub import HF_SAFE_WEIGHTS_NAME, load_model_config_from_path

from augmix.errors import CheckpointError, ConfigError
from augmix.evaluation import evaluate
from augmix.evaluation.checkpoints import read_checkpoint
from augmix.export import export, export_command
from augmix.export.hub import HubError
from augmix.export.model import load_trained
from augmix.module import CONFIG_KEY
from tests.conftest import ROOT
from tests.evaluation_fixtures import evaluate_config, lightning_checkpoint
from tests.test_compare import report

# (name, train.py overrides): timm's own architecture, the paper's CIFAR one, and split-BN training
MODELS = {
    "resnet18": ["model.backbone=resnet18"],
    "wrn": [],
    "split_bn": ["model.split_bn=true"],
}


def stir_batchnorm(path: Path, seed: int) -> None:
    """Give every BatchNorm running statistic (the auxiliary ones differently) non-default values,
    so outputs depend on exporting exactly the main BN's buffers."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    for key, value in raw["state_dict"].items():
        if key.endswith("running_mean"):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.5)
        elif key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
    torch.save(raw, path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(checkpoint, exported folder) per entry of MODELS; the run dir also holds a robustness.json
    of the checkpoint for the wrn model."""
    root = tmp_path_factory.mktemp("export")
    made = {}
    for index, (name, overrides) in enumerate(MODELS.items()):
        checkpoint = lightning_checkpoint(root / name / "checkpoints" / "last.ckpt", overrides)
        stir_batchnorm(checkpoint, index)
        if name == "wrn":
            sha = read_checkpoint(checkpoint).sha256
            summary = report(4.0, {"gaussian_noise": 30.0, "fog": 12.5}, checkpoint=str(checkpoint), checkpoint_sha256=sha)
            (root / name / "robustness.json").write_text(json.dumps(summary))
        made[name] = (checkpoint, export(checkpoint, root / f"{name}-folder"))
    return made


def test_the_folder_holds_exactly_what_the_hub_and_timm_read(exported):
    checkpoint, folder = exported["wrn"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", HF_SAFE_WEIGHTS_NAME]
    assert all(p.is_file() and not p.is_symlink() for p in folder.iterdir())
    weights = (folder / HF_SAFE_WEIGHTS_NAME).read_bytes()
    header = int.from_bytes(weights[:8], "little")
    assert json.loads(weights[8 : 8 + header])["__metadata__"] == {"format": "pt"}  # safetensors, not a pickle
    plain = timm.create_model("cifar_wrn16_1", num_classes=10).state_dict()
    assert set(load_file(folder / HF_SAFE_WEIGHTS_NAME)) == set(plain)  # timm names: no net. prefix
    pretrained_cfg, architecture, model_args = load_model_config_from_path(folder)  # timm's own reader
    assert architecture == "cifar_wrn16_1" and model_args["num_classes"] == 10
    assert tuple(pretrained_cfg["input_size"]) == (3, 32, 32) and pretrained_cfg["crop_pct"] == 1.0
    assert pretrained_cfg["mean"] == [0.5, 0.5, 0.5] and pretrained_cfg["std"] == [0.5, 0.5, 0.5]
    assert pretrained_cfg["interpolation"] == "bilinear" and pretrained_cfg["label_names"] == [str(d) for d in range(10)]
    config = json.loads((folder / "config.json").read_text())
    assert config["augmix"]["checkpoint_sha256"] == read_checkpoint(checkpoint).sha256
    assert config["augmix"]["data"]["name"] == "digits" and "root" not in config["augmix"]["data"]


def test_timm_architectures_keep_no_provenance_of_timms_own_weights(exported):
    _, folder = exported["resnet18"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_classes"] == 10
    assert not {"tag", "hf_hub_id", "url", "license", "paper_ids"} & set(config["pretrained_cfg"])


def test_split_bn_checkpoints_export_without_their_auxiliary_layers(exported):
    checkpoint, folder = exported["split_bn"]
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert any(".aux_bn." in key for key in stored)
    assert not any("aux_bn" in key for key in load_file(folder / HF_SAFE_WEIGHTS_NAME))


LOADER = r"""
import sys
import timm
import torch
from safetensors.torch import load_file, save_file

x = load_file(sys.argv[1])["x"]
outputs = {}
for name, folder in zip(sys.argv[3::2], sys.argv[4::2]):
    if name != "resnet18" and "augmix" not in sys.modules:
        import augmix  # the only addition for the paper's CIFAR architectures
    assert name != "resnet18" or "augmix" not in sys.modules, "timm's own architectures need no project import"
    model = timm.create_model("local-dir:" + folder, pretrained=True).eval()
    with torch.no_grad():
        outputs[name] = model(x)
    if name == "wrn":  # the file overlay works too
        overlay = dict(file=folder + "/model.safetensors", num_classes=10)
        model = timm.create_model("cifar_wrn16_1", num_classes=10, pretrained=True, pretrained_cfg_overlay=overlay).eval()
        with torch.no_grad():
            outputs["wrn_overlay"] = model(x)
save_file(outputs, sys.argv[2])
"""


def test_timm_loads_the_folders_and_gives_the_checkpoints_outputs(exported, tmp_path):
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    save_file({"x": x}, tmp_path / "x.safetensors")
    folders = [arg for name in MODELS for arg in (name, str(exported[name][1]))]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "x.safetensors"), str(tmp_path / "out.safetensors"), *folders],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = load_file(tmp_path / "out.safetensors")
    for name in MODELS:
        model = load_trained(str(exported[name][0])).model  # the checkpoint's network, as evaluation builds it
        with torch.no_grad():
            expected = model(x)
        assert torch.equal(outputs[name], expected), name
    assert torch.equal(outputs["wrn_overlay"], outputs["wrn"])


def test_the_model_card_has_the_recipe_and_this_checkpoints_robustness(exported):
    card = (exported["wrn"][1] / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: timm\npipeline_tag: image-classification\n")
    assert "| seed | `0` |" in card and "| JSD weight (loss.weight) | `12.0` |" in card and "| epochs | `12` |" in card
    assert "| backbone | `cifar_wrn16_1` |" in card and "import augmix" in card
    assert "**REGENERATED**" in card and "**PARTIAL**" in card and "the first 100 images of each set" in card
    assert "| mean corruption error | 21.25 |" in card and "| fog | 12.50 |" in card
    resnet_card = (exported["resnet18"][1] / "README.md").read_text()
    assert "No robustness report" in resnet_card and "import augmix" not in resnet_card


def test_a_report_of_another_checkpoint_is_not_put_on_the_card(exported, tmp_path):
    checkpoint, _ = exported["wrn"]
    other = tmp_path / "other" / "robustness.json"
    other.parent.mkdir()
    other.write_text(json.dumps(report(4.0, {"fog": 1.0}, checkpoint="best.ckpt", checkpoint_sha256="f" * 64)))
    with pytest.raises(ConfigError, match=r"robustness=.*reports on another checkpoint \(best.ckpt\)"):
        export(checkpoint, tmp_path / "folder", robustness=other)
    assert not (tmp_path / "folder").exists()


def test_published_figures_appear_for_a_matching_released_report(exported, tmp_path):
    checkpoint, _ = exported["wrn"]
    sha = read_checkpoint(checkpoint).sha256
    released = tmp_path / "eval" / "robustness.json"
    released.parent.mkdir()
    summary = report(23.0, {"fog": 60.0}, benchmark="imagenetc", data="imagenet", backbone="cifar_wrn16_1",
                     regenerated=False, regeneration=None, complete=True, checkpoint_sha256=sha)
    released.write_text(json.dumps(summary))
    card = (export(checkpoint, tmp_path / "folder", robustness=released) / "README.md").read_text()
    assert "the released benchmark files" in card and "published:" not in card  # none published for this model
    summary["backbone"] = "resnet50"
    released.write_text(json.dumps(summary))
    card = (export(checkpoint, tmp_path / "folder", robustness=released) / "README.md").read_text()
    assert "- published: AugMix + JSD, 180 epochs: mCE 65.3%" in card


def test_evaluating_the_folder_the_safetensors_and_the_checkpoint_gives_identical_figures(exported, tmp_path):
    """evaluate.py checkpoint=DIR (the safe way to evaluate a model from elsewhere) measures exactly
    what the .ckpt does; the report names the weights file and its sha256."""
    checkpoint, folder = exported["wrn"]
    quick = ["benchmark=synthetic", "benchmark.corruptions=[fog,gaussian_noise]", "benchmark.severities=[1,5]",
             "benchmark.limit_per_set=16", "data.eval_batch_size=16"]
    runs = {
        "ckpt": (checkpoint, [], ([], False)),
        "folder": (folder, [], ([], False)),
        "safetensors": (folder / HF_SAFE_WEIGHTS_NAME, ["model.backbone=cifar_wrn16_1", "data=digits"], ([], True)),
    }
    summaries = {
        name: evaluate(evaluate_config(path, tmp_path / name, [*quick, *extra]), data_overrides=data)
        for name, (path, extra, data) in runs.items()
    }
    figures = ("clean_error", "mean_corruption_error", "corruption_errors", "calibration", "sets")
    for name in ("folder", "safetensors"):
        assert {key: summaries[name][key] for key in figures} == {key: summaries["ckpt"][key] for key in figures}, name
    assert len({summaries["ckpt"]["sets"][key]["loss"] for key in summaries["ckpt"]["sets"]}) > 1  # not a constant model
    weights_sha = hashlib.sha256((folder / HF_SAFE_WEIGHTS_NAME).read_bytes()).hexdigest()
    assert [summaries[name]["checkpoint_kind"] for name in runs] == ["lightning", "exported", "safetensors"]
    assert summaries["folder"]["checkpoint_sha256"] == summaries["safetensors"]["checkpoint_sha256"] == weights_sha
    assert summaries["folder"]["checkpoint"] == str(folder / HF_SAFE_WEIGHTS_NAME)


def hostile(tmp_path: Path, source: Path, change) -> Path:
    raw = torch.load(source, map_location="cpu", weights_only=True)
    change(raw[CONFIG_KEY])
    path = tmp_path / "hostile.ckpt"
    torch.save(raw, path)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["model"].update(backbone="hf-hub:evil/model"), "checkpoint config key model.backbone='hf-hub:evil/model' is invalid"),
        (lambda c: c["model"].update(backbone="os.system"), "checkpoint config key model.backbone='os.system' is not a registered model"),
        (lambda c: c["model"].update(backbone_kwargs={"pretrained_cfg_overlay": {"file": "/etc/x"}}), "backbone_kwargs.pretrained_cfg_overlay is not allowed"),
        (lambda c: c["data"].update(_target_="builtins.exec"), "data._target_ names a callable that is not allowed"),
        (lambda c: c.update(model="resnet18"), "checkpoint config key model holds str"),
    ],
)
def test_hostile_checkpoint_configs_are_refused_and_nothing_is_written(exported, tmp_path, change, message):
    path = hostile(tmp_path, exported["wrn"][0], change)
    with pytest.raises((ConfigError, CheckpointError), match=message.replace("(", r"\(").replace("[", r"\[")):
        export(path, tmp_path / "folder")
    assert not (tmp_path / "folder").exists()


def test_plain_state_dicts_are_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(3, 8), "fc.bias": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="is a plain state_dict: export needs a train.py checkpoint"):
        export(path, tmp_path / "folder")


def test_out_must_be_new_empty_or_a_previous_export(exported, tmp_path):
    checkpoint, _ = exported["split_bn"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"out=.*busy holds files an export does not write \(notes.txt\)"):
        export(checkpoint, busy)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    previous = export(exported["wrn"][0], tmp_path / "again")
    export(checkpoint, previous)  # a previous export is replaced as a whole
    sha = json.loads((previous / "config.json").read_text())["augmix"]["checkpoint_sha256"]
    assert sha == read_checkpoint(checkpoint).sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "busy"]  # no staging folders left


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_push_to_an_unreachable_hub_fails_with_one_line_and_keeps_the_folder(exported, tmp_path, monkeypatch):
    from huggingface_hub import constants

    port = closed_port()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(HubError) as failed:
        export(exported["wrn"][0], tmp_path / "folder", push_to_hub="me/wrn16-augmix", hub_timeout=2)
    message = str(failed.value)
    assert message.startswith(f"cannot reach the Hugging Face Hub at http://127.0.0.1:{port} (")
    assert "2 s limit" in message and "hf upload me/wrn16-augmix" in message and "\n" not in message
    assert (tmp_path / "folder" / "model.safetensors").is_file()


def test_a_hub_that_answers_badly_fails_with_one_line(exported, tmp_path, monkeypatch):
    from huggingface_hub import constants

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def hang_up() -> None:  # accept each connection and close it without a response
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    try:
        with pytest.raises(HubError, match=r"^push_to_hub=me/model failed \(\w+: .*\); the exported folder .* is complete"):
            export(exported["wrn"][0], tmp_path / "folder", push_to_hub="me/model", hub_timeout=2)
    finally:
        server.close()


def test_bad_repo_ids_and_missing_arguments_are_one_line(exported, tmp_path):
    with pytest.raises(ConfigError, match=r"push_to_hub='not a repo' is invalid: must be a Hub repository id USER/NAME"):
        export(exported["wrn"][0], tmp_path / "folder", push_to_hub="not a repo")
    assert not (tmp_path / "folder").exists()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("export", overrides=[f"out={tmp_path / 'folder'}"])
    with pytest.raises(ConfigError, match=r"checkpoint=PATH is required"):
        export_command(cfg)
