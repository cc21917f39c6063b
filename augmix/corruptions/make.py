"""Make "-C" sets of any data config's test split in the released formats (``make_corrupted.py``).

The test split is the clean set evaluation reads (for a folder dataset, ``val/`` alone). Its
images go through the data config's eval transform first (ImageNet: Resize 256 + CenterCrop 224),
exactly as the benchmark's creation scripts preprocess before corrupting; the severity table
follows the resulting size (32, 64 or 224). The preprocessed split is staged in a
temporary memory-mapped array inside the output folder, so large splits never sit in memory and
parallel workers share it. Writing is resumable; the folder must be empty or hold this generator's
own set, and is marked ``regenerated.json`` once every set is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from augmix.config import validate_data
from augmix.corruptions.names import select_corruptions
from augmix.corruptions.tables import select_table
from augmix.corruptions.writer import claim_folder, mark_regenerated, write_cifar_c, write_imagenet_c
from augmix.data.clean import clean_source
from augmix.data.sources import FolderSource, ImageSource
from augmix.errors import ConfigError, DataError
from augmix.rules import fail, is_int

FORMATS = ("cifar_c", "imagenet_c")


def _file_names(source: ImageSource, count: int) -> list[str] | None:
    """Keep the original file names (ImageNet-C keeps the val names) when they are unique."""
    if not isinstance(source, FolderSource):
        return None
    names = [os.path.basename(path) for path, _ in source.samples[:count]]
    return names if len(set(names)) == len(names) else None


def _stage(source: ImageSource, transform: Any, count: int, path: Path) -> None:
    """The first ``count`` eval-transformed test images as a uint8 (N, H, W, 3) .npy at ``path``."""
    first = transform(source.image(0))
    shape = (count, first.shape[1], first.shape[2], first.shape[0])
    staged = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    for i in range(count):
        image = first if i == 0 else transform(source.image(i))
        if tuple(image.shape) != (shape[3], shape[1], shape[2]):
            raise ConfigError(
                f"the eval transform gives images of different sizes ({tuple(image.shape)} vs {first.shape}); "
                "a -C set needs one size: use a cropping eval_transform"
            )
        staged[i] = image.permute(1, 2, 0).numpy()
    staged.flush()


def _write_one(
    fmt: str,
    staged: str,
    labels: np.ndarray,
    classes: list[str],
    out: str,
    names: list[str],
    seed: int,
    file_names: list[str] | None,
) -> None:
    images = np.load(staged, mmap_mode="r")
    if fmt == "cifar_c":
        write_cifar_c(images, labels, out, corruptions=names, seed=seed, finish=False)
    else:
        write_imagenet_c(
            images, labels, classes, out, corruptions=names, seed=seed, file_names=file_names, finish=False
        )


def _output_folder(out: Path) -> Path:
    """``out``, created if needed; a path that is a file, or cannot be created, is one clear line."""
    if out.exists() and not out.is_dir():
        raise DataError(f"out={out} is a file, not a folder; give a new or empty folder for the -C set")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create out={out} ({error.strerror or error}); give a folder you can write") from None
    return out


def write_corrupted(
    data: Mapping[str, Any] | DictConfig,
    fmt: str,
    out: str | Path,
    corruptions: Sequence[str] | None = None,
    extra: bool = False,
    seed: int = 0,
    limit: int | None = None,
    workers: int = 1,
) -> Path:
    """Write the corrupted test split of ``data`` to ``out``; returns ``out``. One process per
    corruption when ``workers`` > 1; an interrupted run resumes where it stopped."""
    if fmt not in FORMATS:
        fail("format", fmt, f"must be one of {list(FORMATS)}")
    for key, value in (("workers", workers), ("limit", limit)):
        if (value is not None or key == "workers") and (not is_int(value) or value < 1):
            fail(key, value, "must be an integer >= 1")
    names = select_corruptions(corruptions, extra)
    if not is_int(seed) or seed < 0:
        fail("seed", seed, "must be a non-negative integer")
    data = OmegaConf.create(data) if not isinstance(data, DictConfig) else data
    validate_data(data)
    datamodule = instantiate(data)
    source = clean_source(datamodule)  # what evaluation reads: a folder dataset needs val/ only
    if len(source) == 0:
        raise DataError(f"the test split of data {datamodule.name} at {datamodule.root} has no images to corrupt")
    count = min(len(source), limit) if limit else len(source)
    out = _output_folder(Path(out))
    staged_path = out / f".staged-test-split-{os.getpid()}.npy"
    try:
        first = datamodule.eval_transform(source.image(0))  # (C, H, W): its size selects the table
        claim_folder(out, fmt.replace("_", "-"), select_table(first.shape[1], first.shape[2]), seed)
        _stage(source, datamodule.eval_transform, count, staged_path)
        labels = np.array([source.target(i) for i in range(count)], dtype=np.int64)
        args = (fmt, str(staged_path), labels, list(source.classes), str(out))
        file_names = _file_names(source, count)
        if workers == 1:
            _write_one(*args, list(names), seed, file_names)
        else:
            with ProcessPoolExecutor(min(workers, len(names))) as pool:
                jobs = [pool.submit(_write_one, *args, [name], seed, file_names) for name in names]
                for job in jobs:
                    job.result()
        mark_regenerated(out)  # only now: a failed run never labels the folder regenerated
    except ValueError as error:  # the writers' own checks, e.g. a folder holding a different set
        raise DataError(f"cannot write {out}: {error}") from None
    finally:
        staged_path.unlink(missing_ok=True)
    return out
