"""From a ``BenchmarkSpec`` to its -C sets in any format, with the preprocessing its protocol asks for."""

from __future__ import annotations

import json
from pathlib import Path

from augmix.corruptions import select_table
from augmix.data import CenterCropOrPad
from augmix.data.sources import ImageSource
from augmix.errors import DataError
from augmix.evaluation.inputs.cifar_c import cifar_c_sets
from augmix.evaluation.inputs.imagenet_c import imagenet_c_sets
from augmix.evaluation.inputs.sets import EvalSet, Transform
from augmix.evaluation.inputs.spec import BenchmarkSpec
from augmix.evaluation.inputs.synthetic import synthetic_sets
from augmix.regenerated import IN_PROGRESS_NAME, MARKER_NAME


def corrupted_transform(spec: BenchmarkSpec, image_size: int, eval_transform: Transform) -> Transform:
    """Preprocessing of corrupted images before normalisation.

    ``benchmark``: a centre crop to the model's size, a no-op on the released 224px ImageNet-C
    images, as the benchmark's own ``ImageNet-C/test.py`` does. ``augmix_official``: the data
    config's eval transform (ImageNet: Resize 256 + CenterCrop 224, as AugMix's ``imagenet.py``
    applies to ImageNet-C, which zooms in by 8/7 and changes the numbers).
    """
    return eval_transform if spec.protocol == "augmix_official" else CenterCropOrPad(image_size)


def regeneration_info(spec: BenchmarkSpec, image_size: int) -> dict | None:
    """None for released files; otherwise how the corruptions were synthesised."""
    if spec.format == "synthetic":
        return {
            "generator": "augmix.corruptions",
            "format": "on the fly",
            "seed": spec.seed,
            "table": select_table(image_size, image_size),
        }
    return read_marker(spec.root)


def read_marker(root: Path) -> dict | None:
    """The ``regenerated.json`` that make_corrupted.py / make_perturbed.py write into a set's folder
    once it is complete; None for released files."""
    marker = root / MARKER_NAME
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{marker} is unreadable ({error}); regenerate the set or remove the file") from None


def corrupted_sets(
    spec: BenchmarkSpec, clean: ImageSource, eval_transform: Transform, image_size: int, num_classes: int
) -> list[EvalSet]:
    """Every (corruption, severity) set of the benchmark, validated, in canonical order."""
    if spec.root is not None and (spec.root / IN_PROGRESS_NAME).is_file():
        raise DataError(
            f"{spec.root} holds a -C set that make_corrupted.py has not finished writing; run the same "
            "make_corrupted.py command again to complete it (finished files are kept)"
        )
    if spec.format == "imagenet_c":
        return imagenet_c_sets(spec, clean.classes, corrupted_transform(spec, image_size, eval_transform), image_size)
    # .npy arrays are checked to hold image_size images and synthetic ones are made from eval-transformed
    # images, so the benchmark protocol's centre crop would be a no-op: skip the per-image work.
    after = eval_transform if spec.protocol == "augmix_official" else None
    if spec.format == "cifar_c":
        return cifar_c_sets(spec, image_size, num_classes, clean, after)
    return synthetic_sets(spec, clean, eval_transform, after)
