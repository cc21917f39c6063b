"""MixUp / CutMix on AugMix triplets: one shared draw per image, soft targets, timm's semantics."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data.mixup import mixup_target, rand_bbox

from augmix.data import AugMixDataModule
from augmix.losses import JSDLoss
from augmix.mixing import MixUpCutMix, box_masks, cutmix_boxes, mix_targets
from augmix.streams import MIX_STREAM, keyed_generator
from augmix.training import build_datamodule
from tests.conftest import compose_train

B, C, H, W, CLASSES = 8, 3, 16, 20, 5


def triplet(seed: int = 0) -> list[torch.Tensor]:
    """Three views of B images with distinct, continuous pixel values (no accidental equalities)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, C, H, W, generator=g) for _ in range(3)]


def labels() -> torch.Tensor:
    return torch.tensor([0, 1, 2, 3, 4, 0, 2, 1])  # every image's label differs from its partner's (B-1-i)


def mix(views, **kwargs):
    settings = {"mixup_alpha": 0.0, "cutmix_alpha": 0.0, "num_classes": CLASSES, "mode": "elem", **kwargs}
    return MixUpCutMix(**settings)(views, labels(), torch.Generator().manual_seed(1))


def own_share(target: torch.Tensor) -> torch.Tensor:
    """lambda per image, read off the soft targets."""
    return target.gather(1, labels().view(-1, 1)).squeeze(1)


def test_cutmix_pastes_the_same_partner_box_into_all_three_views():
    views = triplet()
    mixed, target = mix(views, cutmix_alpha=1.0)
    partner = [v.flip(0) for v in views]
    lam = own_share(target)
    for i in range(B):
        masks = []
        for v in range(3):
            from_partner = mixed[v][i] == partner[v][i]
            assert torch.all(from_partner | (mixed[v][i] == views[v][i]))  # every pixel is one of the two
            masks.append(from_partner.all(dim=0))
        assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])
        rows, cols = masks[0].any(dim=1).nonzero(), masks[0].any(dim=0).nonzero()
        if len(rows):  # a rectangle: its bounding box is all pasted
            assert masks[0][rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        assert lam[i].item() == pytest.approx(1 - masks[0].sum().item() / (H * W))  # lambda = the real area


def test_mixup_blends_all_three_views_with_the_same_partner_and_lambda():
    views = triplet()
    mixed, target = mix(views, mixup_alpha=1.0)
    lam = own_share(target)
    assert lam.min() < 0.9 and len(set(lam.tolist())) == B  # elem mode: one lambda per image
    for v in range(3):
        own, partner = views[v], views[v].flip(0)
        recovered = (mixed[v] - partner) / (own - partner)  # solves mixed = l * own + (1 - l) * partner
        assert torch.allclose(recovered, lam.view(B, 1, 1, 1).expand_as(recovered), atol=1e-3)


def test_soft_targets_sum_to_one_and_match_timm():
    views = triplet()
    for kwargs in ({"mixup_alpha": 1.0}, {"cutmix_alpha": 1.0}, {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}):
        _, target = mix(views, **kwargs)
        assert target.dtype == torch.float32 and target.shape == (B, CLASSES)
        assert torch.allclose(target.sum(dim=1), torch.ones(B))
        lam = own_share(target)
        assert torch.allclose(target, mixup_target(labels(), CLASSES, lam.view(-1, 1), smoothing=0.0))


def test_cutmix_box_is_timms_rand_bbox_and_lambda_is_area_corrected():
    lam = torch.tensor([0.1, 0.35, 0.5, 0.77, 0.93, 0.999], dtype=torch.float64)
    for seed, value in enumerate(lam.tolist()):
        np.random.seed(seed)
        expected = [int(v) for v in rand_bbox((H, W), value)]
        np.random.seed(seed)  # the same centre, drawn as rand_bbox draws it
        cy, cx = np.random.randint(0, H), np.random.randint(0, W)
        box = cutmix_boxes(lam[seed : seed + 1], H, W, torch.tensor([cy]), torch.tensor([cx]))
        assert box[0].tolist() == expected
    mixer = MixUpCutMix(0.0, 1.0, CLASSES, mode="elem")
    params = mixer.sample(64, H, W, torch.Generator().manual_seed(0))
    area = (params.boxes[:, 1] - params.boxes[:, 0]) * (params.boxes[:, 3] - params.boxes[:, 2])
    assert torch.allclose(params.lam, 1 - area.float() / (H * W))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_batch_pair_and_elem_modes():
    g = partial(seeded, 5)
    batch = MixUpCutMix(1.0, 1.0, CLASSES, mode="batch").sample(B, H, W, g())
    assert len(set(batch.lam.tolist())) == 1 and len({tuple(b) for b in batch.boxes.tolist()}) == 1
    pair = MixUpCutMix(1.0, 1.0, CLASSES, mode="pair", switch_prob=0.5).sample(B, H, W, g())
    assert torch.equal(pair.lam, pair.lam.flip(0)) and torch.equal(pair.boxes, pair.boxes.flip(0))
    assert len(set(pair.lam.tolist())) == B // 2
    odd = MixUpCutMix(1.0, 0.0, CLASSES, mode="pair").sample(7, H, W, g())
    assert odd.lam[3] == 1.0  # the middle image is its own partner
    elem = MixUpCutMix(1.0, 0.0, CLASSES, mode="elem").sample(B, H, W, g())
    assert len(set(elem.lam.tolist())) == B


def test_mix_prob_and_switch_prob():
    g = partial(seeded, 2)
    never = MixUpCutMix(1.0, 1.0, CLASSES, prob=0.0, mode="elem").sample(256, H, W, g())
    assert torch.all(never.lam == 1) and not never.cutmix.any()
    half = MixUpCutMix(1.0, 0.0, CLASSES, prob=0.5, mode="elem").sample(2000, H, W, g())
    assert 0.45 < (half.lam < 1).float().mean() < 0.55
    cut = MixUpCutMix(1.0, 1.0, CLASSES, switch_prob=1.0, mode="elem").sample(256, H, W, g())
    assert cut.cutmix.all()
    blend = MixUpCutMix(1.0, 1.0, CLASSES, switch_prob=0.0, mode="elem").sample(256, H, W, g())
    assert not blend.cutmix.any()
    switch = MixUpCutMix(1.0, 1.0, CLASSES, switch_prob=0.3, mode="elem").sample(2000, H, W, g())
    assert 0.25 < switch.cutmix.float().mean() < 0.35


def test_draws_come_only_from_the_given_generator():
    views = triplet()
    mixer = MixUpCutMix(1.0, 1.0, CLASSES, mode="elem")
    torch.manual_seed(0)
    a = mixer(views, labels(), keyed_generator(0, 3, 0, 0, 0))
    torch.manual_seed(1)
    b = mixer(views, labels(), keyed_generator(0, 3, 0, 0, 0))
    c = mixer(views, labels(), keyed_generator(0, 3, 0, 0, 1))
    assert all(torch.equal(x, y) for x, y in zip(a[0], b[0])) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


# ------------------------------------------------------------------------------------------- loss


def test_one_hot_soft_targets_give_the_same_jsd_loss_as_class_indices():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(B, CLASSES, generator=g) for _ in range(3)]
    for smoothing in (0.0, 0.1):
        loss = JSDLoss(12.0, smoothing)
        hard = loss(logits[0], logits[1:], labels())
        soft = loss(logits[0], logits[1:], F.one_hot(labels(), CLASSES).float())
        assert torch.allclose(hard.total, soft.total) and torch.allclose(hard.consistency, soft.consistency)


def test_label_smoothing_of_mixed_targets_equals_timms_smoothing_before_mixing():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, CLASSES, generator=g)
    lam = torch.rand(B, generator=g)
    ours = JSDLoss(12.0, 0.1)(logits, [], mix_targets(labels(), CLASSES, lam)).total
    timms = F.cross_entropy(logits, mixup_target(labels(), CLASSES, lam.view(-1, 1), smoothing=0.1))
    assert torch.allclose(ours, timms)


# ------------------------------------------------------------------------------------- DataModule


def digits_module(*overrides: str) -> AugMixDataModule:
    cfg = compose_train("experiment=quickstart", *overrides)
    module: AugMixDataModule = build_datamodule(cfg)
    module.setup("fit")
    module.train_dataloader()
    return module


def finished(module: AugMixDataModule) -> dict:
    return module.finish_batch(next(iter(module.train_dataloader())), training=True)


def test_with_mixing_off_batches_are_unchanged_and_targets_are_class_indices():
    module = digits_module()
    assert module.views.mixer is None and module.views.eraser is None
    raw = next(iter(module.train_dataloader()))
    expected = [module.normalize(raw["image"]), *raw["views"]]  # the workers' AugMix views come normalised
    batch = module.finish_batch(raw, training=True)
    assert batch["target"].dtype == torch.long and torch.equal(batch["target"], raw["target"])
    assert all(torch.equal(a, b) for a, b in zip(batch["views"], expected))


@pytest.mark.parametrize("placement", ["workers", "device"])
def test_mixing_in_the_data_module_for_both_placements(placement):
    plain = finished(digits_module(f"augmix.placement={placement}"))
    module = digits_module(f"augmix.placement={placement}", "augmix.cutmix.alpha=1.0", "augmix.mix_mode=elem")
    batch = finished(module)
    assert batch["target"].shape == (64, 10) and torch.allclose(batch["target"].sum(1), torch.ones(64))
    params = module.views.mixer.sample(64, 32, 32, keyed_generator(module.seed, MIX_STREAM, 0, 0, 0))  # the batch's draw
    inside = box_masks(params.boxes, 32, 32, torch.device("cpu")) & params.cutmix.view(-1, 1, 1, 1)
    assert inside.any() and (~inside).any()
    for mixed, view in zip(batch["views"], plain["views"]):  # one box per image, the same in all three views
        assert torch.equal(mixed.masked_select(inside), view.flip(0).masked_select(inside))
        assert torch.equal(mixed.masked_select(~inside), view.masked_select(~inside))


def test_both_placements_mix_and_erase_identically():
    common = ("augmix.mixup.alpha=1.0", "augmix.cutmix.alpha=1.0", "augmix.mix_mode=pair", "augmix.erase.prob=0.5")
    workers = finished(digits_module("augmix.placement=workers", *common))
    device = finished(digits_module("augmix.placement=device", *common))
    assert all(torch.equal(a, b) for a, b in zip(workers["views"], device["views"]))
    assert torch.equal(workers["target"], device["target"])


def test_mixing_applies_without_augmix_too():
    module = digits_module("augmix.enabled=false", "augmix.mixup.alpha=1.0")
    batch = finished(module)
    assert len(batch["views"]) == 1 and batch["target"].shape == (64, 10)
    raw = next(iter(module.train_dataloader()))
    assert not torch.equal(batch["views"][0], module.normalize(raw["image"]))
