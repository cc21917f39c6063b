"""ImageNet-C / Tiny-ImageNet-C on disk: ``DIR/<corruption>/<severity>/<wnid>/*.JPEG``.

Class indices follow the sorted class folders, as ImageFolder does, and must be exactly the clean
split's classes. Before any compute every needed folder is checked (all missing ones are listed)
and every image file's signature is read, so an empty or foreign file is named up front; a file
that is damaged further inside is named when it is decoded.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def imagenet_c_sets(spec: BenchmarkSpec, clean_classes: list[str], transform: Transform) -> list[SourceSet]:
    """The (corruption, severity) sets of ``spec`` after checking folders, classes and files."""
    root = spec.root
    if root is None or not root.is_dir():
        raise DataError(f"benchmark root {root} does not exist. {download_hint(spec)}")
    wanted = [(name, s) for name in spec.corruptions for s in spec.severities]
    missing = [f"{name}/{s}" for name, s in wanted if not (root / name / str(s)).is_dir()]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise DataError(f"{root} is missing {len(missing)} severity folder(s): {shown}. {download_hint(spec)}")

    sets = []
    for name, severity in wanted:
        folder = root / name / str(severity)
        classes = _class_folders(folder)
        if classes != list(clean_classes):
            absent = sorted(set(clean_classes) - set(classes))[:5]
            extra = sorted(set(classes) - set(clean_classes))[:5]
            raise DataError(
                f"{folder} has {len(classes)} class folders but the clean test split has {len(clean_classes)} "
                f"classes (missing e.g. {absent}, unexpected e.g. {extra}); the benchmark must use the clean "
                "split's class folders (ImageNet: the val wnids)"
            )
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
    return sets
