"""JSDLoss against values computed by hand from its definition."""

import math

import pytest
import torch

from augmix import JSDLoss
from augmix.losses import jensen_shannon


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def by_hand(clean, aug1, aug2, targets, weight):
    """CE on the clean logits + weight * mean_i KL(p_i || M), M = clamp(mean p, 1e-7, 1), batchmean."""
    ce = js = 0.0
    for n in range(len(targets)):
        ps = [softmax(z[n]) for z in (clean, aug1, aug2)]
        ce -= math.log(ps[0][targets[n]])
        mixture = [min(max(sum(p[k] for p in ps) / 3, 1e-7), 1.0) for k in range(len(ps[0]))]
        js += sum(sum(p[k] * (math.log(p[k]) - math.log(mixture[k])) for k in range(len(p))) for p in ps) / 3
    batch = len(targets)
    return ce / batch + weight * js / batch, ce / batch, js / batch


def test_matches_the_hand_computed_formula():
    clean = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]
    aug1 = [[1.0, 1.0, 0.0], [-2.0, 0.0, 2.0]]
    aug2 = [[0.0, 3.0, -1.0], [0.5, 0.5, 0.5]]
    targets = [0, 2]
    total, ce, js = by_hand(clean, aug1, aug2, targets, 12.0)
    parts = JSDLoss(weight=12.0)(torch.tensor(clean), [torch.tensor(aug1), torch.tensor(aug2)], torch.tensor(targets))
    assert parts.cross_entropy.item() == pytest.approx(ce, rel=1e-6)
    assert parts.consistency.item() == pytest.approx(js, rel=1e-5)
    assert parts.total.item() == pytest.approx(total, rel=1e-5)


def test_clamp_of_the_mixture_matters_for_confident_disagreement():
    # p's that put all mass on different classes: M is tiny but clamped at 1e-7, as in the official code
    clean, aug1, aug2 = (torch.tensor([[100.0, -100.0, -100.0]]).roll(k, dims=1) for k in range(3))
    _, _, js = by_hand(clean.tolist(), aug1.tolist(), aug2.tolist(), [0], 1.0)
    assert jensen_shannon([clean, aug1, aug2]).item() == pytest.approx(js, rel=1e-4)
    assert js == pytest.approx(math.log(3), rel=1e-4)


def test_identical_predictions_have_zero_consistency_and_weight_scales_it():
    logits = torch.randn(8, 10)
    parts = JSDLoss()(logits, [logits.clone(), logits.clone()], torch.randint(0, 10, (8,)))
    assert parts.consistency.item() == pytest.approx(0.0, abs=1e-6)
    a, b = torch.randn(8, 10), torch.randn(8, 10)
    target = torch.randint(0, 10, (8,))
    light, heavy = JSDLoss(weight=1.0)(logits, [a, b], target), JSDLoss(weight=12.0)(logits, [a, b], target)
    assert (heavy.total - heavy.cross_entropy).item() == pytest.approx(12 * (light.total - light.cross_entropy).item(), rel=1e-5)


def test_without_augmented_views_it_is_plain_cross_entropy():
    logits, target = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    parts = JSDLoss()(logits, [], target)
    assert parts.total.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item())
    assert parts.consistency.item() == 0.0


@pytest.mark.parametrize("kwargs", [{"weight": -1.0}, {"label_smoothing": 1.0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        JSDLoss(**kwargs)
