"""Write user-made "-P" sets in the two on-disk formats of the published benchmarks.

* CIFAR-P:    ``DIR/<set>.npy`` uint8 (N, frames, H, W, 3), sequence ``i`` made from test image
              ``i`` (frames along axis 1); no labels file, as released: the order is the clean
              test split's.
* ImageNet-P: ``DIR/<set>/<class>/<name>.mp4`` (see ``video.py`` for the codec).

``<set>`` is the perturbation, or ``<name>_2`` / ``<name>_3`` for the harder noise difficulties.
Like ``augmix.corruptions.writer``, both write ``DIR/regenerated.json`` only when the set is
complete, and only into a folder that was empty or holds this generator's own set with the same
settings (a hidden in-progress marker says so while a run is under way). Every file is written
atomically and finished files are skipped, so an interrupted generation resumes where it stopped.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from augmix import set_files
from augmix.corruptions.registry import check_images, check_non_negative_int
from augmix.corruptions.tables import select_table
from augmix.files import atomic_write
from augmix.perturbations import video
from augmix.perturbations.registry import (
    BENCHMARK_PERTURBATIONS,
    check_name,
    check_table,
    frame_count,
    is_noise,
    perturb_batch,
    perturb_sequence,
    sequence_rng,
    set_name,
    set_names,
)
from augmix.perturbations.tables import DIFFICULTIES
from augmix.regenerated import claim_folder, mark_regenerated

CHUNK = 100  # images perturbed at once: 100 x 31 frames is 10 MB at 32px, 470 MB at 224px
GENERATOR = "augmix.perturbations"


def _check_common(images: np.ndarray, perturbations: Sequence[str], difficulties: Sequence[int], seed: int,
                  table: int | None) -> int:
    check_images(images, batched=True)
    if isinstance(perturbations, str):
        raise ValueError("perturbations must be a sequence of names, not a single string")
    for name in perturbations:
        check_name(name)
    if isinstance(difficulties, (str, int)) or not difficulties or any(d not in DIFFICULTIES for d in difficulties):
        raise ValueError(f"difficulties must be a non-empty list drawn from {list(DIFFICULTIES)}, got {difficulties!r}")
    check_non_negative_int(seed, "seed")
    check_table(table)
    return select_table(*images.shape[1:3]) if table is None else table


def marker_fields(fmt: str, table: int, seed: int, count: int, codec: str | None = None) -> dict[str, Any]:
    """What ``regenerated.json`` records besides the generator: resuming needs the same values."""
    fields = {"format": fmt, "table": int(table), "seed": int(seed), "images": int(count)}
    if codec is not None:
        fields["codec"] = codec
    return fields


def write_cifar_p(images: np.ndarray, out_dir: str | Path, perturbations: Sequence[str] = BENCHMARK_PERTURBATIONS,
                  difficulties: Sequence[int] = DIFFICULTIES, seed: int = 0, table: int | None = None,
                  finish: bool = True) -> Path:
    """Write a CIFAR-10-P style set: ``<set>.npy`` equals ``perturb_batch(images, name, difficulty,
    seed, table)``. Returns the directory, marked regenerated unless ``finish`` is false (a caller
    writing it in parts marks it when all are done)."""
    table = _check_common(images, perturbations, difficulties, seed, table)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, GENERATOR, marker_fields("cifar-p", table, seed, len(images)))
    for name, difficulty in set_names(list(perturbations), list(difficulties)):
        path = out / f"{set_name(name, difficulty)}.npy"
        shape = (len(images), frame_count(name, table), *images.shape[1:])
        if not set_files.finished_array_exists(path, shape):
            atomic_write(path, functools.partial(_write_sequences, images, name, difficulty, seed, table, shape))
    if finish:
        mark_regenerated(out)
    return out


def _write_sequences(images: np.ndarray, name: str, difficulty: int, seed: int, table: int,
                     shape: tuple[int, ...], handle: IO[bytes]) -> None:
    """The bytes ``np.save`` would write for the stacked sequences, streamed chunk by chunk."""
    blocks = (perturb_batch(chunk, name, difficulty, seed, table=table, start_index=start)
              for start, chunk in set_files.in_chunks(images, CHUNK))
    set_files.stream_uint8_array(handle, shape, blocks)


def _file_stems(file_names: Sequence[str] | None, n: int) -> list[str]:
    """Video names: the image file names without extension (ImageNet-P keeps the val names)."""
    if file_names is None:
        return [f"{i:08d}" for i in range(n)]
    stems = [os.path.splitext(str(f))[0] for f in file_names]
    if len(stems) != n or len(set(stems)) != n:
        raise ValueError(f"file_names must be {n} names, unique without their extension")
    for stem in stems:
        set_files.check_plain_file_name(stem)
    return stems


def write_imagenet_p(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], out_dir: str | Path,
                     perturbations: Sequence[str] = BENCHMARK_PERTURBATIONS,
                     difficulties: Sequence[int] = DIFFICULTIES, seed: int = 0, table: int | None = None,
                     file_names: Sequence[str] | None = None, codec: str = "lossless", finish: bool = True) -> Path:
    """Write an ImageNet-P style tree ``<set>/<class>/<name>.mp4``. Video ``i`` holds the frames
    ``perturb_sequence(images[i], name, difficulty, sequence_rng(seed, i), table)``, the CIFAR-P
    format's sequence ``i`` (decoded exactly with the default lossless codec). Returns the
    directory, marked regenerated unless ``finish`` is false."""
    table = _check_common(images, perturbations, difficulties, seed, table)
    if codec not in video.CODECS:
        raise ValueError(f"codec must be one of {video.CODECS}, got {codec!r}")
    labels = set_files.check_labels(labels, len(images))
    classes = set_files.check_class_folders(class_names, labels)
    stems = _file_stems(file_names, len(images))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, GENERATOR, marker_fields("imagenet-p", table, seed, len(images), codec))
    for name, difficulty in set_names(list(perturbations), list(difficulties)):
        folder = out / set_name(name, difficulty)
        for i, image in enumerate(images):
            path = folder / classes[labels[i]] / f"{stems[i]}.mp4"
            if path.exists():
                continue
            frames = perturb_sequence(np.asarray(image), name, difficulty, sequence_rng(seed, i), table)
            atomic_write(path, functools.partial(video.encode_mp4, frames, codec=codec, noise=is_noise(name)))
    if finish:
        mark_regenerated(out)
    return out
