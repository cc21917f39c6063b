"""What the -C and -P writers share about the files of a set: the labels and class folders of the
ImageNet-style trees, plain file names, and the uint8 ``.npy`` arrays of the CIFAR-style sets,
streamed in chunks and skipped when a resumed run finds them finished."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np


def check_labels(labels: np.ndarray, count: int) -> np.ndarray:
    """``labels`` as an array of ``count`` integers, or a ValueError."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != count or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {count} integers, got shape {labels.shape} dtype {labels.dtype}")
    return labels


def check_class_folders(class_names: Sequence[str], labels: np.ndarray) -> list[str]:
    """The class names, each usable as a folder name and indexed by ``labels``, or a ValueError."""
    classes = [str(c) for c in class_names]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(f"labels must index class_names (0..{len(classes) - 1})")
    for c in classes:
        if not c or "/" in c or "\\" in c or c in (".", ".."):
            raise ValueError(f"class name {c!r} cannot be used as a folder name")
    return classes


def check_plain_file_name(name: str) -> None:
    """A file name from the caller stays inside its class folder and visible, or a ValueError."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"file name {name!r} must be a plain, non-hidden file name")


def in_chunks(images: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, images[start:start + size])`` in order, each chunk read into memory (``images`` may be
    a memory map), so a split is never processed whole."""
    for start in range(0, len(images), size):
        yield start, np.asarray(images[start:start + size])


def stream_uint8_array(handle: IO[bytes], shape: tuple[int, ...], blocks: Iterable[np.ndarray]) -> None:
    """The bytes ``np.save`` writes for a uint8 array of ``shape``, from ``blocks`` that fill it in
    order, so the whole array never sits in memory."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)
    for block in blocks:
        handle.write(block.tobytes())


def finished_array_exists(path: Path, shape: tuple[int, ...]) -> bool:
    """True if ``path`` is a finished uint8 array of ``shape``, so a resumed run skips it; an array
    of another shape means the folder belongs to different inputs."""
    if not path.exists():
        return False
    done = np.load(path, mmap_mode="r")
    if done.shape != shape or done.dtype != np.uint8:
        raise ValueError(f"{path} holds {done.dtype} {done.shape}, expected uint8 {shape}; "
                         "use another directory for different inputs")
    return True
