"""Write a data config's test split as a user-made -C or -P set: the steps make_corrupted.py and
make_perturbed.py share.

The test split is the clean set evaluation reads (for a folder dataset, ``val/`` alone). Its images
go through the data config's eval transform first, as the benchmark's creation scripts preprocess,
and are staged in a temporary memory-mapped array inside the output folder, so large splits never
sit in memory and parallel workers share it. The folder is claimed before anything is written and
marked ``regenerated.json`` only once every part is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from augmix.config import validate_data
from augmix.corruptions.tables import select_table
from augmix.data.clean import clean_source
from augmix.data.sources import FolderSource, ImageSource
from augmix.errors import AugMixError, ConfigError, DataError
from augmix.regenerated import mark_regenerated
from augmix.rules import fail, is_int

VERBS = {"-C": "corrupt", "-P": "perturb"}  # what a set kind does to the test images, for messages


@dataclass(frozen=True)
class StagedSplit:
    """The preprocessed test split as each writer process reads it (small enough to pickle)."""

    images_path: str  # a uint8 (N, H, W, 3) .npy
    labels: np.ndarray
    classes: list[str]
    file_names: list[str] | None

    def images(self) -> np.ndarray:
        return np.load(self.images_path, mmap_mode="r")


WritePart = Callable[[StagedSplit, str, list[str]], None]  # (split, out folder, names of the sets to write)


def check_workers_and_limit(workers: int, limit: int | None) -> None:
    """``workers`` and (when given) ``limit`` are integers >= 1, or one ConfigError line."""
    for key, value in (("workers", workers), ("limit", limit)):
        if (value is not None or key == "workers") and (not is_int(value) or value < 1):
            fail(key, value, "must be an integer >= 1")


def write_test_split(data: Mapping[str, Any] | DictConfig, out: str | Path, names: Sequence[str], *, kind: str,
                     limit: int | None, workers: int, claim: Callable[[Path, int, int], None],
                     write_part: WritePart, keep_extensions: bool) -> Path:
    """Stage the test split of ``data``, ``claim(out, table, image count)`` the folder, and run
    ``write_part`` for all ``names`` (one process per name when ``workers`` > 1); returns ``out``.
    ``keep_extensions``: the original file names are passed on whole rather than as stems."""
    data = OmegaConf.create(data) if not isinstance(data, DictConfig) else data
    validate_data(data)
    datamodule = instantiate(data)
    source = clean_source(datamodule)  # what evaluation reads: a folder dataset needs val/ only
    if len(source) == 0:
        raise DataError(
            f"the test split of data {datamodule.name} at {datamodule.root} has no images to {VERBS[kind]}")
    count = min(len(source), limit) if limit else len(source)
    out = _output_folder(Path(out), kind)
    staged_path = out / f".staged-test-split-{os.getpid()}.npy"
    try:
        first = datamodule.eval_transform(source.image(0))  # (C, H, W): its size selects the table
        claim(out, select_table(first.shape[1], first.shape[2]), count)
        _stage(source, datamodule.eval_transform, count, staged_path, kind)
        labels = np.array([source.target(i) for i in range(count)], dtype=np.int64)
        split = StagedSplit(str(staged_path), labels, list(source.classes),
                            _file_names(source, count, keep_extensions))
        if workers == 1:
            write_part(split, str(out), list(names))
        else:
            with ProcessPoolExecutor(min(workers, len(names))) as pool:
                for job in [pool.submit(write_part, split, str(out), [name]) for name in names]:
                    job.result()
        mark_regenerated(out)  # only now: a failed run never labels the folder regenerated
    except AugMixError:
        raise
    except ValueError as error:  # the writers' own checks, e.g. a folder holding a different set
        raise DataError(f"cannot write {out}: {error}") from None
    finally:
        staged_path.unlink(missing_ok=True)
    return out


def _file_names(source: ImageSource, count: int, keep_extensions: bool) -> list[str] | None:
    """The original file names when unique (ImageNet-C keeps the val names, ImageNet-P names its
    videos after them)."""
    if not isinstance(source, FolderSource):
        return None
    names = [os.path.basename(path) for path, _ in source.samples[:count]]
    if not keep_extensions:
        names = [os.path.splitext(name)[0] for name in names]
    return names if len(set(names)) == len(names) else None


def _stage(source: ImageSource, transform: Any, count: int, path: Path, kind: str) -> None:
    """The first ``count`` eval-transformed test images as a uint8 (N, H, W, 3) .npy at ``path``."""
    first = transform(source.image(0))
    shape = (count, first.shape[1], first.shape[2], first.shape[0])
    staged = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    for i in range(count):
        image = first if i == 0 else transform(source.image(i))
        if tuple(image.shape) != (shape[3], shape[1], shape[2]):
            raise ConfigError(
                f"the eval transform gives images of different sizes ({tuple(image.shape)} vs {tuple(first.shape)}); "
                f"a {kind} set needs one size: use a cropping eval_transform"
            )
        staged[i] = image.permute(1, 2, 0).numpy()
    staged.flush()


def _output_folder(out: Path, kind: str) -> Path:
    """``out``, created if needed; a path that is a file, or cannot be created, is one clear line."""
    if out.exists() and not out.is_dir():
        raise DataError(f"out={out} is a file, not a folder; give a new or empty folder for the {kind} set")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create out={out} ({error.strerror or error}); give a folder you can write") from None
    return out
