"""ImageNet-C / Tiny-ImageNet-C / ImageNet-C-bar on disk: ``DIR/<corruption>/<severity>/<wnid>/*.JPEG``
(ImageNet-C-bar as make_imagenet_c_bar.py writes it names a severity folder by its parameter, "2.35").

Class indices follow the sorted class folders, as ImageFolder does, and must be exactly the clean
split's classes. Before any compute every needed folder is checked (all missing ones are listed)
and every image file's start and end are read, so an empty, foreign or truncated file is named up
front; a file damaged further inside is named when it is decoded. Every image is checked to have
the sets' size as it is decoded (under ``protocol=benchmark``, the model's, since those images are
not resized: the first image of each set is checked before any compute).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from augmix.corruptions.names import SEVERITY_PARAMETERS
from augmix.data.sources import FolderSource
from augmix.data.verify import file_progress, find_bad_images
from augmix.errors import DataError
from augmix.evaluation.inputs.sets import SourceSet, Transform
from augmix.evaluation.inputs.spec import BenchmarkSpec, download_hint


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def _check_classes(folder: Path, classes: list[str], clean_classes: list[str]) -> None:
    """Folders are numbered in sorted order, so they must be the clean split's classes in its order;
    the same names in another order would silently swap labels, and are named as such."""
    if classes == clean_classes:
        return
    if classes == sorted(clean_classes):
        index = next(i for i, (a, b) in enumerate(zip(classes, clean_classes)) if a != b)
        raise DataError(
            f"{folder} has the clean test split's classes, but in another order: class folders are numbered in "
            f"sorted order (index {index} is {classes[index]!r}) and the clean split has {clean_classes[index]!r} "
            "there. The ImageNet-C layout fits only datasets whose classes are sorted; write this dataset's -C set "
            "with make_corrupted.py format=cifar_c"
        )
    absent = sorted(set(clean_classes) - set(classes))[:5]
    extra = sorted(set(classes) - set(clean_classes))[:5]
    raise DataError(
        f"{folder} has {len(classes)} class folders but the clean test split has {len(clean_classes)} "
        f"classes (missing e.g. {absent}, unexpected e.g. {extra}); the benchmark must use the clean "
        "split's class folders (ImageNet: the val wnids)"
    )


def _set_size(folders: list[FolderSource], spec: BenchmarkSpec, image_size: int) -> tuple[tuple[int, int], str]:
    """(height, width) every image of the sets must have, and why. ``protocol=benchmark`` feeds the
    images as they are (ImageNet-C's are 224x224 already), so they must have the model's size: the
    first image of every set is checked up front. Under ``augmix_official`` the eval transform resizes,
    and the sets' first image sets the size. Every other image is checked as it is decoded."""
    if spec.protocol == "benchmark":
        for source in folders:
            width, height = _header_size(source.samples[0][0])
            if (width, height) != (image_size, image_size):
                raise DataError(
                    f"{source.samples[0][0]} is {width}x{height} but the model takes {image_size}x{image_size} "
                    "(data.image_size), and benchmark.protocol=benchmark does not resize; set "
                    "benchmark.protocol=augmix_official to give the images the data config's eval transform, or use "
                    "the data config of this benchmark"
                )
        return (image_size, image_size), "data.image_size, since benchmark.protocol=benchmark does not resize"
    first = folders[0].samples[0][0]
    width, height = _header_size(first)
    return (height, width), f"the size of {first}"


def _header_size(path: str) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size  # from the header: nothing decoded
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read image {path} ({error}); replace it from the released archive") from None


def verify_image_files(root: Path, paths: list[str], progress: bool, what: str = "-C",
                       switch: str = "benchmark.verify_files") -> None:
    """Every image file's signature and end, before any compute (threads: pure reads, often over NFS)."""
    with file_progress(len(paths), progress, f"checking {what} files") as advance:
        bad = find_bad_images(paths, workers=16, processes=False, advance=advance)
    if bad:
        shown = "; ".join(f"{path} {problem}" for path, problem in bad[:10])
        raise DataError(
            f"{len(bad)} unreadable image file(s) in {root}, e.g. {shown}. Replace them from the released archive "
            f"(or set {switch}=false to skip this check)."
        )


def severity_folder(spec: BenchmarkSpec, name: str, severity: int) -> Path:
    """``DIR/<name>/<severity>``; for a -C-bar set without it, the folder named by the severity's
    parameter as make_imagenet_c_bar.py writes it (``"{:.2f}"``), when that one exists."""
    folder = spec.root / name / str(severity)
    if folder.is_dir() or spec.corruption_set not in SEVERITY_PARAMETERS:
        return folder
    written = spec.root / name / f"{SEVERITY_PARAMETERS[spec.corruption_set][name][severity - 1]:.2f}"
    return written if written.is_dir() else folder


def imagenet_c_sets(
    spec: BenchmarkSpec, clean_classes: list[str], transform: Transform, image_size: int
) -> list[SourceSet]:
    """The (corruption, severity) sets of ``spec`` (whose root exists) after checking folders,
    classes, files and image sizes."""
    root = spec.root
    wanted = [(name, s) for name in spec.corruptions for s in spec.severities]
    missing = [f"{name}/{s}" for name, s in wanted if not severity_folder(spec, name, s).is_dir()]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise DataError(f"{root} is missing {len(missing)} severity folder(s): {shown}. {download_hint(spec)}")

    folders = []
    for name, severity in wanted:
        folder = severity_folder(spec, name, severity)
        _check_classes(folder, _class_folders(folder), list(clean_classes))
        folders.append(FolderSource(folder, class_names=clean_classes))
    counts = [min(len(source), spec.limit_per_set) if spec.limit_per_set else len(source) for source in folders]
    if spec.verify_files:
        paths = [path for source, count in zip(folders, counts) for path, _ in source.samples[:count]]
        verify_image_files(root, paths, spec.progress)
    size, reason = _set_size(folders, spec, image_size)
    return [
        SourceSet(source, transform, spec.limit_per_set, name, severity, size, reason)
        for source, (name, severity) in zip(folders, wanted)
    ]
