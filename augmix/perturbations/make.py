"""Make "-P" sets of any data config's test split in the released formats (``make_perturbed.py``).

The test split is the clean set evaluation reads (for a folder dataset, ``val/`` alone). Its
images go through the data config's eval transform first (ImageNet: Resize 256 + CenterCrop 224),
and the constants table follows the resulting size (32, 64 or 224). The preprocessed split is
staged in a temporary memory-mapped array inside the output folder, so large splits never sit in
memory and parallel workers share it. Writing is resumable; the folder must be empty or hold this
generator's own set, and is marked ``regenerated.json`` once every set is written.
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
from augmix.corruptions import select_table
from augmix.data.clean import clean_source
from augmix.data.sources import FolderSource, ImageSource
from augmix.errors import AugMixError, ConfigError, DataError
from augmix.perturbations import video
from augmix.perturbations.registry import ALL_PERTURBATIONS, BENCHMARK_PERTURBATIONS, EXTRA_PERTURBATIONS
from augmix.perturbations.tables import DIFFICULTIES
from augmix.perturbations.writer import claim_folder, mark_regenerated, marker_fields, write_cifar_p, write_imagenet_p
from augmix.rules import fail, is_int, is_sequence

FORMATS = ("cifar_p", "imagenet_p")


def resolve_options(fmt: str, perturbations: Sequence[str] | None, extra: bool, difficulties: Sequence[int],
                    seed: int, limit: int | None, workers: int, codec: str) -> tuple[list[str], list[int]]:
    """Check the command-line options (one ConfigError line each); returns the perturbation names
    and difficulties to write."""
    if fmt not in FORMATS:
        fail("format", fmt, f"must be one of {list(FORMATS)}")
    if perturbations is not None:
        if not is_sequence(perturbations) or not perturbations:
            fail("perturbations", perturbations, "must be null (the 10 benchmark perturbations) or a non-empty list")
        unknown = [name for name in perturbations if name not in ALL_PERTURBATIONS]
        if unknown:
            fail("perturbations", perturbations, f"{unknown[0]!r} is not a perturbation; valid: {list(ALL_PERTURBATIONS)}")
    if not isinstance(extra, bool):
        fail("extra", extra, "must be true or false")
    if not is_sequence(difficulties) or not difficulties or any(not is_int(d) or d not in DIFFICULTIES for d in difficulties):
        fail("difficulties", difficulties, f"must be a non-empty list drawn from {list(DIFFICULTIES)}")
    if not is_int(seed) or seed < 0:
        fail("seed", seed, "must be a non-negative integer")
    for key, value in (("workers", workers), ("limit", limit)):
        if (value is not None or key == "workers") and (not is_int(value) or value < 1):
            fail(key, value, "must be an integer >= 1")
    if codec not in video.CODECS:
        fail("codec", codec, f"must be one of {list(video.CODECS)}")
    names = list(perturbations) if perturbations is not None else list(BENCHMARK_PERTURBATIONS)
    if extra:
        names += [name for name in EXTRA_PERTURBATIONS if name not in names]
    return names, sorted({int(d) for d in difficulties})


def _file_names(source: ImageSource, count: int) -> list[str] | None:
    """Keep the original file names (ImageNet-P names videos after the val images) when unique."""
    if not isinstance(source, FolderSource):
        return None
    names = [os.path.splitext(os.path.basename(path))[0] for path, _ in source.samples[:count]]
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
                f"the eval transform gives images of different sizes ({tuple(image.shape)} vs {tuple(first.shape)}); "
                "a -P set needs one size: use a cropping eval_transform"
            )
        staged[i] = image.permute(1, 2, 0).numpy()
    staged.flush()


def _write_part(fmt: str, staged: str, labels: np.ndarray, classes: list[str], out: str, names: list[str],
                difficulties: list[int], seed: int, file_names: list[str] | None, codec: str) -> None:
    images = np.load(staged, mmap_mode="r")
    if fmt == "cifar_p":
        write_cifar_p(images, out, perturbations=names, difficulties=difficulties, seed=seed, finish=False)
    else:
        write_imagenet_p(images, labels, classes, out, perturbations=names, difficulties=difficulties, seed=seed,
                         file_names=file_names, codec=codec, finish=False)


def _output_folder(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise DataError(f"out={out} is a file, not a folder; give a new or empty folder for the -P set")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create out={out} ({error.strerror or error}); give a folder you can write") from None
    return out


def write_perturbed(data: Mapping[str, Any] | DictConfig, fmt: str, out: str | Path,
                    perturbations: Sequence[str] | None = None, extra: bool = False,
                    difficulties: Sequence[int] = DIFFICULTIES, seed: int = 0, limit: int | None = None,
                    workers: int = 1, codec: str = "lossless") -> Path:
    """Write the perturbed test split of ``data`` to ``out``; returns ``out``. One process per
    perturbation when ``workers`` > 1; an interrupted run resumes where it stopped."""
    names, difficulties = resolve_options(fmt, perturbations, extra, difficulties, seed, limit, workers, codec)
    data = OmegaConf.create(data) if not isinstance(data, DictConfig) else data
    validate_data(data)
    datamodule = instantiate(data)
    source = clean_source(datamodule)
    if len(source) == 0:
        raise DataError(f"the test split of data {datamodule.name} at {datamodule.root} has no images to perturb")
    count = min(len(source), limit) if limit else len(source)
    out = _output_folder(Path(out))
    staged_path = out / f".staged-test-split-{os.getpid()}.npy"
    try:
        first = datamodule.eval_transform(source.image(0))  # (C, H, W): its size selects the table
        table = select_table(first.shape[1], first.shape[2])
        claim_folder(out, marker_fields(fmt.replace("_", "-"), table, seed, count,
                                        codec if fmt == "imagenet_p" else None))
        _stage(source, datamodule.eval_transform, count, staged_path)
        labels = np.array([source.target(i) for i in range(count)], dtype=np.int64)
        args = (fmt, str(staged_path), labels, list(source.classes), str(out))
        rest = (difficulties, seed, _file_names(source, count), codec)
        if workers == 1:
            _write_part(*args, names, *rest)
        else:
            with ProcessPoolExecutor(min(workers, len(names))) as pool:
                for job in [pool.submit(_write_part, *args, [name], *rest) for name in names]:
                    job.result()
        mark_regenerated(out)  # only now: a failed run never labels the folder regenerated
    except AugMixError:
        raise
    except ValueError as error:  # the writers' own checks, e.g. a folder holding a different set
        raise DataError(f"cannot write {out}: {error}") from None
    finally:
        staged_path.unlink(missing_ok=True)
    return out
