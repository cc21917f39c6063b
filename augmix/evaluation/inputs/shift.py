"""Distribution-shift sets: clean accuracy on other distributions. The node of one such set,
checked and frozen into a ``ShiftSpec``, and its sets, checked before any compute.

| format | release | on disk | labels |
|---|---|---|---|
| ``imagenet_r`` | ImageNet-R (Hendrycks et al., 2021) | ``DIR/<wnid>/*`` | its 200 classes; logits restricted to them |
| ``imagenet_a`` | ImageNet-A (Hendrycks et al., 2021) | ``DIR/<wnid>/*`` | its own 200 classes; logits restricted |
| ``imagenet_sketch`` | ImageNet-Sketch (Wang et al., 2019) | ``DIR/<wnid>/*`` | the 1000 classes |
| ``imagenet_v2`` | ImageNet-V2 (Recht et al., 2019) | ``DIR/<0..999>/*`` | the folder's number, read as a number |
| ``cifar10_1`` | CIFAR-10.1 v6 (Recht et al., 2018) | ``cifar10.1_v6_data.npy``, ``cifar10.1_v6_labels.npy`` | as stored |
| ``cifar10_2`` | CIFAR-10.2 (Lu et al., 2020) | ``cifar102_test.npz`` (``images``, ``labels``) | as stored |

A wnid becomes a model output through the clean split's own class order (the sorted wnid folders of
ImageNet's val/, as ImageFolder numbers them): the clean split must hold the 1000 ImageNet classes.
Images go through the data config's eval transform, as the clean ones (the authors' scripts: Resize
256 + CenterCrop 224 on ImageNet). Each set's error is reported with its gap to an in-distribution
reference: for ImageNet-R and -A, the clean val images of their 200 classes scored over the same 200
outputs ("ImageNet-200", as imagenet-r's eval.py computes it); for the others, the clean test set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from augmix.data.sources import ImageSource
from augmix.evaluation.inputs.sets import SourceSet, Transform
from augmix.evaluation.inputs.spec import IMAGENET_CLASSES, check_identity, check_keys, check_switches, optional_count

FORMATS: dict[str, int] = {  # format: the classes a model must predict
    "imagenet_r": IMAGENET_CLASSES,
    "imagenet_a": IMAGENET_CLASSES,
    "imagenet_sketch": IMAGENET_CLASSES,
    "imagenet_v2": IMAGENET_CLASSES,
    "cifar10_1": 10,
    "cifar10_2": 10,
}
RELEASES = {
    "imagenet_r": "ImageNet-R (imagenet-r.tar, linked from github.com/hendrycks/imagenet-r)",
    "imagenet_a": "ImageNet-A (imagenet-a.tar, linked from github.com/hendrycks/natural-adv-examples)",
    "imagenet_sketch": "ImageNet-Sketch (github.com/HaohanWang/ImageNet-Sketch; its sketch/ folder)",
    "imagenet_v2": "ImageNet-V2 (github.com/modestyachts/ImageNetV2; e.g. imagenetv2-matched-frequency-format-val)",
    "cifar10_1": "CIFAR-10.1 v6 (github.com/modestyachts/CIFAR-10.1, datasets/)",
    "cifar10_2": "CIFAR-10.2 (github.com/modestyachts/cifar-10.2)",
}
LAYOUTS = {
    "imagenet_r": "one folder per wnid",
    "imagenet_a": "one folder per wnid",
    "imagenet_sketch": "one folder per wnid",
    "imagenet_v2": "folders 0..999",
    "cifar10_1": "cifar10.1_v6_data.npy and cifar10.1_v6_labels.npy",
    "cifar10_2": "cifar102_test.npz",
}
#: Every key a distribution-shift node may have (configs/benchmark/shift_default.yaml).
KEYS = ("name", "format", "root", "limit_per_set", "top5", "batch_size", "num_workers", "verify_files", "progress")
IMAGES, REFERENCE = "images", "reference"  # the keys of a member's sets


@dataclass(frozen=True)
class ShiftSpec:
    """Which distribution-shift set and where it lives."""

    name: str
    format: str
    root: Path
    limit_per_set: int | None = None
    top5: bool = False
    batch_size: int | None = None
    num_workers: int | None = None
    verify_files: bool = True  # image folders: read every file's signature before computing
    progress: bool = True

    @property
    def num_classes(self) -> int:
        return FORMATS[self.format]

    @property
    def complete(self) -> bool:
        return self.limit_per_set is None


def download_hint(spec: ShiftSpec) -> str:
    return f"Download {RELEASES[spec.format]} and set its root to the folder holding {LAYOUTS[spec.format]}."


def shift_spec(node: Mapping, prefix: str) -> ShiftSpec:
    """Check a distribution-shift node and freeze it. Raises ConfigError naming the first bad key."""
    check_keys(node, KEYS, prefix, "a distribution-shift node (configs/benchmark/shift_default.yaml)")
    name, fmt, root = check_identity(node, prefix, FORMATS)
    check_switches(node, ("top5", "verify_files", "progress"), prefix)
    return ShiftSpec(
        name=name,
        format=fmt,
        root=Path(root),
        limit_per_set=optional_count(node, "limit_per_set", 1, prefix),
        top5=node.get("top5", False),
        batch_size=optional_count(node, "batch_size", 1, prefix),
        num_workers=optional_count(node, "num_workers", 0, prefix),
        verify_files=node.get("verify_files", True),
        progress=node.get("progress", True),
    )


class ShiftSet(SourceSet):
    """The images of a distribution-shift set (key ``images``) or its in-distribution reference
    (``reference``), scored over ``class_indices`` of the model's outputs where given."""

    def __init__(self, key: str, source: ImageSource, transform: Transform, limit: int | None,
                 class_indices: Tensor | None = None) -> None:
        super().__init__(source, transform, limit)
        self.name, self.class_indices = key, class_indices

    @property
    def key(self) -> str:
        return self.name


def shift_sets(spec: ShiftSpec, clean: ImageSource, eval_transform: Transform) -> list[ShiftSet]:
    """The set of ``spec`` (whose root exists) and, for ImageNet-R/A, its ImageNet-200 reference,
    after checking the files."""
    from augmix.evaluation.inputs.cifar_shift import cifar_shift_source
    from augmix.evaluation.inputs.imagenet_shift import imagenet_shift_sets

    if spec.format.startswith("cifar"):
        return [ShiftSet(IMAGES, cifar_shift_source(spec), eval_transform, spec.limit_per_set)]
    return imagenet_shift_sets(spec, clean, eval_transform)
