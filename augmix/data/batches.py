"""Keyed batches: every batch is built from a key (epoch, index), and all its randomness from
streams keyed by (seed, rank, epoch, index). A batch is therefore the same whichever worker builds
it, however many workers there are, and whether the run was resumed or not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from augmix.augment import AugMix, Normalization
from augmix.data.sources import ImageSource, decoder_reason
from augmix.errors import DataError
from augmix.streams import AUGMIX_STREAM, CROP_STREAM, ORDER_STREAM, keyed_generator
from augmix.tensors import empty_batch, images_per_block

# Stream ids keep the differently used streams of one batch independent.


@dataclass(frozen=True)
class BatchKey:
    epoch: int
    index: int
    samples: tuple[int, ...]


class KeyedBatchSampler(Sampler[BatchKey]):
    """Yields batch keys; shuffles per epoch from (seed, epoch) and shards across ranks.

    Training shards are padded to equal length (as DistributedSampler does) so every rank takes
    the same number of steps; evaluation shards are not padded, so every sample counts once.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        pad_shards: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.rank, self.world_size, self.pad_shards = rank, world_size, pad_shards
        self.epoch = 0
        self.resume_point: tuple[int, int] | None = None  # (epoch, batches already trained)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        self.epoch = epoch

    def shard(self) -> Tensor:
        """This rank's sample indices for the current epoch, in order."""
        if self.shuffle:
            order = torch.randperm(self.size, generator=keyed_generator(self.seed, ORDER_STREAM, self.epoch))
        else:
            order = torch.arange(self.size)
        if self.world_size > 1:
            if self.pad_shards:
                total = -(-self.size // self.world_size) * self.world_size
                order = torch.cat([order, order[: total - self.size]]) if total > self.size else order
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[BatchKey]:
        order = self.shard().tolist()
        start = 0
        if self.resume_point is not None and self.resume_point[0] == self.epoch:
            start = self.resume_point[1]  # a run stopped mid-epoch continues where it stopped
        for index in range(start, len(self)):
            chunk = order[index * self.batch_size : (index + 1) * self.batch_size]
            yield BatchKey(self.epoch, index, tuple(chunk))

    def __len__(self) -> int:
        if self.world_size == 1:
            count = self.size
        elif self.pad_shards:
            count = -(-self.size // self.world_size)
        else:
            count = len(range(self.rank, self.size, self.world_size))
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)


SampleTransform = Callable[[Tensor, torch.Generator], Tensor]


class AugMixViews:
    """Turns a uint8 batch into its AugMix views (two for JSD, one without) from a batch key;
    normalised by ``normalize`` (mean, std) when given, in [0, 1] otherwise."""

    def __init__(
        self, augmix: AugMix, num_views: int, seed: int, rank: int = 0, normalize: Normalization | None = None
    ) -> None:
        self.augmix, self.num_views, self.seed, self.rank = augmix, num_views, seed, rank
        self.normalize = normalize

    def generator(self, epoch: int, index: int) -> torch.Generator:
        return keyed_generator(self.seed, AUGMIX_STREAM, self.rank, epoch, index)

    def __call__(self, images: Tensor, epoch: int, index: int) -> list[Tensor]:
        """View ``v`` of image ``i`` uses the draws of row ``v * len(images) + i`` of one draw for
        all views. Each view is made from ``images`` directly: no repeated copy of the batch."""
        n = len(images)
        params = self.augmix.sample(self.num_views * n, self.generator(epoch, index))
        return [
            self.augmix.apply(images, params.rows(view * n, (view + 1) * n), self.normalize)
            for view in range(self.num_views)
        ]


class BatchAssembler(Dataset):
    """Map-style dataset over batch keys: decodes, crops and stacks one batch.

    With ``views`` set (AugMix placement ``workers``) it also computes the AugMix views here, in
    the loader worker. Otherwise the uint8 batch leaves as is and AugMix runs after transfer.

    A bad image (undecodable, or one the transform cannot use) stops the run with a message naming
    its file under ``on_bad_image="error"``. Under ``"skip"`` it is replaced by the next readable
    image of the split (wrapping around), with that image's label: a pure function of which files
    are bad, so batches stay the same for any worker count and across resumption. ``known_bad``
    holds the files the pre-training check found; the batch lists the ones found while decoding
    under ``"skipped"`` as (file, message). Errors travel back as ``{"error": message}``, so the main
    process can raise them as one line rather than as the DataLoader's wrapped traceback. Every
    batch names its ``split``, so whoever reads it needs no loader index to know what it holds.
    With ``decode="draft"`` a transform that crops straight from a file (``from_file``) decodes
    JPEGs at a reduced DCT scale where that is safe (``augmix.data.decoding``), with the same draws.
    """

    def __init__(
        self,
        source: ImageSource,
        transform: SampleTransform,
        seed: int,
        rank: int = 0,
        views: AugMixViews | None = None,
        on_bad_image: str = "error",
        known_bad: Collection[str] = (),
        split: str | None = None,
        decode: str = "full",
    ) -> None:
        self.source, self.transform, self.seed, self.rank, self.views = source, transform, seed, rank, views
        self.on_bad_image, self.bad, self.split = on_bad_image, set(known_bad), split
        # draft: a transform that can crop straight from a file (RandomResizedCropFlip.from_file) does
        self.from_file = getattr(transform, "from_file", None) if decode == "draft" else None

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: BatchKey) -> dict:
        generator = keyed_generator(self.seed, CROP_STREAM, self.rank, key.epoch, key.index)
        skipped: list[tuple[str, str]] = []
        try:
            samples = [self._sample(i, generator, skipped) for i in key.samples]
        except DataError as error:
            return {"error": str(error)}
        images = torch.stack([image for image, _ in samples])
        targets = torch.tensor([target for _, target in samples], dtype=torch.long)
        batch = {"image": images, "target": targets, "key": (key.epoch, key.index), "split": self.split}
        if skipped:
            batch["skipped"] = skipped
        if self.views is not None:
            batch["views"] = self.views(images, key.epoch, key.index)
        return batch

    def _sample(self, index: int, generator: torch.Generator, skipped: list[tuple[str, str]]) -> tuple[Tensor, int]:
        size = len(self.source)
        for candidate in ((index + step) % size for step in range(size)):
            if self.bad and self.source.location(candidate) in self.bad:
                continue
            try:
                return self._transformed(candidate, generator), self.source.target(candidate)
            except DataError as error:
                if self.on_bad_image != "skip":
                    raise DataError(f"{error} (or set data.on_bad_image=skip to leave such files out)") from None
                self.bad.add(self.source.location(candidate))
                skipped.append((self.source.location(candidate), str(error)))
        raise DataError(f"no readable image is left in this split ({len(self.bad)} bad files, e.g. {min(self.bad)})")

    def _transformed(self, index: int, generator: torch.Generator) -> Tensor:
        path = self.source.path(index) if self.from_file is not None else None
        try:
            if path is not None:
                out = self._from_file(path, generator)
                if out is not None:
                    return out
            image = self.source.image(index)  # a DataError naming the file when it does not decode
            return self.transform(image, generator)
        except ValueError as error:  # e.g. an image smaller than the crop
            raise DataError(f"{self.source.location(index)}: {error}; remove or replace the file") from None

    def _from_file(self, path: str, generator: torch.Generator) -> Tensor | None:
        """A bad file leaves the generator as it found it, as a failed full decode does (no draw made),
        so a skipped file changes no other image's crop."""
        state = generator.get_state()
        try:
            return self.from_file(path, generator)
        except (OSError, SyntaxError, RuntimeError, ValueError) as error:  # Pillow's and torchvision's decoder errors
            generator.set_state(state)
            if isinstance(error, ValueError):
                raise
            raise DataError(f"cannot decode image {path}: {decoder_reason(error)}. Remove or replace the file.") from None


class Normalize:
    """(x - mean) / std on the device; uint8 input is scaled to [0, 1] first."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean {mean} and std {std} must have equal length and positive std")
        self.mean, self.std = tuple(mean), tuple(std)

    @property
    def statistics(self) -> Normalization:
        return self.mean, self.std

    def __call__(self, images: Tensor) -> Tensor:
        """Normalised float32 images, ``x * (1 / std) - mean / std`` (x scaled from uint8) as one
        multiply-add per value, on CPU a cache-sized block of images at a time. Per-channel
        Python scalars: no constant is copied to the images' device."""
        scale = 255.0 if images.dtype == torch.uint8 else 1.0
        weights = [1.0 / (scale * s) for s in self.std]
        offsets = [-m / s for m, s in zip(self.mean, self.std)]
        out = empty_batch(images.shape, images.device)
        source, target = images.reshape(-1, *images.shape[-3:]), out.view(-1, *out.shape[-3:])
        block = images_per_block(target)
        for start in range(0, len(target), block):
            for channel, (weight, offset) in enumerate(zip(weights, offsets)):
                part = target[start : start + block, channel]
                part.fill_(offset).add_(source[start : start + block, channel], alpha=weight)
        return out
