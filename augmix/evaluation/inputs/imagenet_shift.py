"""ImageNet-R, ImageNet-A, ImageNet-Sketch and ImageNet-V2 on disk: one folder of images per class.

The folders are read like ImageFolder (``FolderSource``: sorted folders, sorted files), then every
folder's images get the label their folder names, checked before any compute:

* ImageNet-R / -A: the wnid's position in the set's own 200-class list
  (``augmix.evaluation.inputs.imagenet_classes``), which is ImageFolder's label when all 200 folders
  are there, and stays right when some are not; the model's 1000 outputs are restricted to those
  200 classes (in the same order) before the argmax. A folder outside the list is refused.
* ImageNet-Sketch: the wnid's class in the clean split.
* ImageNet-V2: the folder's name read as a number: folders ``0``..``999`` sorted as strings put
  ``10`` before ``2``, which would permute the labels. A name that is not a plain integer in range
  is refused.
"""

from __future__ import annotations

import torch
from torch import Tensor

from augmix.data.sources import FolderSource, ImageSource, SubsetSource
from augmix.errors import DataError
from augmix.evaluation.inputs.imagenet_c import verify_image_files
from augmix.evaluation.inputs.imagenet_classes import IMAGENET_A_WNIDS, IMAGENET_R_WNIDS
from augmix.evaluation.inputs.sets import Transform
from augmix.evaluation.inputs.shift import IMAGES, REFERENCE, ShiftSet, ShiftSpec
from augmix.evaluation.inputs.spec import IMAGENET_CLASSES

SUBSETS = {
    "imagenet_r": (IMAGENET_R_WNIDS, "ImageNet-R's 200 classes (imagenet_r_wnids of github.com/hendrycks/imagenet-r eval.py)"),
    "imagenet_a": (IMAGENET_A_WNIDS, "ImageNet-A's 200 classes (github.com/hendrycks/natural-adv-examples eval.py)"),
}


class RelabelledSource(ImageSource):
    """Another source's images with label ``labels[target]``: a class folder's index becomes the class it names."""

    def __init__(self, source: ImageSource, labels: list[int], classes: list[str]) -> None:
        self.source, self.labels, self.classes = source, labels, classes

    def __len__(self) -> int:
        return len(self.source)

    def image(self, index: int) -> Tensor:
        return self.source.image(index)

    def target(self, index: int) -> int:
        return self.labels[self.source.target(index)]

    def location(self, index: int) -> str:
        return self.source.location(index)

    def files(self) -> list[str] | None:
        return self.source.files()


def _v2_label(spec: ShiftSpec, folder: str) -> int:
    if not folder.isdecimal() or str(int(folder)) != folder or int(folder) >= IMAGENET_CLASSES:
        raise DataError(
            f"{spec.root / folder} is not an ImageNet-V2 class folder: ImageNet-V2 names its folders by class index, "
            f"a plain integer in 0..{IMAGENET_CLASSES - 1}; check that {spec.root} holds the ImageNet-V2 release"
        )
    return int(folder)


def _labels(spec: ShiftSpec, folders: list[str], clean_classes: list[str]) -> list[int]:
    """The label of each class folder (see the module)."""
    if spec.format == "imagenet_v2":
        return [_v2_label(spec, folder) for folder in folders]
    if spec.format in SUBSETS:
        wnids, described = SUBSETS[spec.format]
        position = {wnid: i for i, wnid in enumerate(wnids)}
        known = position
    else:
        position = {wnid: i for i, wnid in enumerate(clean_classes)}
        known, described = position, f"the {len(clean_classes)} classes of the clean test split"
    for folder in folders:
        if folder not in known:
            raise DataError(
                f"{spec.root / folder} is not one of {described}; {spec.root} must hold only {spec.name}'s class folders"
            )
    return [position[folder] for folder in folders]


def _check_clean_classes(spec: ShiftSpec, clean_classes: list[str], wanted: tuple[str, ...]) -> None:
    """The wnid -> output mapping goes through the clean split's class order: it must have them all."""
    absent = [wnid for wnid in wanted if wnid not in clean_classes]
    if len(clean_classes) != IMAGENET_CLASSES or absent:
        raise DataError(
            f"{spec.name} needs the clean split to be ImageNet's 1000 classes, to map its wnids to the model's outputs "
            f"(the sorted wnid folders of data.root/val); the clean split has {len(clean_classes)} classes"
            + (f" and lacks e.g. {absent[:3]}" if absent else "")
        )


def imagenet_shift_sets(spec: ShiftSpec, clean: ImageSource, transform: Transform) -> list[ShiftSet]:
    """The set of ``spec`` and, for ImageNet-R/A, the clean val images of its 200 classes scored the same way."""
    clean_classes = list(clean.classes)
    _check_clean_classes(spec, clean_classes, SUBSETS[spec.format][0] if spec.format in SUBSETS else ())
    source = FolderSource(spec.root)  # sorted class folders, each image labelled by its folder's index
    labels = _labels(spec, source.classes, clean_classes)
    classes = list(SUBSETS[spec.format][0]) if spec.format in SUBSETS else clean_classes
    images = RelabelledSource(source, labels, classes)
    count = min(len(images), spec.limit_per_set) if spec.limit_per_set else len(images)
    if spec.verify_files:
        verify_image_files(spec.root, (images.files() or [])[:count], spec.progress, spec.name, f"{spec.name}'s verify_files")
    if spec.format not in SUBSETS:
        return [ShiftSet(IMAGES, images, transform, spec.limit_per_set)]
    wnids = SUBSETS[spec.format][0]
    outputs = torch.tensor([clean_classes.index(wnid) for wnid in wnids])
    subset = {index: i for i, index in enumerate(outputs.tolist())}  # clean class -> position among the 200
    kept = [i for i in range(len(clean)) if clean.target(i) in subset]
    reference = RelabelledSource(SubsetSource(clean, kept), [subset.get(c, -1) for c in range(len(clean_classes))], classes)
    return [
        ShiftSet(IMAGES, images, transform, spec.limit_per_set, outputs),
        ShiftSet(REFERENCE, reference, transform, spec.limit_per_set, outputs),
    ]
