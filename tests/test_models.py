"""The AugMix CIFAR architectures: exact sizes, timm registry integration, timm-style API."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from timm.data import resolve_data_config
from torch import nn

import augmix.models  # noqa: F401  (registers the models with timm)
from augmix.models import DenseNet, WideResNet

# Parameter counts of the reference google-research/augmix models at 10 classes.
PAPER_COUNTS = {
    "cifar_wrn40_2": 2_243_546,
    "cifar_allconv": 1_409_674,
    "cifar_densenet40_12": 1_059_298,
    "cifar_resnext29_4x32": 6_807_882,
}
ALL_NAMES = sorted(PAPER_COUNTS) + [
    "cifar_wrn16_1",
    "cifar_wrn16_2",
    "cifar_wrn28_10",
    "cifar_wrn40_4",
]

# State-dict keys of the reference code, so its checkpoints load unchanged.
REFERENCE_KEYS = {
    "cifar_wrn40_2": [
        "conv1.weight",
        "block1.layer.0.conv_shortcut.weight",
        "block3.layer.5.bn2.running_var",
        "fc.bias",
    ],
    "cifar_allconv": [
        "features.0.bias",
        "features.28.weight",
        "features.29.running_mean",
        "classifier.weight",
    ],
    "cifar_densenet40_12": [
        "dense1.11.conv1.weight",
        "trans2.conv1.weight",
        "bn1.weight",
        "fc.weight",
    ],
    "cifar_resnext29_4x32": [
        "conv_1_3x3.weight",
        "stage_2.0.downsample.1.weight",
        "stage_3.2.bn_expand.bias",
        "classifier.bias",
    ],
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_paper_models_have_exact_reference_parameter_counts(name: str) -> None:
    model = timm.create_model(name, num_classes=10)
    assert n_params(model) == PAPER_COUNTS[name]

    wide = timm.create_model(name, num_classes=100)
    assert wide.get_classifier().out_features == 100
    assert n_params(wide) - PAPER_COUNTS[name] == 90 * (model.num_features + 1)


@pytest.mark.parametrize("name", sorted(REFERENCE_KEYS))
def test_state_dict_keeps_reference_names(name: str) -> None:
    keys = timm.create_model(name).state_dict().keys()
    assert set(REFERENCE_KEYS[name]) <= set(keys)


def test_registry_lists_every_model_without_pretrained_weights() -> None:
    assert set(ALL_NAMES) <= set(timm.list_models("cifar_*"))
    assert not set(ALL_NAMES) & set(timm.list_models("cifar_*", pretrained=True))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_create_model_forward_shape(name: str) -> None:
    model = timm.create_model(name, num_classes=7).eval()
    assert model.num_classes == 7
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
        assert model(torch.randn(1, 3, 32, 32)).shape == (
            1,
            7,
        )  # the reference DenseNet squeezed this to (7,)


@pytest.mark.parametrize("name", ["cifar_wrn16_1", "cifar_allconv"])
def test_in_chans_changes_the_stem(name: str) -> None:
    model = timm.create_model(name, in_chans=1, num_classes=3).eval()
    stem = model.get_submodule(model.pretrained_cfg["first_conv"])
    assert stem.in_channels == 1 and model.in_chans == 1
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_features_and_head_compose_to_forward(name: str) -> None:
    model = timm.create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.ndim == 4 and feats.shape[1] == model.num_features
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)


def test_reset_classifier_replaces_head_with_reference_init() -> None:
    model = timm.create_model("cifar_resnext29_4x32").eval()
    model.reset_classifier(5)
    head = model.get_classifier()
    assert model.num_classes == 5 and head.out_features == 5
    assert torch.count_nonzero(head.bias) == 0
    assert model.classifier is head  # still under the reference attribute name
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
        model.reset_classifier(0)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, model.num_features)
    assert model.num_classes == 0


def test_pretrained_is_rejected() -> None:
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("cifar_wrn40_2", pretrained=True)


def test_unknown_kwarg_is_named() -> None:
    with pytest.raises(TypeError, match="bogus_option"):
        timm.create_model("cifar_densenet40_12", bogus_option=1)


@pytest.mark.parametrize("depth", [4, 30, 41])
def test_bad_wrn_depth_is_rejected(depth: int) -> None:
    with pytest.raises(ValueError, match=r"6n\+4"):
        WideResNet(depth=depth, widen_factor=2)


def test_bad_densenet_depth_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"3n\+4"):
        DenseNet(depth=41)


def test_data_config_matches_augmix_preprocessing() -> None:
    model = timm.create_model("cifar_wrn40_2")
    cfg = resolve_data_config({}, model=model)
    assert cfg["input_size"] == (3, 32, 32)
    assert tuple(cfg["mean"]) == (0.5, 0.5, 0.5) and tuple(cfg["std"]) == (0.5, 0.5, 0.5)
    assert cfg["crop_pct"] == 1.0
    assert model.get_submodule(model.pretrained_cfg["classifier"]) is model.get_classifier()


def test_wrn_drop_rate_is_in_block_dropout() -> None:
    model = timm.create_model("cifar_wrn16_1", drop_rate=0.3)
    assert all(b.drop_rate == 0.3 for b in model.block2.layer)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))  # dropout active in train mode
        model.eval()
        assert torch.equal(model(x), model(x))


def test_reference_init_scheme() -> None:
    model = timm.create_model("cifar_resnext29_4x32")
    conv = model.stage_3[0].conv_reduce  # 1x1, 512 out channels: std sqrt(2 / 512)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    bn = model.stage_3[0].bn_expand
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    fc = model.get_classifier()  # Kaiming-normal fan-in, unlike PyTorch's default uniform
    assert fc.weight.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.05)
    assert torch.count_nonzero(fc.bias) == 0


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_train_mode_backward_reaches_stem(name: str) -> None:
    model = timm.create_model(name).train()
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grad = model.get_submodule(model.pretrained_cfg["first_conv"]).weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
