"""What the run loop reads: sets that load uint8 batches, and the dataset of their batches.

A set knows its length (in items: images, or videos of ``frames`` images each) and loads items
``[start, stop)`` as a uint8 (B, C, H, W) batch of model inputs plus labels. Loading runs in
DataLoader workers; normalisation happens later, on the device. Sets come in two kinds: per-image
sets (``per_image``) are scored by the per-image outcomes of ``augmix.evaluation.metrics``, over
``class_indices`` only where the set covers a subset of the model's classes (``restrict``); the
others (-P videos) turn a batch's logits into rows of their own table (``measure``) and the complete
table into their figures (``figures``). ``SourceSet`` reads
an ``ImageSource`` (the clean split, an image folder) and ``ArraySet`` a block of a .npy array; the
format modules build them after checking their files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from augmix.data.sources import ImageSource
from augmix.errors import DataError

Transform = Callable[[Tensor], Tensor]
CLEAN = "clean"


class EvalSet:
    """One set of the benchmark; ``corruption`` is None for the clean set. ``member`` names the
    suite member the set belongs to (None in a single-benchmark run), so results of two members never
    share a key."""

    corruption: str | None = None
    severity: int | None = None
    count: int
    member: str | None = None
    frames: int = 1  # model inputs per item
    batch_size: int | None = None  # images per batch for this set; None: the run's
    class_indices: Tensor | None = None  # the model outputs this set's labels index, when a subset

    @property
    def key(self) -> str:
        return CLEAN if self.corruption is None else f"{self.corruption}-{self.severity}"

    @property
    def result_key(self) -> str:
        """Where the set's result is stored: ``<member>.<key>`` in a suite, ``<key>`` otherwise."""
        return self.key if self.member is None else f"{self.member}.{self.key}"

    def __len__(self) -> int:
        return self.count

    def load(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    per_image = True  # scored by per-image outcomes; False: by ``measure`` and ``figures``

    def restrict(self, logits: Tensor) -> Tensor:
        """The logits of the classes this set's labels index: all of them, or ``class_indices``
        (ImageNet-R's 200 of the 1000, restricted before the argmax as the set's authors evaluate it)."""
        return logits if self.class_indices is None else logits[:, self.class_indices.to(logits.device)]

    def measure(self, logits: Tensor) -> Tensor:
        """Rows of the set's table from one batch's logits (sets that are not ``per_image``)."""
        raise NotImplementedError

    def figures(self, table: Tensor) -> dict:
        """The set's metrics from its complete table, in dataset order (sets that are not ``per_image``)."""
        raise NotImplementedError


def apply_transform(transform: Transform | None, images: Tensor) -> Tensor:
    if transform is None:
        return images
    return torch.stack([transform(image) for image in images])


class SourceSet(EvalSet):
    """Images of an ``ImageSource`` (the clean split, or one ImageNet-C severity folder).

    ``size`` (height, width), where given, is the size every image must have before ``transform``:
    it is checked on each image as it is decoded, so an odd file inside a -C set is named instead of
    being silently cropped or padded. ``size_reason`` says where that size comes from.
    """

    def __init__(
        self,
        source: ImageSource,
        transform: Transform,
        limit: int | None = None,
        corruption: str | None = None,
        severity: int | None = None,
        size: tuple[int, int] | None = None,
        size_reason: str = "",
    ) -> None:
        self.source, self.transform = source, transform
        self.count = min(len(source), limit) if limit else len(source)
        self.corruption, self.severity = corruption, severity
        self.size, self.size_reason = size, size_reason

    def image(self, index: int) -> Tensor:
        image = self.source.image(index)
        if self.size is not None and tuple(image.shape[-2:]) != self.size:
            (height, width), (expected_h, expected_w) = image.shape[-2:], self.size
            raise DataError(
                f"{self.source.location(index)} is {width}x{height} but the images of set {self.key} must be "
                f"{expected_w}x{expected_h} ({self.size_reason}); a -C set holds images of one size, so replace "
                "the file from the released archive"
            )
        return image

    def load(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        images = torch.stack([self.transform(self.image(i)) for i in range(start, stop)])
        targets = torch.tensor([self.source.target(i) for i in range(start, stop)], dtype=torch.long)
        return images, targets


class MappedArray:
    """A .npy file read through a memory map that each loader worker opens for itself on first use
    (a map would be pickled as a full copy of the array)."""

    path: Path
    _array: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array


class ArraySet(MappedArray, EvalSet):
    """One severity block of a CIFAR-C ``<corruption>.npy``, read through a memory map.

    Only the rows of a batch are read; the map is opened lazily in each worker process.
    """

    def __init__(
        self,
        path: Path,
        offset: int,
        count: int,
        labels: np.ndarray,
        corruption: str,
        severity: int,
        transform: Transform | None = None,
    ) -> None:
        self.path, self.offset, self.count = Path(path), offset, count
        self.labels = torch.from_numpy(np.asarray(labels[:count], dtype=np.int64))
        self.corruption, self.severity, self.transform = corruption, severity, transform

    def load(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        rows = self.array[self.offset + start : self.offset + stop]  # a view: nothing read yet
        images = torch.empty((len(rows), rows.shape[3], rows.shape[1], rows.shape[2]), dtype=torch.uint8)
        np.copyto(images.numpy(), rows.transpose(0, 3, 1, 2))  # one pass: read the rows, lay them out NCHW
        return apply_transform(self.transform, images), self.labels[start:stop]


class BatchDataset(Dataset):
    """Map-style dataset over (set index, start, stop) keys; one item is one batch.

    A ``DataError`` (an unreadable image) comes back as ``{"error": message}`` so the main process
    can stop with that message instead of the DataLoader's wrapped traceback.
    """

    def __init__(self, sets: list[EvalSet], keys: list[tuple[int, int, int]]) -> None:
        self.sets, self.keys = sets, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        set_index, start, stop = self.keys[index]
        try:
            images, targets = self.sets[set_index].load(start, stop)
        except DataError as error:
            return {"error": str(error)}
        return {"images": images, "targets": targets, "set": set_index}
