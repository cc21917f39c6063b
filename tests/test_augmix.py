"""augmix.AugMix: sampling statistics, per-image independence, reproducibility and the mix formula."""

import pytest
import torch
from scipy import stats

from augmix import AugMix
from augmix.augment.ops import OPS
from augmix.augment.transform import MAX_DEPTH, NO_OP
from augmix.streams import keyed_generator, sample_beta, sample_dirichlet, stream_seed
from tests.test_ops import natural_images

N = 4000


@pytest.fixture(scope="module")
def params():
    return AugMix().sample(N, keyed_generator(7))


def test_levels_are_uniform_on_point_one_to_severity(params):
    active = params.ops != NO_OP
    levels = params.levels[active]
    assert levels.min() >= 0.1 and levels.max() < 3.0
    assert stats.kstest(levels.numpy(), stats.uniform(loc=0.1, scale=2.9).cdf).pvalue > 1e-3


def test_depth_is_uniform_on_one_to_three_per_chain(params):
    counts = torch.bincount(params.depths.view(-1), minlength=4)[1:]
    assert counts.sum() == N * 3
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    # ops beyond a chain's depth are NO_OP, ops within it are real
    steps = torch.arange(MAX_DEPTH).view(1, 1, -1)
    assert torch.equal(params.ops != NO_OP, steps < params.depths.unsqueeze(-1))
    # chains of one image draw their depths independently (the official quirk would make them equal)
    assert (params.depths[:, 0] != params.depths[:, 1]).float().mean() > 0.5


def test_fixed_depth():
    p = AugMix(depth=2).sample(100, keyed_generator(0))
    assert (p.depths == 2).all() and (p.ops[:, :, 2] == NO_OP).all() and (p.ops[:, :, :2] != NO_OP).all()


def test_ops_are_drawn_uniformly_with_replacement(params):
    ops = params.ops[params.ops != NO_OP]
    counts = torch.bincount(ops, minlength=9)
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    repeats = (params.ops[:, :, 0] == params.ops[:, :, 1]) & (params.ops[:, :, 1] != NO_OP)
    assert repeats.any(), "sampling with replacement allows an op twice in a chain"


def test_signs_are_balanced(params):
    assert abs(float(params.signs.mean())) < 0.03


def test_dirichlet_weights_sum_to_one_with_the_right_marginals(params):
    assert torch.allclose(params.chain_weights.sum(dim=1), torch.ones(N, dtype=torch.float64))
    # Dirichlet(1, 1, 1) marginal is Beta(1, 2)
    assert stats.kstest(params.chain_weights[:, 0].numpy(), stats.beta(1, 2).cdf).pvalue > 1e-3
    # Beta(1, 1) mixing weight is uniform
    assert stats.kstest(params.mix_weight.numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.0])
def test_gamma_based_samplers_match_scipy(alpha):
    g = keyed_generator(1)
    beta = sample_beta(alpha, alpha, (5000,), g)
    assert stats.kstest(beta.numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    weights = sample_dirichlet(alpha, (5000, 4), g)
    assert torch.allclose(weights.sum(-1), torch.ones(5000, dtype=torch.float64))
    assert stats.kstest(weights[:, 0].numpy(), stats.beta(alpha, 3 * alpha).cdf).pvalue > 1e-3


def test_output_is_float_in_unit_range_with_the_input_shape():
    images = natural_images(6, 32)
    out = AugMix()(images, keyed_generator(0))
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1
    single = AugMix()(images[0], keyed_generator(0))
    assert single.shape == images[0].shape


def test_same_generator_seed_same_output_different_seed_different_output():
    images = natural_images(8, 32)
    augmix = AugMix()
    a = augmix(images, keyed_generator(3))
    assert torch.equal(a, augmix(images, keyed_generator(3)))
    assert not torch.equal(a, augmix(images, keyed_generator(4)))


def test_every_image_draws_its_own_augmentation():
    image = natural_images(1, 32)
    batch = image.expand(16, -1, -1, -1).contiguous()
    out = AugMix()(batch, keyed_generator(0))
    distinct = {tuple(o.flatten()[:64].tolist()) for o in out}
    assert len(distinct) == 16
    params = AugMix().sample(16, keyed_generator(0))
    assert len({tuple(p.tolist()) for p in params.ops.view(16, -1)}) > 8


def test_mix_formula_against_per_image_chains():
    """mixed = (1 - m) x + m sum_i ws_i chain_i(x), chains built one op and one image at a time."""
    augmix = AugMix(all_ops=True)
    images = natural_images(5, 32)
    params = augmix.sample(5, keyed_generator(11))
    out = augmix.apply(images, params)
    for n in range(5):
        x = images[n : n + 1]
        mix = torch.zeros(x.shape, dtype=torch.float64)
        for i in range(augmix.width):
            chain = x
            for step in range(MAX_DEPTH):
                k = int(params.ops[n, i, step])
                if k == NO_OP:
                    continue
                op = OPS[augmix.op_names[k]]
                argument = op.parameter(params.levels[n, i, step : step + 1], params.signs[n, i, step : step + 1], 32, 32)
                chain = op.apply(chain, argument)
            mix += float(params.chain_weights[n, i]) * chain.double()
        m = float(params.mix_weight[n])
        expected = ((1 - m) * x.double() + m * mix) / 255.0
        assert torch.allclose(out[n : n + 1].double(), expected, atol=1e-5)


@pytest.mark.parametrize("all_ops", [False, True])
@pytest.mark.parametrize("size", [32, 57])
def test_grouped_and_fused_executors_are_bit_identical(all_ops, size):
    images = natural_images(40, size)
    params = AugMix().sample(40, keyed_generator(5))
    grouped = AugMix(all_ops=all_ops, executor="grouped").apply(images, params)
    fused = AugMix(all_ops=all_ops, executor="fused").apply(images, params)
    assert torch.equal(grouped, fused)


def test_an_image_result_does_not_depend_on_its_batch():
    augmix = AugMix(all_ops=True)
    images = natural_images(12, 32)
    params = augmix.sample(12, keyed_generator(2))
    whole = augmix.apply(images, params)
    half = type(params)(*(getattr(params, f)[6:] for f in params.__dataclass_fields__))
    assert torch.equal(whole[6:], augmix.apply(images[6:], half))


def test_bad_inputs_raise_clear_errors():
    augmix = AugMix()
    with pytest.raises(TypeError, match="uint8"):
        augmix(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="C in"):
        augmix(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="drawn for 3 images"):
        augmix.apply(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), augmix.sample(3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"severity": 0}, "severity"),
        ({"severity": 11}, "severity"),
        ({"width": 0}, "width"),
        ({"depth": 0}, "depth"),
        ({"depth": 4}, "depth"),
        ({"alpha": 0.0}, "alpha"),
        ({"ops": ["blur"]}, r"ops=\[.blur.\] is invalid: must be a non-empty list drawn from"),
    ],
)
def test_constructor_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AugMix(**kwargs)


def test_stream_seeds_depend_on_every_key_part_and_their_order():
    seeds = {stream_seed(0, 1, 2), stream_seed(0, 2, 1), stream_seed(1, 1, 2), stream_seed(0, 1, 3)}
    assert len(seeds) == 4
    assert stream_seed(5, 6) == stream_seed(5, 6)
