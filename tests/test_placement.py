"""Same AugMix everywhere: placements, executors and chunkings agree with each other and with the
per-image path, in distribution and byte for byte."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from scipy import stats

from augmix import AugMix
from augmix.augment.ops import DEFAULT_OPS, OPS
from augmix.augment.transform import NO_OP
from augmix.data.batches import AugMixViews, Normalize
from augmix.data.datamodule import AugMixDataModule, TrainingViews
from tests.test_ops import natural_images

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def datamodule(size: int = 32, placement: str = "auto", **augmix) -> AugMixDataModule:
    """A DataModule without data, making JSD triplets: only its batch finishing is exercised."""
    return AugMixDataModule(
        name="cifar10", root=".", num_classes=10, image_size=size, mean=MEAN, std=STD,
        train_transform=lambda image, g: image, eval_transform=lambda image, g: image,
        training_views=TrainingViews(AugMix(**augmix), jsd=True, placement=placement), num_workers=0, seed=3,
    )


def workers_batch(module: AugMixDataModule, images: torch.Tensor, key: tuple[int, int]) -> dict:
    """What a loader worker hands over with ``placement=workers``."""
    views = module.augmix_views(0)(images, *key)
    return {"image": images, "target": torch.zeros(len(images), dtype=torch.long), "key": key, "views": views}


def test_device_placement_on_cpu_gives_shaped_normalised_triplets():
    module = datamodule(placement="device")
    images = natural_images(10, 32)
    batch = module.finish_batch({"image": images, "target": torch.arange(10), "key": (2, 5)}, training=True)
    clean, aug1, aug2 = batch["views"]
    assert all(v.shape == (10, 3, 32, 32) and v.dtype == torch.float32 for v in (clean, aug1, aug2))
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.allclose(clean * std + mean, images.float() / 255, atol=1e-6)
    expected = AugMixViews(module.views.augmix, 2, module.seed)(images, 2, 5)
    for view, mixed in zip((aug1, aug2), expected):
        assert torch.allclose(view * std + mean, mixed, atol=1e-6)
        assert (mixed >= 0).all() and (mixed <= 1).all()
    assert not torch.equal(aug1, aug2) and torch.equal(batch["target"], torch.arange(10))


def test_normalising_while_mixing_equals_normalising_afterwards():
    """Folded into the mixing weights, normalisation changes only float32 rounding (~1e-7 of the
    range), and the clamp to [0, 1] holds in normalised units."""
    images = natural_images(7, 64)  # more than one cache-sized block
    augmix = AugMix(all_ops=True)
    mixed = augmix(images, torch.Generator().manual_seed(5))
    normalised = augmix(images, torch.Generator().manual_seed(5), normalize=(MEAN, STD))
    assert torch.allclose(normalised, Normalize(MEAN, STD)(mixed), rtol=0, atol=2e-6)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    restored = normalised * std + mean
    assert restored.min() >= -1e-6 and restored.max() <= 1 + 1e-6
    with pytest.raises(ValueError, match="one mean and one positive std per channel"):
        augmix(images, normalize=((0.5,), (0.5,)))


def test_blocked_normalisation_is_the_plain_formula():
    images = natural_images(5, 224)  # several cache-sized blocks on CPU
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    expected = (images.double() / 255 - mean.double()) / std.double()
    normalised = Normalize(MEAN, STD)(images)
    assert normalised.dtype == torch.float32 and normalised.shape == images.shape
    assert torch.allclose(normalised.double(), expected, rtol=0, atol=1e-6)
    assert torch.equal(Normalize(MEAN, STD)(images[0]), normalised[0])
    assert torch.allclose(Normalize(MEAN, STD)(images.float() / 255).double(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("executor", ["grouped", "fused"])
def test_placements_and_executors_give_identical_triplets(executor):
    images = natural_images(9, 40)
    workers = datamodule(40, placement="workers", all_ops=True)
    device = datamodule(40, placement="device", all_ops=True, executor=executor)
    expected = workers.finish_batch(workers_batch(workers, images, (1, 7)), training=True)["views"]
    made = device.finish_batch({"image": images, "target": torch.zeros(9, dtype=torch.long), "key": (1, 7)}, True)
    assert all(torch.equal(a, b) for a, b in zip(expected, made["views"]))


def test_keyed_views_reproduce_and_differ_by_epoch_index_rank_and_seed():
    images = natural_images(6, 32)
    augmix = AugMix()
    views = AugMixViews(augmix, 2, seed=0)(images, 4, 9)
    assert all(torch.equal(a, b) for a, b in zip(views, AugMixViews(augmix, 2, seed=0)(images, 4, 9)))
    others = [
        AugMixViews(augmix, 2, seed=0)(images, 5, 9),  # next epoch
        AugMixViews(augmix, 2, seed=0)(images, 4, 10),  # next batch
        AugMixViews(augmix, 2, seed=0, rank=1)(images, 4, 9),
        AugMixViews(augmix, 2, seed=1)(images, 4, 9),
    ]
    for other in others:
        assert not any(torch.equal(a[i], b[i]) for a, b in zip(views, other) for i in range(6))
    assert not torch.equal(views[0], views[1])  # the two views of a triplet draw separately


@pytest.mark.parametrize("executor", ["grouped", "fused"])
def test_every_image_is_augmented_as_if_it_were_alone(executor):
    """Across chunk boundaries and executors, an image's result depends only on its own draw."""
    augmix = AugMix(all_ops=True, executor=executor, chunk_size=4 * 9 * 24 * 24)
    images = natural_images(10, 24)
    params = augmix.sample(10, torch.Generator().manual_seed(8))
    whole = augmix.apply(images, params)
    for i in range(10):
        alone = dataclasses.replace(params, **{f.name: getattr(params, f.name)[i : i + 1] for f in dataclasses.fields(params)})
        assert torch.equal(whole[i : i + 1], augmix.apply(images[i : i + 1], alone)), i


def official_draws(count: int, seed: int, severity: int = 3, width: int = 3) -> dict[str, np.ndarray]:
    """The official code's randomness, one image at a time (google-research/augmix ``aug``)."""
    rng = np.random.default_rng(seed)
    ops, levels, signs, depths, first_weight, mix = [], [], [], [], [], []
    for _ in range(count):
        ws = rng.dirichlet([1.0] * width)
        mix.append(rng.beta(1.0, 1.0))
        first_weight.append(ws[0])
        for _ in range(width):
            depth = rng.integers(1, 4)
            depths.append(depth)
            for _ in range(depth):
                ops.append(rng.integers(len(DEFAULT_OPS)))
                levels.append(rng.uniform(0.1, severity))
                signs.append(1.0 if rng.uniform() > 0.5 else -1.0)
    drawn = {"ops": ops, "levels": levels, "signs": signs, "depths": depths, "first_weight": first_weight, "mix": mix}
    return {name: np.asarray(values) for name, values in drawn.items()}


def batched_draws(batches: int, batch: int) -> dict[str, np.ndarray]:
    """The randomness both placements use: AugMix's batch sampler, keyed per batch."""
    views = AugMixViews(AugMix(), 2, seed=0)
    drawn = [views.augmix.sample(2 * batch, views.generator(0, index)) for index in range(batches)]
    cat = {f.name: torch.cat([getattr(p, f.name) for p in drawn]) for f in dataclasses.fields(drawn[0])}
    active = cat["ops"] != NO_OP
    return {
        "ops": cat["ops"][active].numpy(), "levels": cat["levels"][active].numpy(), "signs": cat["signs"][active].numpy(),
        "depths": cat["depths"].reshape(-1).numpy(), "first_weight": cat["chain_weights"][:, 0].numpy(),
        "mix": cat["mix_weight"].numpy(),
    }


def test_batched_randomness_has_the_official_per_image_distribution():
    ours, official = batched_draws(10, 150), official_draws(3000, seed=0)
    for name, categories in (("ops", len(DEFAULT_OPS)), ("depths", 4)):
        table = np.stack([np.bincount(ours[name], minlength=categories), np.bincount(official[name], minlength=categories)])
        table = table[:, table.sum(0) > 0]
        assert stats.chi2_contingency(table).pvalue > 1e-3, name
    for name in ("levels", "first_weight", "mix"):
        assert stats.ks_2samp(ours[name], official[name]).pvalue > 1e-3, name
    assert abs(ours["signs"].mean()) < 0.03 and abs(official["signs"].mean()) < 0.03


BILINEAR = TF.InterpolationMode.BILINEAR


def _shear(axis: str):
    def reference(image, s):
        degrees = math.degrees(math.atan(float(s)))
        shear = [degrees, 0.0] if axis == "x" else [0.0, degrees]
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=BILINEAR, center=[0, 0])

    return reference


#: Each op image by image in torchvision, and whether it must match exactly (else within one level
#: on a few values: the warp's float rounding).
REFERENCES = {
    "autocontrast": (lambda i, a: TF.autocontrast(i), True),
    "equalize": (lambda i, a: TF.equalize(i), True),
    "posterize": (lambda i, a: TF.posterize(i, int(a)), True),
    "solarize": (lambda i, a: TF.solarize(i, float(a)), True),
    "rotate": (lambda i, a: TF.rotate(i, float(a), interpolation=BILINEAR), False),
    "shear_x": (_shear("x"), False),
    "shear_y": (_shear("y"), False),
    "translate_x": (lambda i, a: TF.affine(i, 0.0, [-int(a), 0], 1.0, [0.0, 0.0], interpolation=BILINEAR), True),
    "translate_y": (lambda i, a: TF.affine(i, 0.0, [0, -int(a)], 1.0, [0.0, 0.0], interpolation=BILINEAR), True),
    "color": (lambda i, a: TF.adjust_saturation(i, float(a)), True),
    "contrast": (lambda i, a: TF.adjust_contrast(i, float(a)), True),
    "brightness": (lambda i, a: TF.adjust_brightness(i, float(a)), True),
    "sharpness": (lambda i, a: TF.adjust_sharpness(i, float(a)), True),
}


def test_every_op_inside_the_batched_chains_matches_the_per_image_reference(monkeypatch):
    """Record what each op received and returned inside a real batched AugMix call, then redo
    every application image by image with torchvision."""
    calls = []
    for name, op in list(OPS.items()):
        def recording(images, argument, fill, kernel=op.kernel, name=name):
            out = kernel(images, argument, fill)
            calls.append((name, images.clone(), argument.clone(), out.clone()))
            return out
        monkeypatch.setitem(OPS, name, dataclasses.replace(op, kernel=recording))
    AugMix(all_ops=True, severity=10)(natural_images(48, 32), torch.Generator().manual_seed(1))
    assert {name for name, *_ in calls} == set(OPS)
    for name, images, arguments, out in calls:
        reference, exact = REFERENCES[name]
        expected = torch.stack([reference(image, argument) for image, argument in zip(images, arguments)])
        if exact:
            assert torch.equal(out, expected), name
        else:
            diff = (out.int() - expected.int()).abs()
            assert diff.max() <= 1 and (diff > 0).float().mean() < 5e-3, name
