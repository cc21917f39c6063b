"""CIFAR-10.1 and CIFAR-10.2 on disk, read as data (never unpickled) and checked whole before any compute.

* CIFAR-10.1 v6 (github.com/modestyachts/CIFAR-10.1, ``datasets/``): ``cifar10.1_v6_data.npy``, uint8
  (2000, 32, 32, 3), and ``cifar10.1_v6_labels.npy``, 2000 integer labels in CIFAR-10's class order.
* CIFAR-10.2 (github.com/modestyachts/cifar-10.2): ``cifar102_test.npz`` with ``images``, uint8
  (2000, 32, 32, 3), and ``labels`` (int64, 0..9); its other keys (``label_names``, ``ti_indices``,
  ``keywords``) are not read. Earlier versions of that repository held pickled files
  (``cifar102_test.npy`` holding a dict, ``cifar102_test``), which are not loaded: they could run code.

Both sets are small (6 MB of pixels), so they are read into memory once.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from augmix.data.sources import TensorSource
from augmix.errors import DataError
from augmix.evaluation.inputs.shift import ShiftSpec, download_hint

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_1 = ("cifar10.1_v6_data.npy", "cifar10.1_v6_labels.npy")
CIFAR10_2 = "cifar102_test.npz"


def _npy(path: Path, spec: ShiftSpec) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing. {download_hint(spec)}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npy array of numbers ({error}); re-download it") from None


def _npz(path: Path, spec: ShiftSpec) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} is missing. {download_hint(spec)}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path} holds a single array, not an .npz archive; expected CIFAR-10.2's images and labels")
        with archive:
            absent = [key for key in ("images", "labels") if key not in archive.files]
            if absent:
                raise DataError(f"{path} has no {absent[0]!r} array (it has {archive.files}); expected CIFAR-10.2's images and labels")
            return archive["images"], archive["labels"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a readable .npz archive of arrays ({error}); re-download it") from None


def _checked(images: np.ndarray, labels: np.ndarray, where: str) -> TensorSource:
    """uint8 (N, 32, 32, 3) and N integer labels of CIFAR-10's 10 classes, as a source."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DataError(f"{where} holds images {images.dtype} {images.shape}; expected uint8 (N, 32, 32, 3)")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where} holds labels {labels.dtype} {labels.shape}; expected {len(images)} integers, one per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{where} has labels in {labels.min()}..{labels.max()}; expected CIFAR-10's classes 0..9")
    pixels = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return TensorSource(pixels, torch.from_numpy(labels.astype(np.int64)), CIFAR10_CLASSES)


def cifar_shift_source(spec: ShiftSpec) -> TensorSource:
    """The images and labels of a CIFAR-10.1 or CIFAR-10.2 root, checked."""
    if spec.format == "cifar10_1":
        data, labels = (spec.root / name for name in CIFAR10_1)
        return _checked(_npy(data, spec), _npy(labels, spec), f"{data} / {labels.name}")
    path = spec.root / CIFAR10_2
    return _checked(*_npz(path, spec), str(path))
