"""Perturbation-stability sets (-P): the node of a -P benchmark, checked and frozen into a
``PerturbationSpec``, and its sets in either released format, checked before any compute.

* ``cifar_p``: CIFAR-10-P / CIFAR-100-P, ``DIR/<set>.npy`` uint8 (N, frames, H, W, 3) in the order of
  the clean test split (``augmix.evaluation.inputs.cifar_p``);
* ``imagenet_p``: ImageNet-P / Tiny-ImageNet-P, ``DIR/<set>/<wnid>/<name>.mp4``
  (``augmix.evaluation.inputs.imagenet_p``).

``<set>`` is the perturbation, or ``<name>_2`` / ``<name>_3`` for the noise perturbations at
difficulty 2 / 3; the other perturbations have one sequence set and their difficulty is the step
between the compared frames (ImageNet-P/test.py). Each item of a set is one video; its frames go
through the model together and become one row of flip, top-5 and Zipf figures
(``augmix.evaluation.metrics.stability_rows``), so a set's figures are means over its videos, as
the benchmark's evaluation code computes them. Labels play no part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from augmix.corruptions import select_table
from augmix.errors import DataError
from augmix.evaluation.inputs.corrupted import read_marker
from augmix.evaluation.inputs.sets import EvalSet
from augmix.evaluation.inputs.spec import check_identity, check_keys, check_switches, optional_count
from augmix.evaluation.metrics import stability_metrics, stability_rows
from augmix.perturbations.registry import (
    ALL_PERTURBATIONS,
    BENCHMARK_PERTURBATIONS,
    EXTRA_PERTURBATIONS,
    frame_count,
    is_noise,
    set_name,
)
from augmix.regenerated import IN_PROGRESS_NAME
from augmix.rules import fail, is_int, is_sequence

FORMATS = ("cifar_p", "imagenet_p")
DIFFICULTIES = (1, 2, 3, 4, 5)  # ImageNet-P/test.py's --difficulty choices
NOISE_DIFFICULTIES = (1, 2, 3)  # the released <name>, <name>_2, <name>_3 noise sets
RELEASES = {  # as linked from github.com/hendrycks/robustness's README
    "cifar10p": "CIFAR-10-P (CIFAR-10-P.tar) from https://zenodo.org/records/2535967",
    "cifar100p": "CIFAR-100-P from the Google Drive folder linked in github.com/hendrycks/robustness",
    "imagenetp": "ImageNet-P from https://zenodo.org/records/3565846",
    "tinyimagenetp": "Tiny-ImageNet-P from https://zenodo.org/records/2536630",
}
LAYOUTS = {"cifar_p": "<perturbation>.npy (N, frames, H, W, 3)", "imagenet_p": "<perturbation>/<class>/<name>.mp4"}
#: Every key a -P node may have (configs/benchmark/perturbation_default.yaml).
KEYS = (
    "name", "format", "root", "num_classes", "perturbations", "extra", "difficulty", "limit_per_set",
    "batch_size", "num_workers", "verify_files", "progress",
)


@dataclass(frozen=True)
class PerturbationSpec:
    """Which -P sets, where they live and at which difficulty."""

    name: str
    format: str
    root: Path
    perturbations: tuple[str, ...]
    difficulty: int = 1
    num_classes: int | None = None  # None: the data config's
    limit_per_set: int | None = None  # first N videos of every set
    batch_size: int | None = None  # images per batch (whole videos); None: data.eval_batch_size
    num_workers: int | None = None
    verify_files: bool = True  # imagenet_p: probe every video's header before computing
    progress: bool = True

    @property
    def complete(self) -> bool:
        """Comparable with published figures: the 10 benchmark perturbations, difficulty 1 (what
        cifar-p-eval.py and test.py report by default), every video."""
        return set(BENCHMARK_PERTURBATIONS) <= set(self.perturbations) and self.difficulty == 1 and self.limit_per_set is None

    def folder(self, name: str) -> str:
        """The released set that holds ``name`` at this difficulty (``gaussian_noise_2``, ``rotate``)."""
        return set_name(name, self.difficulty if is_noise(name) else 1)


def download_hint(spec: PerturbationSpec) -> str:
    source = RELEASES.get(spec.name, "the released files")
    return (
        f"Download {source} and set its root to the folder holding {LAYOUTS[spec.format]}, or write a regenerated "
        f"set with `python make_perturbed.py format={spec.format} out=DIR` (docs/evaluation.md)."
    )


def perturbation_spec(node: Mapping, prefix: str) -> PerturbationSpec:
    """Check a -P node and freeze it. Raises ConfigError naming the first bad key."""
    check_keys(node, KEYS, prefix, "a -P node (configs/benchmark/perturbation_default.yaml)")
    name, fmt, root = check_identity(node, prefix, FORMATS)
    chosen = node.get("perturbations")
    if chosen is not None and (not is_sequence(chosen) or not chosen or any(p not in ALL_PERTURBATIONS for p in chosen)):
        fail(prefix + "perturbations", chosen, f"must be null (the 10 benchmark perturbations) or a list drawn from {list(ALL_PERTURBATIONS)}")
    check_switches(node, ("extra", "verify_files", "progress"), prefix)
    names = list(BENCHMARK_PERTURBATIONS if chosen is None else chosen)
    if node.get("extra", False):
        names += EXTRA_PERTURBATIONS
    difficulty = node.get("difficulty", 1)
    if not is_int(difficulty) or difficulty not in DIFFICULTIES:
        fail(prefix + "difficulty", difficulty, f"must be one of {list(DIFFICULTIES)} (ImageNet-P/test.py)")
    noisy = [p for p in names if is_noise(p)]
    if difficulty not in NOISE_DIFFICULTIES and noisy:
        fail(prefix + "difficulty", difficulty, f"has no released set for {noisy[0]} (noise sets exist at 1, 2, 3); "
             f"choose perturbations without noise for difficulty {difficulty}")
    return PerturbationSpec(
        name=name,
        format=fmt,
        root=Path(root),
        perturbations=tuple(p for p in ALL_PERTURBATIONS if p in names),
        difficulty=difficulty,
        num_classes=optional_count(node, "num_classes", 2, prefix),
        limit_per_set=optional_count(node, "limit_per_set", 1, prefix),
        batch_size=optional_count(node, "batch_size", 1, prefix),
        num_workers=optional_count(node, "num_workers", 0, prefix),
        verify_files=node.get("verify_files", True),
        progress=node.get("progress", True),
    )


class PerturbationSet(EvalSet):
    """One -P set: items are videos of ``frames`` images, scored as a whole (see the module)."""

    per_image = False

    def __init__(self, name: str, spec: PerturbationSpec, frames: int, count: int) -> None:
        self.perturbation, self.folder = name, spec.folder(name)
        self.noise, self.difficulty = is_noise(name), spec.difficulty
        self.frames = frames
        self.count = min(count, spec.limit_per_set) if spec.limit_per_set else count

    @property
    def key(self) -> str:
        return self.perturbation

    def measure(self, logits: Tensor) -> Tensor:
        return stability_rows(logits, self.frames, self.noise, self.difficulty)

    def figures(self, table: Tensor) -> dict:
        return stability_metrics(table)


def perturbed_sets(spec: PerturbationSpec, classes: list[str], num_images: int, image_size: int) -> list[PerturbationSet]:
    """Every set of ``spec`` (whose root exists), its files checked: ``classes`` and ``num_images``
    are the clean test split's (a set make_perturbed.py wrote for the first N images only holds N
    sequences, as its regenerated.json says), ``image_size`` the model's."""
    from augmix.evaluation.inputs.cifar_p import cifar_p_set
    from augmix.evaluation.inputs.imagenet_p import imagenet_p_set

    if (spec.root / IN_PROGRESS_NAME).is_file():
        raise DataError(
            f"{spec.root} holds a -P set that make_perturbed.py has not finished writing; run the same "
            "make_perturbed.py command again to complete it (finished files are kept)"
        )
    suffix = ".npy" if spec.format == "cifar_p" else ""
    missing = [spec.folder(p) + suffix for p in spec.perturbations if not (spec.root / (spec.folder(p) + suffix)).exists()]
    if missing:
        raise DataError(f"{spec.root} is missing {len(missing)} -P set(s): {', '.join(missing)}. {download_hint(spec)}")
    table = select_table(image_size, image_size)
    written = (read_marker(spec.root) or {}).get("images")
    count = written if is_int(written) and 0 < written < num_images else num_images
    if spec.format == "cifar_p":
        return [cifar_p_set(spec, p, frame_count(p, table), count, image_size) for p in spec.perturbations]
    return [imagenet_p_set(spec, p, frame_count(p, table), classes, image_size) for p in spec.perturbations]
