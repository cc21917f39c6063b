"""Write user-made "-C" sets in the two on-disk formats of the published benchmarks.

* CIFAR-C:    ``DIR/<corruption>.npy`` uint8 (5N, H, W, 3), severity 1 block first,
              and ``DIR/labels.npy`` (the N labels tiled 5 times).
* ImageNet-C: ``DIR/<corruption>/<severity>/<class>/<file>.JPEG`` (quality 85,
              ``optimize=True``, as the creation scripts save).

Both also write ``DIR/regenerated.json`` so reports can tell synthesised sets from
the published ones: only when the set is complete, and only into a folder that was
empty or holds this generator's own set (a hidden in-progress marker says so while a
run is under way). Every file is written atomically and existing files are skipped,
so an interrupted generation resumes where it stopped; resuming requires the same
images, labels, seed and table (seed, table and format are checked against the marker).
CIFAR-C arrays are corrupted and written ``CHUNK`` images at a time, so a split never
sits in memory whole (``images`` may be a memory map).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from augmix import set_files
from augmix.corruptions.names import BENCHMARK_CORRUPTIONS, SEVERITIES, check_corruptions
from augmix.corruptions.registry import (
    check_images,
    check_non_negative_int,
    check_table,
    corrupt,
    corrupt_batch,
    image_rng,
)
from augmix.corruptions.tables import select_table
from augmix.files import atomic_write
from augmix.regenerated import claim_folder, mark_regenerated

GENERATOR = "augmix.corruptions"
JPEG_QUALITY = 85
CHUNK = 1000  # images corrupted at once: 3 MB at 32px, 150 MB at 224px


def _check_common(images: np.ndarray, labels: np.ndarray, corruptions: Sequence[str],
                  seed: int, table: int | None) -> tuple[np.ndarray, int]:
    check_images(images, batched=True)
    labels = set_files.check_labels(labels, len(images))
    check_corruptions("corruptions", corruptions)
    check_non_negative_int(seed, "seed")
    check_table(table)
    resolved = select_table(*images.shape[1:3]) if table is None else table
    return labels, resolved


def marker_fields(fmt: str, table: int, seed: int) -> dict[str, Any]:
    """What ``regenerated.json`` records besides the generator: resuming needs the same values."""
    return {"format": fmt, "table": int(table), "seed": int(seed)}


def write_cifar_c(images: np.ndarray, labels: np.ndarray, out_dir: str | Path,
                  corruptions: Sequence[str] = BENCHMARK_CORRUPTIONS, seed: int = 0,
                  table: int | None = None, finish: bool = True) -> Path:
    """Write a CIFAR-10-C style set: severity block ``k`` of ``<name>.npy`` equals
    ``corrupt_batch(images, name, k + 1, seed, table)``. Returns the directory, marked
    regenerated unless ``finish`` is false (a caller writing it in parts marks it when all are done)."""
    labels, table = _check_common(images, labels, corruptions, seed, table)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, GENERATOR, marker_fields("cifar-c", table, seed))

    tiled = np.tile(labels, len(SEVERITIES))
    labels_path = out / "labels.npy"
    if labels_path.exists():
        if not np.array_equal(np.load(labels_path), tiled):
            raise ValueError(f"{labels_path} holds different labels; use another directory")
    else:
        atomic_write(labels_path, lambda handle: np.save(handle, tiled))

    shape = (len(SEVERITIES) * len(images), *images.shape[1:])
    for name in corruptions:
        path = out / f"{name}.npy"
        if not set_files.finished_array_exists(path, shape):
            atomic_write(path, functools.partial(_write_stacked, images, name, seed, table))
    if finish:
        mark_regenerated(out)
    return out


def _write_stacked(images: np.ndarray, name: str, seed: int, table: int, handle: IO[bytes]) -> None:
    """The bytes ``np.save`` would write for the 5 stacked severity blocks, streamed chunk by chunk:
    image ``i`` keeps its stream ``image_rng(seed, i)`` through ``start_index``."""
    shape = (len(SEVERITIES) * len(images), *images.shape[1:])
    blocks = (corrupt_batch(chunk, name, severity, seed, table=table, start_index=start)
              for severity in SEVERITIES for start, chunk in set_files.in_chunks(images, CHUNK))
    set_files.stream_uint8_array(handle, shape, blocks)


def _check_file_names(file_names: Sequence[str] | None, n: int) -> list[str]:
    if file_names is None:
        return [f"{i:08d}.JPEG" for i in range(n)]
    names = [str(f) for f in file_names]
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"file_names must be {n} unique names")
    for name in names:
        set_files.check_plain_file_name(name)
    return names


def write_imagenet_c(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                     out_dir: str | Path, corruptions: Sequence[str] = BENCHMARK_CORRUPTIONS,
                     seed: int = 0, table: int | None = None,
                     file_names: Sequence[str] | None = None, finish: bool = True) -> Path:
    """Write an ImageNet-C style folder tree (``<name>/<severity>/<class>/<file>``).

    Image ``i`` at every corruption and severity uses ``image_rng(seed, i)``, the
    stream ``corrupt_batch`` gives it, so the JPEGs hold the same pixels as the
    CIFAR-C format (before JPEG coding). ``file_names`` default to ``00000000.JPEG``...
    Returns the directory, marked regenerated unless ``finish`` is false.
    """
    labels, table = _check_common(images, labels, corruptions, seed, table)
    classes = set_files.check_class_folders(class_names, labels)
    names = _check_file_names(file_names, len(images))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, GENERATOR, marker_fields("imagenet-c", table, seed))

    for name in corruptions:
        for severity in SEVERITIES:
            for i, image in enumerate(images):
                path = out / name / str(severity) / classes[labels[i]] / names[i]
                if path.exists():
                    continue
                corrupted = Image.fromarray(corrupt(image, name, severity, rng=image_rng(seed, i), table=table))
                atomic_write(path, functools.partial(_save_jpeg, corrupted))
    if finish:
        mark_regenerated(out)
    return out


def _save_jpeg(image: Image.Image, handle: IO[bytes]) -> None:
    image.save(handle, format="JPEG", quality=JPEG_QUALITY, optimize=True)
