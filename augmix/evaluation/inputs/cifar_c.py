"""CIFAR-10-C / CIFAR-100-C on disk: ``DIR/<corruption>.npy`` uint8 (5N, H, W, 3), severity 1 block
first, and ``DIR/labels.npy`` with the 5N labels. Checked from the .npy headers and the labels
(against the clean split's targets when the blocks are as long as it), before any compute; the
pixels are read later through memory maps, one batch of rows at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augmix.corruptions import SEVERITIES
from augmix.data.sources import ImageSource
from augmix.errors import DataError
from augmix.evaluation.inputs.sets import ArraySet, Transform
from augmix.evaluation.inputs.spec import BenchmarkSpec, download_hint


def _header(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"{path} is not a readable .npy array ({error}); re-download it") from None


def _check_against_clean(spec: BenchmarkSpec, labels: np.ndarray, block: int, clean: ImageSource) -> None:
    """A block as long as the clean split is that split corrupted, so its labels must be the clean
    targets in order. This catches e.g. CIFAR-10-C given as cifar100c, whose labels fit 100 classes."""
    if block != len(clean):
        return
    targets = np.array([clean.target(i) for i in range(block)])
    differ = [k + 1 for k in range(len(SEVERITIES)) if not np.array_equal(labels[k * block : (k + 1) * block], targets)]
    if differ:
        raise DataError(
            f"{spec.root / 'labels.npy'} does not match the clean test split: the labels of severity block(s) "
            f"{differ} differ from its {block} targets; is benchmark.root the {spec.name} set of this data config "
            "(e.g. CIFAR-10-C given as cifar100c)?"
        )


def cifar_c_sets(
    spec: BenchmarkSpec, image_size: int, num_classes: int, clean: ImageSource, transform: Transform | None
) -> list[ArraySet]:
    """The (corruption, severity) sets of ``spec`` (whose root exists), after checking files, shapes,
    dtypes and labels."""
    root = spec.root
    wanted = ["labels.npy", *(f"{name}.npy" for name in spec.corruptions)]
    missing = [name for name in wanted if not (root / name).is_file()]
    if missing:
        raise DataError(f"{root} is missing {len(missing)} file(s): {', '.join(missing)}. {download_hint(spec)}")

    labels = np.array(_header(root / "labels.npy"))  # small: read whole, writable
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) % len(SEVERITIES):
        raise DataError(
            f"{root / 'labels.npy'} holds {labels.dtype} {labels.shape}; expected a 1-D integer array "
            f"with one label per image of the 5 stacked severities (e.g. 50000 for CIFAR-10-C)"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{root / 'labels.npy'} has labels in {labels.min()}..{labels.max()}, outside the model's "
            f"{num_classes} classes; is benchmark.root the right benchmark for this checkpoint?"
        )
    block = len(labels) // len(SEVERITIES)
    _check_against_clean(spec, labels, block, clean)
    expected = (len(labels), image_size, image_size, 3)
    problems = []
    for name in spec.corruptions:
        array = _header(root / f"{name}.npy")
        if array.dtype != np.uint8 or array.shape != expected:
            problems.append(f"{name}.npy holds {array.dtype} {array.shape}")
    if problems:
        raise DataError(
            f"wrong arrays in {root}: {'; '.join(problems)}. Expected uint8 {expected}: 5 severity blocks "
            f"of {len(labels) // len(SEVERITIES)} {image_size}x{image_size} RGB images matching labels.npy "
            f"({len(labels)} labels)."
        )

    count = min(block, spec.limit_per_set) if spec.limit_per_set else block
    return [
        ArraySet(
            root / f"{name}.npy",
            (severity - 1) * block,
            count,
            labels[(severity - 1) * block : severity * block],
            name,
            severity,
            transform,
        )
        for name in spec.corruptions
        for severity in spec.severities
    ]
