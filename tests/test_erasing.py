"""Random erasing: timm's recipe, batched and keyed; by default the clean view stays clean."""

from __future__ import annotations

import pytest
import torch

from augmix.erasing import RandomErasing, erase, erase_boxes
from tests.test_mixing import digits_module, finished

B, C, H, W = 64, 3, 32, 32


def triplet() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(B, C, H, W, generator=g) + 5 for _ in range(3)]  # no pixel is 0 by chance


def erased_masks(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return (before != after).any(dim=1)


def test_boxes_follow_the_area_and_ratio_ranges():
    boxes = erase_boxes(4000, H, W, 1.0, (0.02, 1 / 3), (0.3, 1 / 0.3), torch.Generator().manual_seed(0))
    h, w = boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] <= H).all() and (boxes[:, 2] >= 0).all() and (boxes[:, 3] <= W).all()
    erased = h > 0
    assert erased.float().mean() > 0.99  # almost every image finds a fitting shape within 10 attempts
    share = (h * w)[erased].float() / (H * W)
    assert share.min() > 0.01 and share.max() < 0.40  # [0.02, 1/3] up to rounding of the sides
    aspect = h[erased].float() / w[erased].float()
    assert aspect.min() > 0.2 and aspect.max() < 5
    assert abs(aspect.log().median().item()) < 0.15  # log-uniform around 1
    half = erase_boxes(4000, H, W, 0.5, (0.02, 1 / 3), (0.3, 1 / 0.3), torch.Generator().manual_seed(0))
    assert 0.45 < ((half[:, 1] - half[:, 0]) > 0).float().mean() < 0.55


def test_modes_fill_const_rand_and_pixel():
    images = triplet()[0]
    boxes = erase_boxes(B, H, W, 1.0, (0.1, 0.3), (0.5, 2.0), torch.Generator().manual_seed(1))
    for mode in ("const", "rand", "pixel"):
        out = erase(images, boxes, mode, torch.Generator().manual_seed(2))
        for i in range(8):
            top, bottom, left, right = boxes[i].tolist()
            patch = out[i, :, top:bottom, left:right]
            outside = out[i].clone()
            outside[:, top:bottom, left:right] = images[i, :, top:bottom, left:right]
            assert torch.equal(outside, images[i])  # nothing else touched
            if mode == "const":
                assert torch.all(patch == 0)
            elif mode == "rand":  # one normal colour per channel
                assert torch.all(patch == patch[:, :1, :1]) and not torch.equal(patch[0], patch[1])
            else:
                assert patch.flatten(1).std(dim=1).min() > 0.5


@pytest.mark.parametrize("views, erased", [("augmented", [False, True, True]), ("all", [True, True, True])])
def test_only_the_configured_views_are_erased(views, erased):
    before = triplet()
    eraser = RandomErasing(1.0, first_view=1 if views == "augmented" else 0)
    after = eraser(before, torch.Generator().manual_seed(0))
    assert [not torch.equal(a, b) for a, b in zip(before, after)] == erased
    masks = [erased_masks(a, b) for a, b in zip(before, after)]
    assert not torch.equal(masks[1], masks[2])  # aug1 and aug2 of an image lose different regions


def test_erasing_is_a_function_of_the_generator():
    views = triplet()
    eraser = RandomErasing(0.5, mode="pixel", first_view=1)
    torch.manual_seed(0)
    a = eraser(views, torch.Generator().manual_seed(4))
    torch.manual_seed(1)
    b = eraser(views, torch.Generator().manual_seed(4))
    c = eraser(views, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[1], c[1])


def test_data_module_erases_augmented_views_only_by_default():
    plain = finished(digits_module())
    batch = finished(digits_module("augmix.erase.prob=1.0"))
    assert torch.equal(batch["views"][0], plain["views"][0])
    assert all((a == 0).any() and not torch.equal(a, b) for a, b in zip(batch["views"][1:], plain["views"][1:]))
    everything = finished(digits_module("augmix.erase.prob=1.0", "augmix.erase.views=all"))
    assert not torch.equal(everything["views"][0], plain["views"][0])


def test_without_jsd_the_single_augmix_view_is_erased():
    plain = finished(digits_module("augmix.jsd=false"))
    batch = finished(digits_module("augmix.jsd=false", "augmix.erase.prob=1.0"))
    assert len(batch["views"]) == 1 and not torch.equal(batch["views"][0], plain["views"][0])
