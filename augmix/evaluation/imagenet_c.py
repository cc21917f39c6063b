"""ImageNet-C / Tiny-ImageNet-C on disk: ``DIR/<corruption>/<severity>/<wnid>/*.JPEG``.

Class indices follow the sorted class folders, as ImageFolder does, and must be exactly the clean
split's classes. Before any compute every needed folder is checked (all missing ones are listed)
and every image file's signature is read, so an empty or foreign file is named up front; a file
that is damaged further inside is named when it is decoded. Under ``protocol=benchmark`` one
image per set is checked to have the model's size, since those images are not resized.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from augmix.data.sources import FolderSource
from augmix.errors import DataError
from augmix.evaluation.sets import SourceSet, Transform
from augmix.evaluation.settings import BenchmarkSpec, download_hint

SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")  # JPEG, PNG, BMP (WebP: RIFF....WEBP)


def _looks_like_image(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return head.startswith(SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def unreadable_files(paths: list[str], threads: int = 16) -> list[str]:
    """Paths that cannot be opened or do not start like a JPEG/PNG/BMP/WebP file."""
    with ThreadPoolExecutor(threads) as pool:
        return [path for path, ok in zip(paths, pool.map(_looks_like_image, paths, chunksize=256)) if not ok]


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


def _check_image_size(sets: list[SourceSet], image_size: int) -> None:
    """``protocol=benchmark`` feeds the images as they are (ImageNet-C's are 224x224 already), so a set
    of another size would be cropped or padded to the model's without a word: refuse it up front."""
    for evalset in sets:
        path = evalset.source.samples[0][0]
        try:
            with Image.open(path) as image:
                width, height = image.size  # from the header: nothing decoded
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read image {path} ({error}); replace it from the released archive") from None
        if (width, height) != (image_size, image_size):
            raise DataError(
                f"{path} is {width}x{height} but the model takes {image_size}x{image_size} (data.image_size), and "
                "benchmark.protocol=benchmark does not resize; set benchmark.protocol=augmix_official to give the "
                "images the data config's eval transform, or use the data config of this benchmark"
            )


def imagenet_c_sets(
    spec: BenchmarkSpec, clean_classes: list[str], transform: Transform, image_size: int
) -> list[SourceSet]:
    """The (corruption, severity) sets of ``spec`` (whose root exists) after checking folders,
    classes, files and, under ``protocol=benchmark``, image sizes."""
    root = spec.root
    wanted = [(name, s) for name in spec.corruptions for s in spec.severities]
    missing = [f"{name}/{s}" for name, s in wanted if not (root / name / str(s)).is_dir()]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise DataError(f"{root} is missing {len(missing)} severity folder(s): {shown}. {download_hint(spec)}")

    sets = []
    for name, severity in wanted:
        folder = root / name / str(severity)
        _check_classes(folder, _class_folders(folder), list(clean_classes))
        sets.append(
            SourceSet(FolderSource(folder, class_names=clean_classes), transform, spec.limit_per_set, name, severity)
        )

    if spec.verify_files:
        paths = [path for s in sets for path, _ in s.source.samples[: len(s)]]
        bad = unreadable_files(paths)
        if bad:
            raise DataError(
                f"{len(bad)} unreadable image file(s) in {root}, e.g. {', '.join(bad[:10])}. "
                "Replace them from the released archive (or set benchmark.verify_files=false to skip this check)."
            )
    if spec.protocol == "benchmark":
        _check_image_size(sets, image_size)
    return sets
