"""The LightningDataModule that feeds AugMix training: (clean, augmix1, augmix2) triplets.

Workers decode, crop and flip once per sample and collate uint8 batches. AugMix then runs either
in the workers on the collated batch (``placement=workers``) or on the accelerator after the
transfer (``placement=device``); both use the same kernels and the same keyed streams, so they
produce the same augmentations. Normalisation happens last, on the device.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader

from augmix.augment import AugMix
from augmix.callbacks.reliability import training_batches_done
from augmix.data import sources
from augmix.data.batches import (
    AugMixViews,
    BatchAssembler,
    KeyedBatchSampler,
    Normalize,
    SampleTransform,
)
from augmix.data.corrupted import HELD_OUT_CORRUPTIONS, CorruptedSource
from augmix.data.photos import load_photos
from augmix.data.verify import file_progress, find_bad_images
from augmix.erasing import RandomErasing
from augmix.errors import CheckpointError, DataError
from augmix.mixing import MixUpCutMix
from augmix.rules import DECODE, PLACEMENT, check
from augmix.schedules import BatchPlan, batch_plan
from augmix.streams import ERASE_STREAM, MIX_STREAM, keyed_generator

log = logging.getLogger(__name__)
SHOWN = 5  # bad files named in the error line
VAL_CORRUPTED = "val_corrupted"  # the split of held-out corruptions (``val_corruptions``)


class TrainingViews:
    """What a training batch holds and how its views are made: built once from the ``augmix``
    config group (``from_settings``) and handed to the DataModule, whose ``num_views`` and ``jsd``
    the LightningModule receives too.

    With ``augmix`` and ``jsd`` a batch holds (clean, aug1, aug2) for the JSD loss; with ``augmix``
    alone, one AugMix view; without ``augmix``, the clean view only. ``mixer`` and ``eraser`` act on
    the views after AugMix; ``placement`` says where AugMix runs (``auto``: on the accelerator when
    the trainer has one, else in the loader workers). A plain class, not a dataclass: Hydra would
    turn a dataclass argument into a config node.
    """

    def __init__(
        self,
        augmix: AugMix | None = None,
        jsd: bool = False,
        mixer: MixUpCutMix | None = None,
        eraser: RandomErasing | None = None,
        placement: str = "auto",
    ) -> None:
        check("placement", placement, PLACEMENT)
        if jsd and augmix is None:
            raise ValueError("jsd=True needs AugMix views to compare with the clean view; pass augmix=AugMix(...)")
        self.augmix, self.jsd, self.mixer, self.eraser, self.placement = augmix, jsd, mixer, eraser, placement

    def __repr__(self) -> str:
        return (
            f"TrainingViews(augmix={self.augmix}, jsd={self.jsd}, mixer={self.mixer}, eraser={self.eraser}, "
            f"placement={self.placement!r})"
        )

    @property
    def augmented(self) -> int:
        """AugMix views per image: 2 for the JSD triplet, 1 without JSD, 0 with AugMix off."""
        return 0 if self.augmix is None else 2 if self.jsd else 1

    @property
    def clean(self) -> bool:
        """Does a batch lead with its clean view (for JSD, or as the only view with AugMix off)?"""
        return self.augmented != 1

    @property
    def num_views(self) -> int:
        """Views per training batch: 3 with JSD, else 1."""
        return self.augmented + self.clean

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], num_classes: int) -> TrainingViews:
        """The objects a (validated) ``augmix`` config group describes, each built once, by keyword."""
        s = _plain(settings)
        augmix = AugMix(
            severity=s["severity"], width=s["width"], depth=s["depth"], alpha=s["alpha"], all_ops=s["all_ops"],
            ops=s["ops"], fill=s["fill"], executor=s["executor"],
        ) if s["enabled"] else None
        jsd = augmix is not None and s["jsd"]
        mixup, cutmix, erase = s["mixup"]["alpha"], s["cutmix"]["alpha"], s["erase"]
        mixer = MixUpCutMix(
            mixup_alpha=mixup, cutmix_alpha=cutmix, num_classes=num_classes, prob=s["mix_prob"],
            switch_prob=s["switch_prob"], mode=s["mix_mode"],
        ) if mixup > 0 or cutmix > 0 else None
        keep_clean = erase["views"] == "augmented" and (augmix is None or jsd)  # the leading clean view stays clean
        eraser = RandomErasing(
            prob=erase["prob"], area=erase["area"], ratio=erase["ratio"], mode=erase["mode"], first_view=int(keep_clean),
        ) if erase["prob"] > 0 else None
        return cls(augmix=augmix, jsd=jsd, mixer=mixer, eraser=eraser, placement=s["placement"])


class AugMixDataModule(pl.LightningDataModule):
    """Builds sources for ``name`` and serves keyed batches.

    Train batches reach the LightningModule as ``{"views": [clean, aug1, aug2], "target": y}``
    (``[aug]`` without JSD, ``[clean]`` with AugMix off; see ``TrainingViews``); evaluation batches
    as ``{"views": [image], "target": y, "split": name}`` (``val``, ``val_corrupted`` or ``test``).
    All views are normalised float tensors. With MixUp or CutMix on, training targets are soft
    (B, num_classes) float tensors. Under DDP the keyed sampler shards the data itself, so the
    trainer needs ``use_distributed_sampler=False`` (checked with the config).

    ``batch_size`` counts the images of one optimizer step over all processes with
    ``batch_scope="global"`` (the recipes: the paper's batch on any number of devices; each process
    takes ``batch_size / (processes x accumulate_grad_batches)``), or each process's batch with
    ``"process"``. ``decode="draft"`` lets training crops of JPEG files decode at a reduced DCT
    scale where the crop is at least twice the output size (``augmix.data.decoding``).
    """

    def __init__(
        self,
        name: str,
        root: str,
        num_classes: int,
        image_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train_transform: SampleTransform,
        eval_transform: SampleTransform,
        training_views: TrainingViews | None = None,
        batch_size: int = 128,
        batch_scope: str = "process",
        eval_batch_size: int = 256,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        drop_last: bool = False,
        download: bool = True,
        val_fraction: float = 0.0,
        seed: int = 0,
        val_corruptions: Mapping[str, Any] | None = None,
        verify_files: bool = True,
        on_bad_image: str = "error",
        decode: str = "full",
    ) -> None:
        super().__init__()
        check("data.decode", decode, DECODE)
        self.verify_files, self.on_bad_image = verify_files, on_bad_image
        self.bad_files: dict[str, str] = {}  # file -> problem, for the images left out under on_bad_image=skip
        self._unchecked: list[tuple[sources.FolderSource, int]] = []  # image folders and the smallest side they need
        self.name, self.root, self.num_classes, self.image_size = name, str(root), num_classes, image_size
        self.normalize = Normalize(tuple(mean), tuple(std))
        self.train_transform, self.eval_transform = train_transform, eval_transform
        self.views = training_views if training_views is not None else TrainingViews()
        self.batch_size, self.batch_scope, self.eval_batch_size = batch_size, batch_scope, eval_batch_size
        self.decode = decode
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers, self.drop_last = persistent_workers, drop_last
        self.download, self.val_fraction, self.seed = download, val_fraction, seed
        self.val_corruptions = _plain(val_corruptions) if val_corruptions else None
        self.splits: dict[str, sources.ImageSource] = {}
        self.placement = "workers"
        self._device_views: AugMixViews | None = None
        self.resume_point: tuple[int, int] | None = None

    # ----------------------------------------------------------------------------------- sources

    def prepare_data(self) -> None:
        """Download CIFAR when allowed and missing; check that folder datasets exist."""
        if self.name in ("cifar10", "cifar100") and sources.cifar_files_missing(self.root, self.name):
            if not self.download:
                raise DataError(
                    sources.cifar_missing_message(self.root, self.name, "data.download=false forbids fetching it")
                )
            Path(self.root).mkdir(parents=True, exist_ok=True)
            sources.download_cifar(self.root, self.name)
        elif self.name in ("imagenet", "tinyimagenet", "imagefolder"):
            for split in ("train", "val"):
                if not (Path(self.root) / split).is_dir():
                    raise DataError(
                        f"{self.name} expects {Path(self.root).resolve() / split}/<class>/<image>; "
                        f"set data.root to the folder holding train/ and val/. {sources.QUICKSTART_HINT}"
                    )

    def source(self, split: str) -> sources.ImageSource:
        """The ``train``, ``val`` or ``test`` source, loaded once."""
        if split not in self.splits:
            self._load_splits()
        return self.splits[split]

    def _load_splits(self) -> None:
        if self.name == "digits":
            train, val, test = (sources.load_digits(s, self.image_size) for s in ("train", "val", "test"))
        elif self.name == "photos":
            train, val, test = (load_photos(s, self.image_size) for s in ("train", "val", "test"))
        elif self.name in ("cifar10", "cifar100"):
            # no download here: setup runs on every rank; Lightning's prepare_data fetched it once
            train, test = sources.load_cifar(self.root, self.name, "train"), sources.load_cifar(self.root, self.name, "test")
            val = test  # the official recipe reports test accuracy each epoch; val_fraction holds out instead
        else:
            train = sources.FolderSource(Path(self.root) / "train")
            test = sources.FolderSource(Path(self.root) / "val", class_names=train.classes)
            val = test
            self._unchecked = [(train, _min_image_size(self.train_transform)), (test, 1)]
        if self.val_fraction > 0:
            train, val = sources.split_off(train, self.val_fraction)
        if train.num_classes != self.num_classes:
            raise DataError(
                f"{self.name} at {self.root} has {train.num_classes} classes but data.num_classes={self.num_classes}; "
                "fix data.num_classes (the model's output size follows it)"
            )
        self.splits = {"train": train, "val": val, "test": test}
        if self.val_corruptions is not None:
            c = self.val_corruptions
            self.splits[VAL_CORRUPTED] = CorruptedSource(
                val,
                c.get("corruptions", HELD_OUT_CORRUPTIONS),
                c.get("severities", (1, 2, 3, 4, 5)),
                self.eval_transform,
                seed=c.get("seed", 0),
                limit=c.get("limit"),
            )

    # ------------------------------------------------------------------------------- Lightning hooks

    def setup(self, stage: str | None = None) -> None:
        trainer = self.trainer
        requested = self.views.placement
        on_accelerator = trainer is not None and trainer.strategy.root_device.type != "cpu"
        self.placement = ("device" if on_accelerator else "workers") if requested == "auto" else requested
        if not self.splits:
            self._load_splits()
        if self.verify_files and self._unchecked:  # before training; evaluation's source("test") skips it
            self._check_files(self._unchecked)
            self._unchecked = []

    def _check_files(self, folders: list[tuple[sources.FolderSource, int]]) -> None:
        """Every image file's start, end and header, before the first batch (``data.verify_files``),
        each rank checking its share in ``num_workers`` processes. A bad file stops the run at once
        with ``on_bad_image=error``; with ``skip`` each is logged once and left out of every batch."""
        rank, world = self._rank() if _distributed() else (0, 1)
        total = sum(len(folder) for folder, _ in folders)
        found: list[tuple[str, str]] = []
        with file_progress(total // world, rank == 0, "checking image files") as advance:
            for folder, min_size in folders:
                found += find_bad_images(folder.files()[rank::world], max(min_size, 1), self.num_workers, True, advance)
        found = sorted(_from_all_ranks(found))
        if not found:
            return
        if self.on_bad_image == "error":
            shown = "; ".join(f"{path} {problem}" for path, problem in found[:SHOWN])
            if len(found) > SHOWN and rank == 0:  # the full list goes to the log, the error line names a few
                for path, problem in found:
                    log.warning(f"bad image: {path} {problem}")
            raise DataError(
                f"{len(found)} bad image file(s) in {self.root}: {shown}"
                f"{' ... (all listed in the log above)' if len(found) > SHOWN else ''}. Replace or remove them, or set "
                "data.on_bad_image=skip to leave them out (data.verify_files=false skips this check)"
            )
        for path, problem in found:
            self._note_bad(path, f"{path} {problem}", announce=rank == 0)  # every rank found them all

    def _note_bad(self, path: str, message: str, announce: bool = True) -> None:
        """Record a file left out under ``on_bad_image=skip``; logged once per run."""
        if path not in self.bad_files:
            self.bad_files[path] = message
            if announce:
                log.warning(f"skipping bad image (data.on_bad_image=skip): {message}")

    def teardown(self, stage: str) -> None:
        if self.bad_files and stage == "fit" and self._rank()[0] == 0:
            log.warning(
                f"{len(self.bad_files)} bad image file(s) were left out of this run (data.on_bad_image=skip), each "
                "replaced by the next readable image of its split; each is named above"
            )

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def batch_plan(self) -> BatchPlan:
        """How ``batch_size`` is shared: with ``batch_scope="global"`` it is the batch of one optimizer
        step, and each of the trainer's processes takes an equal share of each accumulated batch."""
        trainer = self.trainer
        processes, accumulate = (trainer.world_size, trainer.accumulate_grad_batches) if trainer is not None else (1, 1)
        return batch_plan(self.batch_size, self.batch_scope, processes, accumulate)

    def augmix_views(self, rank: int, normalized: bool = True) -> AugMixViews | None:
        """What makes a training batch's AugMix views, in the workers or after transfer; normalised
        while they are mixed (in cache), unless ``normalized`` is false (for looking at them)."""
        if self.views.augmix is None:
            return None
        statistics = self.normalize.statistics if normalized else None
        return AugMixViews(self.views.augmix, self.views.augmented, self.seed, rank, statistics)

    def train_dataloader(self) -> DataLoader:
        rank, world_size = self._rank()
        source = self.source("train")
        sampler = KeyedBatchSampler(
            len(source), self.batch_plan().per_process, shuffle=True, drop_last=self.drop_last, seed=self.seed,
            rank=rank, world_size=world_size, pad_shards=True,
        )
        sampler.resume_point = self.resume_point
        views = self.augmix_views(rank)
        self._device_views = views if self.placement == "device" else None
        in_workers = views if self.placement == "workers" else None
        return self._loader(self._assembler("train", self.train_transform, rank, in_workers, self.decode), sampler)

    def _eval_loader(self, split: str, transform: SampleTransform | None = None) -> DataLoader:
        rank, world_size = self._rank()
        source = self.source(split)
        sampler = KeyedBatchSampler(
            len(source), self.eval_batch_size, shuffle=False, drop_last=False, seed=self.seed,
            rank=rank, world_size=world_size, pad_shards=False,
        )
        return self._loader(self._assembler(split, transform or self.eval_transform, rank), sampler)

    def _assembler(
        self, split: str, transform: SampleTransform, rank: int, views: AugMixViews | None = None, decode: str = "full"
    ) -> BatchAssembler:
        source = self.source(split)
        return BatchAssembler(
            source, transform, self.seed, rank, views, self.on_bad_image, self.bad_files, split, decode=decode
        )

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The clean validation split, plus its held-out corruptions when ``val_corruptions`` is set."""
        clean = self._eval_loader("val")
        if VAL_CORRUPTED not in self.splits:
            return clean
        return [clean, self._eval_loader(VAL_CORRUPTED, transform=_already_transformed)]

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def _loader(self, assembler: BatchAssembler, sampler: KeyedBatchSampler) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            assembler,
            batch_size=None,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and workers > 0,
        )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        training = self.trainer is not None and self.trainer.training
        return self.finish_batch(batch, training)

    def _check_batch(self, batch: dict) -> None:
        """Raise a loader worker's error here, as one line; log the files it left out."""
        if "error" in batch:
            raise DataError(batch["error"])
        for path, message in batch.pop("skipped", ()):
            self._note_bad(path, message)

    def state_dict(self) -> dict[str, Any]:
        """Where the epoch stood when the checkpoint was written, so a mid-epoch resume (pre-emption,
        ``val_check_interval`` < 1, step checkpoints) skips exactly the batches already trained."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return {"resume_point": None}
        done = training_batches_done(trainer)
        return {"resume_point": [trainer.current_epoch, done]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        point = state_dict.get("resume_point") if isinstance(state_dict, Mapping) else None
        if point is not None and not (
            isinstance(point, (list, tuple)) and len(point) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in point)
        ):  # read from a checkpoint file: data, checked like any other
            raise CheckpointError(f"checkpoint key AugMixDataModule.resume_point={point!r} is invalid: must be [epoch, batches done]")
        self.resume_point = tuple(point) if point else None

    # ------------------------------------------------------------------------------ batch finishing

    def finish_batch(self, batch: dict, training: bool) -> dict:
        """Add AugMix views when they weren't made in the workers, normalise the clean view (the AugMix
        views come normalised), then erase and mix."""
        self._check_batch(batch)
        clean: Tensor = batch["image"]
        if not training:
            return {"views": [self.normalize(clean)], "target": batch["target"], "split": batch.get("split")}
        views = batch.get("views")
        if views is None and self.views.augmix is not None:
            augment = self._device_views or self.augmix_views(self._rank()[0])
            views = augment(clean, *batch["key"])
        normalised = list(views or [])
        if self.views.clean:
            normalised.insert(0, self.normalize(clean))
        return self._erase_and_mix(normalised, batch["target"], batch["key"])

    def _erase_and_mix(self, views: list[Tensor], target: Tensor, key: tuple[int, int]) -> dict:
        """Random erasing per image, then MixUp/CutMix on the batch (timm's order), each from its own
        keyed stream, so both placements, any worker count and resumed runs see the same batch."""
        rank, eraser, mixer = self._rank()[0], self.views.eraser, self.views.mixer
        if eraser is not None:
            views = eraser(views, keyed_generator(self.seed, ERASE_STREAM, rank, *key))
        if mixer is not None:
            views, target = mixer(views, target, keyed_generator(self.seed, MIX_STREAM, rank, *key))
        return {"views": views, "target": target}

    def preview(self, count: int = 8) -> tuple[Tensor, list[Tensor]]:
        """The first ``count`` images of training batch 0 of epoch 0 and their AugMix views in [0, 1],
        on CPU: the whole batch is built, as training builds it, so the views are the ones it gets."""
        source = self.source("train")
        sampler = KeyedBatchSampler(len(source), self.batch_plan().per_process, True, self.drop_last, self.seed)
        batch = self._assembler("train", self.train_transform, 0, decode=self.decode)[next(iter(sampler))]
        self._check_batch(batch)
        views = self.augmix_views(0, normalized=False)
        augmented = views(batch["image"], *batch["key"]) if views is not None else []
        return batch["image"][:count], [view[:count] for view in augmented]


def _min_image_size(transform: SampleTransform) -> int:
    """The smallest side the transform can take (e.g. a crop's size less its padding); 1 if any."""
    return int(getattr(transform, "min_image_size", 1))


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _from_all_ranks(items: list) -> list:
    """Every rank's ``items``, concatenated in rank order, on every rank."""
    if not _distributed() or torch.distributed.get_world_size() == 1:
        return items
    gathered: list[list | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, items)
    return [item for part in gathered for item in part or []]


def _already_transformed(image: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return image


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict (lists, not ListConfigs) from a config node or mapping."""
    if isinstance(settings, DictConfig):
        return OmegaConf.to_container(settings, resolve=True)  # type: ignore[return-value]
    return dict(settings)
