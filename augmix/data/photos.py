"""``photos``: an offline 32x32 benchmark with natural-image statistics, built from the sample
photographs that ship inside scikit-image and scikit-learn (no download, nothing committed).

Each class is one photograph; an image is a square crop of it, resized to ``image_size``. The
crops come from a grid of cells laid over each photograph: a fixed, seeded share of the cells
belongs to each split, and every crop lies inside one cell with a margin, so training, validation
and test images never share a pixel (and cells of different splits are at least ``2 * MARGIN``
pixels apart). Each crop is resized on its own, so an image depends only on the pixels of its
rectangle; training crops (``RandomCropFlip``) pad with zeros and never reach outside it.

Crop sides vary from about an eighth to a quarter of the photograph's shorter side, so a class is
seen at several scales, and the splits cover every part of each photograph. Grayscale photographs
are repeated into three channels. The same files give the same images on every run.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import interpolate
from torchvision.io import ImageReadMode, decode_image, read_file

from augmix.data.sources import TensorSource
from augmix.errors import DataError

# (class name, package, path inside the package): only files the wheels install, never a fetch.
PHOTOS = (
    ("astronaut", "skimage", "data/astronaut.png"),
    ("camera", "skimage", "data/camera.png"),  # grayscale
    ("chelsea", "skimage", "data/chelsea.png"),
    ("china", "sklearn", "datasets/images/china.jpg"),
    ("coffee", "skimage", "data/coffee.png"),
    ("coins", "skimage", "data/coins.png"),  # grayscale
    ("flower", "sklearn", "datasets/images/flower.jpg"),
    ("grass", "skimage", "data/grass.png"),  # grayscale
    ("gravel", "skimage", "data/gravel.png"),  # grayscale
    ("ihc", "skimage", "data/ihc.png"),
    ("motorcycle", "skimage", "data/motorcycle_left.png"),
    ("rocket", "skimage", "data/rocket.jpg"),
)
CLASSES = tuple(name for name, _, _ in PHOTOS)
SPLITS = {"train": 100, "val": 25, "test": 25}  # crops per photograph: 1200 / 300 / 300 images
CELL = 0.27  # grid cell side, as a fraction of the photograph's shorter side
CROP = (0.12, 0.25)  # crop side range, same unit (capped by the cell less its margins)
HELD_OUT = 0.2  # fraction of cells for validation, and again for test
MARGIN = 4  # pixels kept free inside each cell border
SEED = 20240613  # the layout's seed; photograph i uses SEED + i


@dataclass(frozen=True)
class Crop:
    """A square region of photograph ``photo`` (an index into ``PHOTOS``), in its own pixels."""

    photo: int
    top: int
    left: int
    side: int

    def overlaps(self, other: Crop, gap: int = 0) -> bool:
        """True if the two regions share a pixel, or come closer than ``gap`` pixels."""
        if self.photo != other.photo:
            return False
        apart_rows = self.top + self.side + gap <= other.top or other.top + other.side + gap <= self.top
        apart_cols = self.left + self.side + gap <= other.left or other.left + other.side + gap <= self.left
        return not (apart_rows or apart_cols)


def photo_path(index: int) -> Path:
    """Where photograph ``index`` is installed; a missing package or file is one DataError line."""
    name, package, relative = PHOTOS[index]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"data=photos needs the {package} package for its {name!r} photograph; pip install it")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise DataError(
            f"data=photos needs {path}, which this {package} installation lacks; reinstall {package} "
            "(its wheels ship that sample image) or use data=digits"
        )
    return path


def read_photo(index: int) -> torch.Tensor:
    """Photograph ``index`` as uint8 (3, H, W); grayscale ones repeated into three channels."""
    path = photo_path(index)
    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as error:
        raise DataError(f"cannot decode {path} ({error}); reinstall the package that ships it") from None


def photo_layout(index: int, height: int, width: int) -> dict[str, list[Crop]]:
    """The crops of every split for photograph ``index`` of size ``height`` x ``width``."""
    rng = np.random.default_rng(SEED + index)
    short = min(height, width)
    rows, cols = max(1, round(height / (CELL * short))), max(1, round(width / (CELL * short)))
    cell_h, cell_w = height // rows, width // cols
    held = max(1, round(HELD_OUT * rows * cols))
    order = rng.permutation(rows * cols)
    cells = {"test": sorted(order[:held]), "val": sorted(order[held : 2 * held]), "train": sorted(order[2 * held :])}
    largest = min(int(CROP[1] * short), cell_h - 2 * MARGIN, cell_w - 2 * MARGIN)
    smallest = min(int(CROP[0] * short), largest)
    layout: dict[str, list[Crop]] = {}
    for split, count in SPLITS.items():
        crops = []
        for k in range(count):
            cell = int(cells[split][k % len(cells[split])])
            side = int(rng.integers(smallest, largest + 1))
            top = (cell // cols) * cell_h + MARGIN + int(rng.integers(0, cell_h - 2 * MARGIN - side + 1))
            left = (cell % cols) * cell_w + MARGIN + int(rng.integers(0, cell_w - 2 * MARGIN - side + 1))
            crops.append(Crop(index, top, left, side))
        layout[split] = crops
    return layout


def crop_plan(sizes: list[tuple[int, int]]) -> dict[str, list[Crop]]:
    """Every split's crops over all photographs (``sizes``: each one's height and width), in
    image order, class by class."""
    plan: dict[str, list[Crop]] = {split: [] for split in SPLITS}
    for index, (height, width) in enumerate(sizes):
        for split, crops in photo_layout(index, height, width).items():
            plan[split] += crops
    return plan


@functools.lru_cache(maxsize=2)
def _build(image_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """All three splits as (uint8 images (N, 3, S, S), int64 labels), built once per size."""
    photos = [read_photo(index).float().unsqueeze(0) for index in range(len(PHOTOS))]
    plan = crop_plan([tuple(photo.shape[-2:]) for photo in photos])
    splits = {}
    for split, crops in plan.items():
        images = torch.cat([
            interpolate(
                photos[c.photo][..., c.top : c.top + c.side, c.left : c.left + c.side],
                size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False,
            )
            for c in crops
        ])
        splits[split] = (images.round_().clamp_(0, 255).to(torch.uint8), torch.tensor([c.photo for c in crops]))
    return splits


def load_photos(split: str, image_size: int = 32) -> TensorSource:
    """The ``train`` (1200), ``val`` (300) or ``test`` (300) split, ``image_size`` square RGB."""
    if split not in SPLITS:
        raise DataError(f"photos has splits {list(SPLITS)}, not {split!r}")
    images, targets = _build(int(image_size))[split]
    return TensorSource(images, targets, list(CLASSES))
