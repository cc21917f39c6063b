"""Auxiliary (split) BatchNorm: exact in evaluation, activations kept, separate training statistics."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import timm
import torch
from timm.layers import BatchNormAct2d
from torch import nn

from augmix.losses import JSDLoss
from augmix.models.split_bn import AUX_BN_KEY, AuxiliaryBatchNorm, SplitBatchNormAct2d, convert_split_bn, strip_aux_bn
from augmix.module import AugMixModule

B = 4


def with_random_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so an eval-mode mismatch would show."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


@pytest.fixture(scope="module")
def mobilenet() -> nn.Module:
    torch.manual_seed(0)
    return with_random_bn(timm.create_model("mobilenetv3_small_100", num_classes=10, pretrained=False)).eval()


def images(seed: int, count: int = B, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) + shift


def test_eval_outputs_are_identical_after_conversion_and_keys_unchanged(mobilenet):
    x = images(0)
    with torch.no_grad():
        before = mobilenet(x)
        split = convert_split_bn(copy.deepcopy(mobilenet)).eval()
        assert torch.equal(split(x), before)
    keys = split.state_dict().keys()
    assert {k for k in keys if not AUX_BN_KEY.search(k)} == set(mobilenet.state_dict())
    aux = [k for k in keys if AUX_BN_KEY.search(k)]
    assert aux and all(".aux_bn." in k for k in aux) and "bn1.aux_bn.running_mean" in aux
    plain = timm.create_model("mobilenetv3_small_100", num_classes=10).eval()
    plain.load_state_dict(strip_aux_bn(split.state_dict()), strict=True)  # loads without the auxiliary layers
    with torch.no_grad():
        assert torch.equal(plain(x), before)


def test_activations_survive_in_both_branches(mobilenet):
    split = convert_split_bn(copy.deepcopy(mobilenet)).train()
    layers = [m for m in split.modules() if isinstance(m, SplitBatchNormAct2d)]
    acts = {type(m.act).__name__ for m in layers}
    assert {"ReLU", "Hardswish"} <= acts
    assert all(type(m.aux_bn.act) is type(m.act) and type(m.aux_bn) is BatchNormAct2d for m in layers)
    lowest = {"ReLU": 0.0, "Hardswish": -0.375}  # minima of the activations
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append((type(m.act).__name__, o))) for m in layers]
    split(torch.cat([images(1), images(2), images(3)]))
    for hook in hooks:
        hook.remove()
    checked = [(name, out) for name, out in outputs if name in lowest]
    assert len(checked) >= 10
    for name, out in checked:  # without the activation BN outputs would go well below these minima
        assert out.min() >= lowest[name] - 1e-6


def test_clean_and_augmented_rows_use_separate_statistics(mobilenet):
    clean, augmented = images(1), torch.cat([images(2, shift=1.0), images(3, shift=1.0)])
    split = convert_split_bn(copy.deepcopy(mobilenet)).train()
    logits = split(torch.cat([clean, augmented]))
    reference_clean, reference_aug = copy.deepcopy(mobilenet).train(), copy.deepcopy(mobilenet).train()
    # The auxiliary layers start as copies, so each branch is exactly the unconverted model run on its own rows in training mode.
    assert torch.allclose(logits[:B], reference_clean(clean), atol=1e-5)
    assert torch.allclose(logits[B:], reference_aug(augmented), atol=1e-5)
    layers = [m for m in split.modules() if isinstance(m, AuxiliaryBatchNorm)]
    plain = [m for m in reference_clean.modules() if isinstance(m, nn.BatchNorm2d)]
    aux_plain = [m for m in reference_aug.modules() if isinstance(m, nn.BatchNorm2d)]
    for layer, main_ref, aux_ref in zip(layers, plain, aux_plain, strict=True):
        assert torch.allclose(layer.running_mean, main_ref.running_mean, atol=1e-5)
        assert torch.allclose(layer.aux_bn.running_mean, aux_ref.running_mean, atol=1e-5)
        assert not torch.allclose(layer.running_var, layer.aux_bn.running_var)
    # (Running means can coincide: after a BN without activation the next 1x1 conv sees mean beta in both.)
    assert not torch.allclose(layers[0].running_mean, layers[0].aux_bn.running_mean)


def test_plain_batchnorm2d_models_convert_too():
    torch.manual_seed(0)
    model = with_random_bn(timm.create_model("cifar_wrn16_1", num_classes=10)).eval()
    x = images(4)
    with torch.no_grad():
        before = model(x)
        split = convert_split_bn(copy.deepcopy(model)).eval()
        assert torch.equal(split(x), before)
    assert sum(isinstance(m, AuxiliaryBatchNorm) for m in split.modules()) == sum(
        isinstance(m, nn.BatchNorm2d) for m in model.modules()
    )
    split.train()(torch.cat([x, x + 1, x - 1]))  # three equal views per batch
    with pytest.raises(ValueError, match="3 equal views"):
        split(x[:2])


def test_unsupported_or_repeated_conversion_is_refused():
    with pytest.raises(TypeError, match="cannot convert 0 \\(SyncBatchNorm\\)"):
        convert_split_bn(nn.Sequential(nn.SyncBatchNorm(4)))
    model = convert_split_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    with pytest.raises(ValueError, match="already has an auxiliary BatchNorm"):
        convert_split_bn(model)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_module_with_split_bn_trains_on_triplets_only():
    module = AugMixModule(
        "cifar_wrn16_1", 10, optimizer=partial(torch.optim.SGD, lr=0.1), loss=JSDLoss(), split_bn=True
    )
    assert any(isinstance(m, AuxiliaryBatchNorm) for m in module.net.modules())
    module.train()
    target = torch.arange(B)
    loss = module.training_step({"views": [images(1), images(2), images(3)], "target": target}, 0)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match=r"the module was built for 3 view\(s\) per batch \(jsd=True\), got 1"):
        module.training_step({"views": [images(1)], "target": target}, 0)
