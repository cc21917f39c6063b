"""Behaviour of the -C corruption suite (augmix.corruptions), CPU only, small images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from augmix.corruptions import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    TABLE_SIZES,
    corrupt,
    corrupt_batch,
    digital,
    image_rng,
    motion,
    registry,
    select_table,
    weather,
)
from augmix.corruptions.blur import glass_shuffle
from augmix.corruptions.tables import severity_params
from augmix.corruptions.textures import frost_texture

SEVERITIES = (1, 2, 3, 4, 5)
DETERMINISTIC = {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast",
                 "saturate", "pixelate", "jpeg_compression"}
RANDOM = set(ALL_CORRUPTIONS) - DETERMINISTIC


def natural_image(size: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients, a few blended discs (edges) and fine band-limited
    texture: enough structure for blurs, shuffles and warps to show."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * np.pi * xx * yy + seed)], -1) * 160 + 40
    for _ in range(4):
        cy, cx, r = rng.uniform(0.2, 0.8, 3) * [1, 1, 0.4]
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img[mask] = 0.5 * img[mask] + 0.5 * rng.uniform(0, 255, 3)
    texture = gaussian_filter(rng.standard_normal((size, size)), 1.0)
    img += 25 * texture[..., None] / texture.std()
    return np.clip(img, 0, 255).astype(np.uint8)


IMAGES = {size: [natural_image(size, seed) for seed in range(3)] for size in (32, 64)}


def test_public_names_and_order():
    assert BENCHMARK_CORRUPTIONS == (
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
        "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
        "elastic_transform", "pixelate", "jpeg_compression")
    assert EXTRA_CORRUPTIONS == ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    assert ALL_CORRUPTIONS == BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
    assert set(registry._FUNCTIONS) == set(ALL_CORRUPTIONS)  # every name has its function, nothing more


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_output_contract_and_determinism(name, size):
    image = IMAGES[size][0]
    before = image.copy()
    for severity in SEVERITIES:
        out = corrupt(image, name, severity, rng=7)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert out.flags.c_contiguous
        assert not np.array_equal(out, image), "corruption left the image unchanged"
        again = corrupt(image, name, severity, rng=np.random.default_rng(7))
        assert again.tobytes() == out.tobytes(), "same seed must give identical bytes"
        other = corrupt(image, name, severity, rng=8)
        if name in RANDOM:
            assert not np.array_equal(other, out), "a different seed should change a random corruption"
        else:
            assert np.array_equal(other, out), "deterministic corruption must ignore the seed"
    np.testing.assert_array_equal(image, before)  # input not modified in place


def _mad(name: str, size: int, severity: int) -> float:
    return float(np.mean([np.abs(corrupt(img, name, severity, rng=seed).astype(float) - img).mean()
                          for img in IMAGES[size] for seed in (0, 1)]))


def _one_minus_corr(name: str, size: int, severity: int) -> float:
    values = []
    for img in IMAGES[size]:
        for seed in (0, 1):
            out = corrupt(img, name, severity, rng=seed)
            values.append(1 - np.corrcoef(img.ravel().astype(float), out.ravel().astype(float))[0, 1])
    return float(np.mean(values))


# Corruptions whose definition makes the mean absolute difference non-monotone get
# their own tests below.
SPECIAL_MONOTONICITY = {"frost", "glass_blur", "elastic_transform", "spatter", "saturate"}


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", sorted(set(ALL_CORRUPTIONS) - SPECIAL_MONOTONICITY))
def test_distortion_grows_with_severity(name, size):
    mads = [_mad(name, size, s) for s in SEVERITIES]
    assert all(b >= a for a, b in zip(mads, mads[1:])), mads
    assert mads[-1] > mads[0]


@pytest.mark.parametrize("size", [32, 64])
def test_frost_share_grows_with_severity(size):
    # Frost blends keep * image + amount * frost with keep falling and amount rising;
    # darkening and frost cancel in the absolute difference, so MAD is not monotone.
    # The frost share shows as a falling correlation with the clean image.
    scores = [_one_minus_corr("frost", size, s) for s in SEVERITIES]
    assert all(b >= a for a, b in zip(scores, scores[1:])), scores


@pytest.mark.parametrize("size, groups", [(32, [(1, 2, 3), (4, 5)]), (64, [(1, 2), (3, 4), (5,)])])
def test_glass_blur_grows_with_shuffle_strength(size, groups):
    # Severities that share a shuffle strength (delta, iterations) differ only in a
    # sub-pixel blur that partly undoes the shuffle, so MAD is flat or slightly
    # falling inside a group (the 32 table even lowers sigma from 3 to 4). Across
    # groups the shuffle grows and so must the distortion.
    mads = {s: _mad("glass_blur", size, s) for s in SEVERITIES}
    for lower, higher in zip(groups, groups[1:]):
        assert max(mads[s] for s in lower) < min(mads[s] for s in higher), mads
    if size == 32:  # same shuffle, blur sigma 0.05..0.4: nearly the same damage
        low = [mads[s] for s in (1, 2, 3)]
        assert max(low) < 1.1 * min(low), mads


def _non_affine_displacement(size: int, severity: int, seed: int) -> float:
    """RMS (pixels) of the sampling positions' deviation from their best affine fit,
    read off a coordinate-ramp image through the float (untruncated) output."""
    step = 256 // size
    rows, cols = np.mgrid[0:size, 0:size]
    ramp = np.stack([cols * step, rows * step, np.full_like(rows, 128)], -1).astype(np.uint8)
    params = severity_params("elastic_transform", severity, size)
    out = digital.elastic_transform(ramp, params, np.random.default_rng(seed))
    inner = (slice(size // 4, size - size // 4),) * 2  # away from reflected borders
    design = np.stack([rows[inner].ravel(), cols[inner].ravel(), np.ones(rows[inner].size)], 1)
    residual = 0.0
    for sampled in (out[..., 0][inner].ravel() / step, out[..., 1][inner].ravel() / step):
        coef, *_ = np.linalg.lstsq(design, sampled, rcond=None)
        residual += np.mean((design @ coef - sampled) ** 2)
    return float(np.sqrt(residual / 2))


@pytest.mark.parametrize("size", [32, 64])
def test_elastic_local_distortion_grows_with_severity(size):
    # The tables shrink the global affine jitter while growing the local elastic
    # field, so any whole-image difference *falls* with severity. The benchmark's
    # severity is the local (non-affine) displacement, measured here exactly.
    for seed in range(4):
        local = [_non_affine_displacement(size, s, seed) for s in SEVERITIES]
        assert local[0] < 1e-4  # severity 1 is affine only (alpha = 0); float32 rounding
        assert all(b > a for a, b in zip(local, local[1:])), local


@pytest.mark.parametrize("size", [32, 64])
def test_spatter_grows_within_each_regime(size):
    # Severities 1-3 add water drops, 4-5 mud; the two effects are not comparable
    # in magnitude (at 32px water severity 3 changes more than mud 4).
    mads = [_mad("spatter", size, s) for s in SEVERITIES]
    assert mads[0] <= mads[1] <= mads[2] and mads[3] <= mads[4], mads


@pytest.mark.parametrize("size", [32, 64])
def test_saturate_grows_within_each_direction(size):
    # Severities 1-2 desaturate (x0.3, x0.1), 3-5 oversaturate; each direction grows.
    mads = [_mad("saturate", size, s) for s in SEVERITIES]
    assert mads[0] < mads[1] and mads[2] < mads[3] < mads[4], mads


def test_spatter_with_empty_water_mask_keeps_image():
    # The scripts divide 0/0 here and emit NaN pixels; the port returns the image.
    image = IMAGES[32][0]
    out = weather.spatter(image, (0.62, 0.1, 0.7, 5.0, 0.5, 0), np.random.default_rng(0))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, image.astype(np.float32), atol=1e-4)


@pytest.mark.parametrize("shape, expected", [
    ((32, 32), 32), ((28, 28), 32), ((48, 48), 32), ((49, 49), 64), ((64, 64), 64),
    ((100, 100), 64), ((144, 144), 64), ((145, 145), 224), ((224, 224), 224),
    ((256, 256), 224), ((1000, 800), 224), ((32, 64), 64), ((64, 32), 64),
])
def test_select_table_by_nearest_size(shape, expected):
    assert select_table(*shape) == expected
    assert expected in TABLE_SIZES


def _contrast_ratio(out: np.ndarray, image: np.ndarray) -> float:
    return float(out.astype(float).std() / image.astype(float).std())


def test_table_choice_changes_constants():
    # contrast severity 2 scales deviations by 0.5 in the 32 table, 0.3 in the 64 one
    small = natural_image(28)
    auto = corrupt(small, "contrast", 2)
    assert np.array_equal(auto, corrupt(small, "contrast", 2, table=32))
    assert _contrast_ratio(auto, small) == pytest.approx(0.5, abs=0.03)
    assert _contrast_ratio(corrupt(small, "contrast", 2, table=64), small) == pytest.approx(0.3, abs=0.03)
    # gaussian_noise severity 5: sigma 0.18 (64 table) vs 0.38 (224 table)
    image = natural_image(64)
    auto64 = corrupt(image, "gaussian_noise", 5, rng=0)
    assert np.array_equal(auto64, corrupt(image, "gaussian_noise", 5, rng=0, table=64))
    forced = corrupt(image, "gaussian_noise", 5, rng=0, table=224)
    noise_std = [np.std(out.astype(float) - image) for out in (auto64, forced)]
    assert noise_std[1] > 1.5 * noise_std[0]


def _box_pixelate(image: np.ndarray, side: int) -> np.ndarray:
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BOX)
    return np.asarray(small.resize(image.shape[1::-1], Image.Resampling.BOX))


@pytest.mark.parametrize("name, check", [
    ("contrast", lambda out, img: _contrast_ratio(out, img) == pytest.approx(0.4, abs=0.03)),
    ("gaussian_noise", lambda out, img: np.std(out.astype(float) - img) == pytest.approx(0.08 * 255, rel=0.15)),
    ("pixelate", lambda out, img: np.array_equal(out, _box_pixelate(img, 134))),  # int(224 * 0.6)
])
def test_imagenet_resolution(name, check):
    # one 224px image per cheap corruption; severity 1 must use the ImageNet-C constants
    image = np.ascontiguousarray(np.kron(natural_image(56), np.ones((4, 4, 1), dtype=np.uint8)))
    assert select_table(*image.shape[:2]) == 224
    out = corrupt(image, name, 1, rng=3)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert out.tobytes() == corrupt(image, name, 1, rng=3).tobytes()
    assert check(out, image)


def test_corrupt_batch_matches_per_image_streams_and_split():
    images = np.stack([IMAGES[32][0], IMAGES[32][1], IMAGES[32][0], IMAGES[32][2], IMAGES[32][1]])
    full = corrupt_batch(images, "shot_noise", 3, seed=11)
    assert full.shape == images.shape and full.dtype == np.uint8
    for i, image in enumerate(images):
        assert np.array_equal(full[i], corrupt(image, "shot_noise", 3, rng=image_rng(11, i)))
    split = np.concatenate([corrupt_batch(images[:2], "shot_noise", 3, seed=11),
                            corrupt_batch(images[2:], "shot_noise", 3, seed=11, start_index=2)])
    assert split.tobytes() == full.tobytes()
    assert not np.array_equal(full[0], full[2])  # same picture, different stream
    assert not np.array_equal(full, corrupt_batch(images, "shot_noise", 3, seed=12))


def _original_glass_loop(x: np.ndarray, delta: int, offsets: np.ndarray) -> np.ndarray:
    """The creation scripts' loop, verbatim in behaviour (numpy view 'swap')."""
    x = x.copy()
    k = 0
    for h in range(x.shape[0] - delta, delta, -1):
        for w in range(x.shape[1] - delta, delta, -1):
            dx, dy = offsets[k]
            k += 1
            h_prime, w_prime = h + dy, w + dx
            x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x


@pytest.mark.parametrize("height, width, delta", [(32, 32, 1), (20, 37, 2), (48, 40, 4), (9, 9, 4), (6, 6, 3)])
def test_glass_shuffle_equals_original_loop(height, width, delta):
    rng = np.random.default_rng(height * width + delta)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    n = max(0, height - 2 * delta) * max(0, width - 2 * delta)
    offsets = rng.integers(-delta, delta, size=(n, 2))
    expected = _original_glass_loop(image, delta, offsets)
    assert np.array_equal(glass_shuffle(image, delta, offsets), expected)


# ``convert in.png -motion-blur 3x1.5+30 out.png`` with ImageMagick 6.9.11-60 Q16
# (what Wand calls), in.png = default_rng(2019).integers(0, 256, (6, 10, 3), uint8)
IMAGEMAGICK_MOTION_3x1_5_30 = bytes.fromhex(
    "4c6c3539336b843c8c90845b429052877240a85b5e7257976a809a627f75c7a87fa58e8f84946c7b"
    "6351a45059a159a57961928b6d86c367c0a471ef6d7bcfba4b87dd916897a5a48d76769c685e90b3"
    "bacab7a6cf729bc632d58e93d279a1b4605b7fbf367f966f9046a96c86875788799068b19b81886f"
    "cca797c0acadbd93c3a565a89a6093d233cda739d0675f897d8a2dab7c183b68bb5888a592c972be"
    "c16edca6abc3c497aeab71a4837c8d605086342b")


def test_motion_blur_reproduces_imagemagick():
    image = np.random.default_rng(2019).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    assert motion.motion_blur(image, 3, 1.5, 30.0).tobytes() == IMAGEMAGICK_MOTION_3x1_5_30


def test_motion_blur_kernel_geometry():
    weights, rows, cols = motion.motion_blur_taps(radius=6, sigma=2, angle=0)
    assert len(weights) == 13  # 2 * ceil(radius) + 1
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(np.diff(weights) < 0)  # one-sided Gaussian, peak at the pixel itself
    assert np.array_equal(rows, np.zeros(13)) and np.array_equal(cols, np.arange(13))
    _, rows90, cols90 = motion.motion_blur_taps(radius=3, sigma=1, angle=90)
    assert np.array_equal(rows90, np.arange(7)) and np.array_equal(cols90, np.zeros(7))
    _, rows45, cols45 = motion.motion_blur_taps(radius=2, sigma=1, angle=45)
    assert np.array_equal(rows45, [0, 1, 1, 2, 3]) and np.array_equal(cols45, rows45)

    # each output pixel averages the pixels *ahead* along the angle, so a bright dot
    # smears backwards (to the left for angle 0) with the kernel's weights
    dot = np.zeros((9, 21), dtype=np.uint8)
    dot[4, 15] = 200
    out = motion.motion_blur(dot, radius=6, sigma=2, angle=0).astype(float)
    assert out[[0, 1, 2, 3, 5, 6, 7, 8]].sum() == 0 and out[4, 16:].sum() == 0
    np.testing.assert_allclose(out[4, 15 - np.arange(13)], np.floor(257 * 200 * weights + 0.5) // 257)
    flat = np.full((10, 10, 3), 77, dtype=np.uint8)  # edge pixels replicate
    assert np.array_equal(motion.motion_blur(flat, 9, 2.5, 30.0), flat)


def test_frost_texture_is_deterministic_bluish_frost():
    sheet = frost_texture(160, 200, np.random.default_rng(5))
    assert sheet.shape == (160, 200, 3) and sheet.dtype == np.uint8
    assert np.array_equal(sheet, frost_texture(160, 200, np.random.default_rng(5)))
    assert not np.array_equal(sheet, frost_texture(160, 200, np.random.default_rng(6)))
    values = sheet.astype(float) / 255
    means = values.mean(axis=(0, 1))
    assert 0.3 < values.mean() < 0.65 and values.mean(-1).std() > 0.1
    assert means[2] > means[1] > means[0]  # blue-white ice


def test_frost_severity_one_only_adds_frost():
    # 32 table, severity 1 keeps the image (factor 1) and adds 0.2 * frost
    image = IMAGES[32][0]
    out = corrupt(image, "frost", 1, rng=0)
    assert np.all(out >= image) and out.mean() > image.mean() + 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="blur"), r"name='blur' is invalid: unknown corruption; choose from \['gaussian_noise', 'shot_noise'"),
    (dict(severity=0), r"severity=0 is invalid: must be an integer in \[1, 2, 3, 4, 5\]"),
    (dict(severity=6), r"severity=6 is invalid: must be an integer in \[1, 2, 3, 4, 5\]"),
    (dict(severity=2.0), r"severity=2.0 is invalid: must be an integer in \[1, 2, 3, 4, 5\]"),
    (dict(severity=True), r"severity=True is invalid: must be an integer in \[1, 2, 3, 4, 5\]"),
    (dict(image=np.zeros((32, 32, 3), np.float32)), "expected dtype uint8"),
    (dict(image=np.zeros((32, 32), np.uint8)), r"expected shape \(H, W, 3\)"),
    (dict(image=np.zeros((32, 32, 4), np.uint8)), r"expected shape \(H, W, 3\)"),
    (dict(image=np.zeros((2, 32, 3), np.uint8)), "image sides must be >= 3"),
    (dict(image=[[[0, 0, 0]]]), "expected a numpy array"),
    (dict(table=100), r"table must be one of \(32, 64, 224\)"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    args = dict(image=IMAGES[32][0], name="contrast", severity=1) | kwargs
    with pytest.raises(ValueError, match=message):
        corrupt(**args)


@pytest.mark.parametrize("kwargs, message", [
    (dict(images=IMAGES[32][0]), r"expected shape \(N, H, W, 3\)"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(seed=1.5), "seed must be a non-negative integer"),
    (dict(start_index=-2), "start_index must be a non-negative integer"),
    (dict(name="fog2"), "unknown corruption"),
])
def test_bad_batch_inputs_raise_clear_errors(kwargs, message):
    args = dict(images=np.stack(IMAGES[32][:2]), name="fog", severity=1, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        corrupt_batch(**args)
