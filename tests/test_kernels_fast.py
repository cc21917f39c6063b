"""The fast kernels and the chunked executors: edge cases, exactness, chunking, no device syncs."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from augmix import AugMix
from augmix.augment.ops import ALL_OPS, OPS, color, common, geometry
from augmix.augment.transform import DEVICE_CHUNKS, default_chunk_values
from augmix.profiling import PeakMemory
from augmix.streams import keyed_generator
from tests.test_ops import natural_images, per_image


def awkward_images() -> torch.Tensor:
    """Planes that stress histogram and range logic: constant, two-level, full-range, saturated."""
    g = torch.Generator().manual_seed(0)
    images = natural_images(8, 24)
    images[0] = 77  # every channel flat
    images[1, 0] = 0
    images[1, 1] = 255
    images[2] = torch.randint(0, 2, (3, 24, 24), generator=g).mul(200).to(torch.uint8)  # two levels
    images[3, :, :12] = 255  # half saturated
    images[4] = torch.arange(24 * 24).view(24, 24).remainder(256).to(torch.uint8)  # all levels
    images[5, 2] = 254
    images[5, 2, 0, 0] = 255  # one pixel at the brightest level
    return images


@pytest.mark.parametrize(
    "ours, reference",
    [
        (color.autocontrast, TF.autocontrast),
        (color.equalize, TF.equalize),
    ],
    ids=["autocontrast", "equalize"],
)
def test_histogram_ops_match_torchvision_on_awkward_images(ours, reference):
    images = awkward_images()
    assert torch.equal(ours(images), torch.stack([reference(image) for image in images]))


def test_equalize_is_exact_where_float32_would_not_be():
    """Above 2**23 pixels per channel the table arithmetic switches to float64 and stays exact."""
    g = torch.Generator().manual_seed(1)
    image = torch.randint(0, 256, (1, 1, 2900, 2900), generator=g, dtype=torch.uint8)
    image[..., :1000, :] //= 3  # an uneven histogram
    assert 2 * image[0, 0].numel() >= 2**24
    assert torch.equal(color.equalize(image), TF.equalize(image[0])[None])


def test_solarize_thresholds_at_and_beyond_the_ends():
    images = natural_images(7, 16)
    thresholds = torch.tensor([0.0, 1.0, 127.5, 128.0, 255.0, 256.0, 300.0], dtype=torch.float64)
    definition = torch.where(images >= thresholds.view(-1, 1, 1, 1), 255 - images, images)
    assert torch.equal(color.solarize(images, thresholds), definition)
    expected = per_image(lambda image, t: TF.solarize(image, float(t)), images[:5], thresholds[:5])
    assert torch.equal(definition[:5], expected)  # torchvision refuses thresholds above 255


@pytest.mark.parametrize("size", [(3, 3), (3, 7), (9, 4)], ids=str)
def test_sharpness_on_tiny_images(size):
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (5, 3, *size), generator=g, dtype=torch.uint8)
    factors = torch.tensor([0.0, 0.1, 1.0, 1.9, 5.0], dtype=torch.float64)
    expected = per_image(lambda image, f: TF.adjust_sharpness(image, float(f)), images, factors)
    assert torch.equal(color.adjust_sharpness(images, factors), expected)


def test_rotate_with_a_colour_fill_samples_the_image_extended_by_the_fill():
    """Edge pixels blend image and fill as bilinear sampling of the fill-extended image does (so
    does PIL's ``Image.transform`` away from the border; torchvision's fill formula weights the
    image part by the in-bounds share twice)."""
    images = natural_images(6, 32)
    degrees = torch.tensor([-30.0, -17.0, 0.0, 5.0, 21.0, 30.0], dtype=torch.float64)
    fill = (255, 0, 128)
    extended = torch.stack([torch.nn.functional.pad(images[:, c], (32, 32, 32, 32), value=v) for c, v in enumerate(fill)], 1)
    expected = geometry.rotate(extended, degrees)[..., 32:64, 32:64]
    diff = (geometry.rotate(images, degrees, fill=fill).int() - expected.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 5e-3


def test_fill_is_rounded_once_for_every_geometric_op():
    images = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    far = torch.tensor([40.0, -40.0], dtype=torch.float64)
    for kernel in (geometry.translate_x, geometry.translate_y, geometry.shear_x, geometry.shear_y):
        assert (kernel(images, far, fill=(9.6, 0.2, 300)) == torch.tensor([10, 0, 255]).view(1, 3, 1, 1)).all()


@pytest.mark.parametrize("name", [name for name in ALL_OPS if OPS[name].identity is not None])
@pytest.mark.parametrize("size", [8, 31, 57, 224])
def test_arguments_marked_identity_return_the_input_exactly(name, size):
    """Executors skip these applications, so they must not change a byte (any fill, any size)."""
    images = natural_images(3, size)
    images[0, :, ::2] = 255
    zero = torch.zeros(3, dtype=torch.float64)
    assert OPS[name].identity(zero).all()
    for fill in (0, 128, (255, 0, 9)):
        assert torch.equal(OPS[name].apply(images, zero, fill), images), fill


@pytest.mark.parametrize("name", [name for name in ALL_OPS if OPS[name].lut is not None])
def test_every_table_form_equals_its_kernel(name):
    """The fused executor applies pointwise ops through their tables, the grouped one directly."""
    images = awkward_images()
    op = OPS[name]
    levels = torch.linspace(0.1, 9.9, len(images), dtype=torch.float64)
    argument = op.parameter(levels, torch.ones_like(levels), 24, 24)
    assert torch.equal(color.apply_lut(images, op.lut(images, argument)), op.apply(images, argument))


@pytest.mark.parametrize("size", [48, 224])
def test_opencv_plane_kernels_equal_the_pytorch_path(monkeypatch, size):
    """On CPU large planes are counted, looked up and transposed by OpenCV; other devices use
    PyTorch's path, which must give the same bytes."""
    images = natural_images(5, size)
    images[1] = 7  # flat image: equalize and autocontrast keep it
    images[2, 1] = images[2, 1] // 64  # four levels in one channel
    levels = torch.linspace(0.1, 9.9, len(images), dtype=torch.float64)

    def results() -> dict[str, torch.Tensor]:
        out = {"transpose": common.transpose_planes(images[..., 3:])}  # not square
        for name in [name for name in ALL_OPS if OPS[name].lut is not None] + ["shear_y"]:
            op = OPS[name]
            argument = op.parameter(levels, torch.ones_like(levels), size, size)
            out[name] = op.apply(images, argument)
            if op.lut is not None:
                out[f"{name} table"] = color.apply_lut(images, op.lut(images, argument))
        return out

    assert common.opencv_planes(images)
    with_opencv = results()
    monkeypatch.setattr(common, "OPENCV_PLANE_VALUES", 2**24)
    assert not common.opencv_planes(images)
    for name, expected in results().items():
        assert torch.equal(with_opencv[name], expected), name


@pytest.mark.parametrize("executor", ["grouped", "fused"])
def test_chunking_never_changes_a_byte(executor):
    images = natural_images(11, 20)
    params = AugMix().sample(11, keyed_generator(4))
    whole = AugMix(all_ops=True, executor="grouped", chunk_size=10**9).apply(images, params)
    per_image_values = 3 * 3 * 20 * 20
    for chunk in (1, per_image_values, 4 * per_image_values + 5):
        out = AugMix(all_ops=True, executor=executor, chunk_size=chunk).apply(images, params)
        assert torch.equal(out, whole), chunk


class _DeviceWatch(TorchDispatchMode):
    """Counts host-to-device copies; a value read back from the device would raise on ``meta``."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        outputs = {t.device.type for t in tree_leaves(out) if isinstance(t, torch.Tensor)}
        self.uploads += inputs == {"cpu"} and "meta" in outputs
        return out


@pytest.mark.parametrize("executor", ["grouped", "fused"])
def test_the_chains_never_wait_on_the_device(executor):
    """On ``meta`` tensors nothing can be read back (``.item()``, ``.tolist()``, ``nonzero``,
    ``bincount`` all fail), so running there proves the device path has no syncs; the plan
    reaches the device in exactly one copy."""
    augmix = AugMix(all_ops=True, executor=executor, chunk_size=2 * 9 * 32 * 32)
    params = augmix.sample(7, keyed_generator(0))
    images = torch.empty(7, 3, 32, 32, dtype=torch.uint8, device="meta")
    with _DeviceWatch() as watch:
        out = augmix.apply(images, params)
    assert out.device.type == "meta" and out.shape == images.shape and out.dtype == torch.float32
    assert watch.uploads == 1


def test_device_chunks_bound_the_temporaries():
    """An accelerator splits a large JSD batch into DEVICE_CHUNKS chunks (what it does with a batch
    of 256 at 224 px). Then AugMix holds at most one float32 view of the batch beyond its two
    output views."""
    assert default_chunk_values(torch.device("cuda"), 512 * 9 * 224 * 224) == -(-512 * 9 * 224 * 224 // DEVICE_CHUNKS)
    batch, size = 16, 96
    images = natural_images(batch, size).repeat(2, 1, 1, 1)
    view = batch * 3 * size * size * 4
    augmix = AugMix(chunk_size=-(-len(images) * 9 * size * size // DEVICE_CHUNKS))
    with PeakMemory() as memory:
        augmix(images, keyed_generator(0))
    assert memory.peak <= 3 * view, f"{memory.peak / view:.2f} views"
