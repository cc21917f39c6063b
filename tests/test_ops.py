"""Every AugMix kernel against torchvision.transforms.v2.functional applied image by image."""

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from augmix.augment.ops import ALL_OPS, DEFAULT_OPS, OPS, color, geometry, resolve_ops

BILINEAR = TF.InterpolationMode.BILINEAR


def natural_images(n: int, size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Smooth structure plus noise, so histograms, edges and flat regions all occur."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, max(size // 4, 2), max(size // 4, 2), generator=g) * 255
    img = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    img = img + torch.randn(n, channels, size, size, generator=g) * 12
    return img.clamp(0, 255).to(torch.uint8)


def per_image(fn, images, params):
    return torch.stack([fn(image, param) for image, param in zip(images, params)])


@pytest.fixture(params=[32, 64], ids=lambda s: f"{s}px")
def images(request):
    return natural_images(24, request.param)


FACTORS = torch.linspace(0.1, 1.9, 24, dtype=torch.float64)


@pytest.mark.parametrize(
    "name, ours, reference, params",
    [
        ("autocontrast", lambda x, p: color.autocontrast(x), lambda i, p: TF.autocontrast(i), None),
        ("equalize", lambda x, p: color.equalize(x), lambda i, p: TF.equalize(i), None),
        ("posterize", color.posterize, lambda i, p: TF.posterize(i, int(p)), torch.arange(24) % 5),
        ("solarize", color.solarize, lambda i, p: TF.solarize(i, float(p)), torch.linspace(2, 254, 24).round()),
        ("brightness", color.adjust_brightness, lambda i, p: TF.adjust_brightness(i, float(p)), FACTORS),
        ("contrast", color.adjust_contrast, lambda i, p: TF.adjust_contrast(i, float(p)), FACTORS),
        ("color", color.adjust_saturation, lambda i, p: TF.adjust_saturation(i, float(p)), FACTORS),
        ("sharpness", color.adjust_sharpness, lambda i, p: TF.adjust_sharpness(i, float(p)), FACTORS),
    ],
)
def test_pointwise_and_enhance_ops_match_torchvision_exactly(images, name, ours, reference, params):
    params = torch.zeros(len(images)) if params is None else params
    expected = per_image(reference, images, params)
    assert torch.equal(ours(images, params), expected), name


def test_lookup_table_forms_equal_the_direct_kernels(images):
    bits = torch.arange(len(images)) % 5
    threshold = torch.linspace(2, 254, len(images)).round()
    assert torch.equal(color.apply_lut(images, color.posterize_lut(images, bits)), color.posterize(images, bits))
    assert torch.equal(color.apply_lut(images, color.solarize_lut(images, threshold)), color.solarize(images, threshold))


def _within_interpolation_tolerance(ours, expected):
    """Same warp, grids rounded differently in float32: a few pixels land on the other side of .5.

    Measured here: at most 1 level, on 0.01-0.2% of values.
    """
    diff = (ours.int() - expected.int()).abs()
    assert diff.max() <= 1, f"max difference {int(diff.max())}"
    assert (diff > 0).float().mean() < 5e-3


def test_rotate_matches_torchvision(images):
    degrees = torch.linspace(-30, 30, len(images)).round()
    expected = per_image(lambda i, d: TF.rotate(i, float(d), interpolation=BILINEAR), images, degrees)
    _within_interpolation_tolerance(geometry.rotate(images, degrees), expected)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_shear_matches_torchvision_about_the_top_left_corner(images, axis):
    factors = torch.linspace(-0.3, 0.3, len(images), dtype=torch.float64)

    def reference(image, s):
        degrees = math.degrees(math.atan(float(s)))
        shear = [degrees, 0.0] if axis == "x" else [0.0, degrees]
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=BILINEAR, center=[0, 0])

    ours = geometry.shear_x(images, factors) if axis == "x" else geometry.shear_y(images, factors)
    _within_interpolation_tolerance(ours, per_image(reference, images, factors))


@pytest.mark.parametrize("axis", ["x", "y"])
def test_translate_matches_torchvision_exactly(images, axis):
    size = images.shape[-1]
    pixels = torch.linspace(-size // 3, size // 3, len(images)).round().long()

    def reference(image, t):  # the official code reads input at x + t, torchvision moves content by t
        shift = [-int(t), 0] if axis == "x" else [0, -int(t)]
        return TF.affine(image, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=BILINEAR)

    ours = geometry.translate_x(images, pixels) if axis == "x" else geometry.translate_y(images, pixels)
    assert torch.equal(ours, per_image(reference, images, pixels))


def _inverse_maps(xx, xy, x0, yx, yy, y0):
    """(N, 2, 3) inverse maps from per-image coefficient tensors (or numbers)."""
    n = max(torch.as_tensor(v).numel() for v in (xx, xy, x0, yx, yy, y0))
    rows = [torch.as_tensor(v, dtype=torch.float64).expand(n) for v in (xx, xy, x0, yx, yy, y0)]
    return torch.stack(rows, dim=-1).view(n, 2, 3)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_translate_fast_path_equals_the_general_warp(axis):
    images = natural_images(8, 32)
    pixels = torch.tensor([-40, -10, -3, 0, 1, 9, 31, 32], dtype=torch.float64)
    if axis == "x":
        ours, inverse = geometry.translate_x(images, pixels, fill=(10, 20, 30)), _inverse_maps(1, 0, pixels, 0, 1, 0)
    else:
        ours, inverse = geometry.translate_y(images, pixels, fill=(10, 20, 30)), _inverse_maps(1, 0, 0, 0, 1, pixels)
    assert torch.equal(ours, geometry.affine(images, inverse, fill=(10, 20, 30)))


def _exact_shear_x(images: torch.Tensor, factors: torch.Tensor, fill: float) -> torch.Tensor:
    """Bilinear shear in float64 with exact coordinates: row y reads x + s * (y + 0.5)."""
    n, c, h, w = images.shape
    source = torch.nn.functional.pad(images.double(), (w + 2, w + 2), value=fill)
    ys = torch.arange(h, dtype=torch.float64).view(1, h, 1) + 0.5
    positions = torch.arange(w, dtype=torch.float64).view(1, 1, w) + factors.view(n, 1, 1) * ys
    positions = positions.clamp(-w - 1, 2 * w)
    left = positions.floor()
    fraction = (positions - left).unsqueeze(1)
    index = (left.long() + w + 2).unsqueeze(1).expand(n, c, h, w)
    a, b = source.gather(3, index), source.gather(3, index + 1)
    return (a + fraction * (b - a)).round()


@pytest.mark.parametrize("axis", ["x", "y"])
def test_shear_is_the_exact_bilinear_shear(axis):
    """Only values on a rounding tie (x.5 up to float rounding) may differ, by 1 level."""
    images = natural_images(16, 40)
    factors = torch.cat([torch.linspace(-0.3, 0.3, 12, dtype=torch.float64), torch.tensor([-4.0, -1.5, 1.2, 3.0])])
    if axis == "x":
        ours, exact = geometry.shear_x(images, factors, fill=7), _exact_shear_x(images, factors, 7)
    else:
        ours = geometry.shear_y(images, factors, fill=7)
        exact = _exact_shear_x(images.transpose(2, 3), factors, 7).transpose(2, 3)
    _within_interpolation_tolerance(ours, exact)
    assert (ours[-4:].int() - exact[-4:].int()).abs().max() <= 1  # mostly fill


def test_translate_moves_content_towards_lower_x_for_positive_shift():
    image = torch.zeros(1, 1, 4, 8, dtype=torch.uint8)
    image[..., 5] = 200
    shifted = geometry.translate_x(image, torch.tensor([2]))
    assert shifted[0, 0, 0].tolist() == [0, 0, 0, 200, 0, 0, 0, 0]


def test_fill_colours_the_area_moved_in_and_zero_fill_is_torchvision_default():
    images = torch.full((1, 3, 16, 16), 100, dtype=torch.uint8)
    rotated = geometry.rotate(images, torch.tensor([30.0]), fill=(255, 0, 128))
    corner = rotated[0, :, 0, 0].tolist()
    assert corner == [255, 0, 128]
    assert geometry.rotate(images, torch.tensor([30.0]))[0, :, 0, 0].tolist() == [0, 0, 0]


def test_kernels_give_each_image_its_own_parameter():
    images = natural_images(2, 32)
    both = geometry.rotate(images, torch.tensor([0.0, 20.0]))
    assert torch.equal(both[0], images[0])
    assert not torch.equal(both[1], images[1])


def test_grayscale_images_are_supported():
    images = natural_images(4, 32, channels=1)
    for name in ALL_OPS:
        op = OPS[name]
        argument = op.parameter(torch.full((4,), 2.0, dtype=torch.float64), torch.ones(4, dtype=torch.float64), 32, 32)
        out = op.apply(images, argument)
        assert out.shape == images.shape and out.dtype == torch.uint8, name


@pytest.mark.parametrize(
    "name, level, expected",
    [
        ("posterize", 3.0, 3.0),  # 4 - int(3 * 4 / 10)
        ("posterize", 0.1, 4.0),
        ("rotate", 2.9, 8.0),  # int(2.9 * 30 / 10)
        ("solarize", 3.0, 180.0),  # 256 - int(3 * 256 / 10)
        ("shear_x", 2.0, 0.06),  # 2 * 0.3 / 10
        ("translate_x", 3.0, 3.0),  # int(3 * (32 / 3) / 10)
        ("color", 1.0, 0.28),  # 1 * 1.8 / 10 + 0.1
        ("sharpness", 3.0, 0.64),
    ],
)
def test_levels_become_parameters_as_in_the_official_code(name, level, expected):
    argument = OPS[name].parameter(torch.tensor([level], dtype=torch.float64), torch.ones(1, dtype=torch.float64), 32, 32)
    assert float(argument) == pytest.approx(expected)


def test_signed_ops_flip_with_the_sign():
    for name in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y"):
        op = OPS[name]
        plus = op.parameter(torch.tensor([3.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), 32, 32)
        minus = op.parameter(torch.tensor([3.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64), 32, 32)
        assert float(plus) == -float(minus) != 0, name


def test_op_lists():
    assert resolve_ops() == DEFAULT_OPS and len(DEFAULT_OPS) == 9
    assert resolve_ops(all_ops=True) == ALL_OPS and len(ALL_OPS) == 13
    assert resolve_ops(ops=["rotate", "equalize"]) == ("rotate", "equalize")
    with pytest.raises(ValueError, match=r"ops=\[.rotat.\] is invalid: must be a non-empty list drawn from"):
        resolve_ops(ops=["rotat"])
