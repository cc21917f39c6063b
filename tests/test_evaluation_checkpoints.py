"""Every checkpoint kind users evaluate loads into the right backbone, strictly."""

from __future__ import annotations

import io

import pytest
import timm
import torch
import torchvision

from augmix.errors import CheckpointError
from augmix.evaluation.checkpoints import (
    checkpoint_classes,
    create_backbone,
    load_weights,
    read_checkpoint,
)
from augmix.models.split_bn import convert_split_bn
from tests.evaluation_fixtures import lightning_checkpoint


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, size: int = 32) -> bool:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-5)


def test_lightning_checkpoint_brings_config_and_weights(tmp_path):
    path = lightning_checkpoint(tmp_path / "last.ckpt")
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "lightning"
    assert checkpoint.config["model"]["backbone"] == "cifar_wrn16_1" and checkpoint.config["data"]["name"] == "digits"
    assert not any(key.startswith("net.") for key in checkpoint.state_dict)
    model = load_weights(create_backbone("cifar_wrn16_1", 10), checkpoint, "cifar_wrn16_1")
    trained = torch.load(path, weights_only=True)["state_dict"]
    reference = timm.create_model("cifar_wrn16_1", num_classes=10)
    reference.load_state_dict({k[len("net.") :]: v for k, v in trained.items() if k.startswith("net.")})
    assert _same_outputs(model, reference)


def test_plain_state_dict(tmp_path):
    source = timm.create_model("cifar_wrn16_1", num_classes=10)
    torch.save(source.state_dict(), tmp_path / "model.pth")
    checkpoint = read_checkpoint(tmp_path / "model.pth")
    assert checkpoint.kind == "state_dict" and checkpoint.config is None
    model = create_backbone("cifar_wrn16_1", 10)
    assert checkpoint_classes(checkpoint, model) == 10
    assert _same_outputs(load_weights(model, checkpoint, "cifar_wrn16_1"), source)


def test_official_augmix_release_layout_loads_into_timm_resnet50(tmp_path):
    """The AugMix ImageNet release: {'epoch', 'model', 'state_dict', 'best_acc1', 'optimizer'} with
    DataParallel 'module.' prefixes on torchvision's resnet50; timm's resnet50 has the same names."""
    torch.manual_seed(0)
    official = torchvision.models.resnet50()
    with torch.no_grad():  # non-trivial BN statistics, so a key mix-up would show in the outputs
        for module in official.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = {f"module.{key}": value for key, value in official.state_dict().items()}
    torch.save(
        {
            "epoch": 179,
            "model": "resnet50",
            "state_dict": state,
            "best_acc1": 77.5,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "momentum": 0.9, "params": [0, 1]}]},
        },
        tmp_path / "checkpoint.pth.tar",
        _use_new_zipfile_serialization=False,  # the 2019 release predates the zip format
    )
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pth.tar")
    model = create_backbone("resnet50", 1000)
    assert checkpoint_classes(checkpoint, model) == 1000
    assert _same_outputs(load_weights(model, checkpoint, "resnet50"), official, size=64)


def test_torchvision_backbones_by_name(tmp_path):
    official = torchvision.models.mobilenet_v3_small(num_classes=10)
    torch.save(official.state_dict(), tmp_path / "mobilenet.pth")
    checkpoint = read_checkpoint(tmp_path / "mobilenet.pth")
    model = create_backbone("torchvision:mobilenet_v3_small", 10)
    assert checkpoint_classes(checkpoint, model) == 10
    assert _same_outputs(load_weights(model, checkpoint, "torchvision:mobilenet_v3_small"), official, size=64)


def test_split_bn_auxiliary_layers_are_ignored_and_nothing_else(tmp_path):
    torch.manual_seed(0)
    trained = convert_split_bn(timm.create_model("cifar_wrn16_1", num_classes=10), num_views=3)
    state = trained.state_dict()
    assert any(".aux_bn." in key for key in state)
    torch.save(state, tmp_path / "split.pth")
    checkpoint = read_checkpoint(tmp_path / "split.pth")
    assert checkpoint.dropped_auxiliary > 0 and not any("aux_bn" in key for key in checkpoint.state_dict)
    plain = load_weights(create_backbone("cifar_wrn16_1", 10), checkpoint, "cifar_wrn16_1")
    assert _same_outputs(plain, trained)  # evaluation uses the main BN only

    timm_style = {**timm.create_model("cifar_wrn16_1", num_classes=10).state_dict()}
    timm_style["bn1.aux_bn.0.weight"] = timm_style["bn1.weight"].clone()  # timm's SplitBatchNorm2d naming
    torch.save(timm_style, tmp_path / "timm_split.pth")
    assert read_checkpoint(tmp_path / "timm_split.pth").dropped_auxiliary == 1

    orphan = {**timm.create_model("cifar_wrn16_1", num_classes=10).state_dict(), "head.aux_bn.weight": torch.ones(3)}
    torch.save(orphan, tmp_path / "orphan.pth")  # no main layer 'head.weight': not auxiliary, so strict
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\) \['head.aux_bn.weight'\]"):
        load_weights(create_backbone("cifar_wrn16_1", 10), read_checkpoint(tmp_path / "orphan.pth"), "cifar_wrn16_1")


def test_wrong_backbone_is_reported_with_the_keys(tmp_path):
    torch.save(timm.create_model("cifar_wrn16_1", num_classes=10).state_dict(), tmp_path / "wrn.pth")
    checkpoint = read_checkpoint(tmp_path / "wrn.pth")
    with pytest.raises(
        CheckpointError, match="does not fit backbone 'cifar_allconv'.*missing key.*Check model.backbone"
    ):
        load_weights(create_backbone("cifar_allconv", 10), checkpoint, "cifar_allconv")
    with pytest.raises(CheckpointError, match="does not fit backbone 'cifar_wrn16_2'.*size mismatch"):
        load_weights(create_backbone("cifar_wrn16_2", 10), checkpoint, "cifar_wrn16_2")
    with pytest.raises(CheckpointError, match="cannot build model.backbone='no_such_net'"):
        create_backbone("no_such_net", 10)


class Payload:  # unpickling this would run arbitrary code in a hostile file
    pass


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda path: path.write_bytes(b"not a checkpoint"), "cannot read checkpoint.*not a PyTorch checkpoint"),
        (lambda path: path.write_bytes(_saved({"w": torch.zeros(3)})[:60]), "cannot read checkpoint.*complete"),
        (
            lambda path: torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Payload()}, path),
            "other than tensors.*Payload",
        ),
        (lambda path: torch.save({"epoch": 3}, path), "holds no weights"),
    ],
)
def test_unreadable_or_unsafe_checkpoints(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    content(path)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)
