"""Image sources in their real on-disk formats, yielding uint8 (C, H, W) tensors and class indices.

Decoding happens here, once per sample; crops, flips and AugMix happen later on whole batches.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, read_file

from augmix.data.cifar_pickle import cifar_entry
from augmix.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
QUICKSTART_HINT = "To try the framework offline, run `python train.py experiment=quickstart` (digits, bundled)."


class ImageSource:
    """A list of labelled images; subclasses decide where pixels come from."""

    classes: list[str]

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, index: int) -> Tensor:
        raise NotImplementedError

    def target(self, index: int) -> int:
        raise NotImplementedError

    def location(self, index: int) -> str:
        """Where image ``index`` comes from, for messages: its file, where it has one."""
        return f"image {index} of {type(self).__name__}"

    def files(self) -> list[str] | None:
        """The image file of every index, or None for images that are not files (checked elsewhere)."""
        return None

    def path(self, index: int) -> str | None:
        """The file image ``index`` is decoded from; None for images held in memory."""
        return None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


class TensorSource(ImageSource):
    """Images already decoded in memory, e.g. CIFAR and digits."""

    def __init__(self, images: Tensor, targets: Tensor, classes: Sequence[str]) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(f"expected uint8 images shaped (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(targets):
            raise DataError(f"{len(images)} images but {len(targets)} labels")
        self.images = images
        self.targets = targets.long()
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> Tensor:
        return self.images[index]

    def target(self, index: int) -> int:
        return int(self.targets[index])



class SubsetSource(ImageSource):
    """A fixed selection of another source's samples (e.g. a held-out validation split)."""

    def __init__(self, source: ImageSource, indices: Sequence[int]) -> None:
        self.source, self.indices, self.classes = source, [int(i) for i in indices], source.classes

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, index: int) -> Tensor:
        return self.source.image(self.indices[index])

    def target(self, index: int) -> int:
        return self.source.target(self.indices[index])

    def location(self, index: int) -> str:
        return self.source.location(self.indices[index])

    def path(self, index: int) -> str | None:
        return self.source.path(self.indices[index])

    def files(self) -> list[str] | None:
        files = self.source.files()
        return None if files is None else [files[i] for i in self.indices]


def split_off(source: ImageSource, fraction: float) -> tuple[SubsetSource, SubsetSource]:
    """Split ``source`` into (rest, held_out) with a fixed permutation, independent of the run seed,
    so every run of a sweep validates on the same images."""
    order = np.random.default_rng(0).permutation(len(source))
    held = max(1, int(round(fraction * len(source))))
    return SubsetSource(source, sorted(order[held:])), SubsetSource(source, sorted(order[:held]))


class FolderSource(ImageSource):
    """ImageFolder layout: ``split_dir/<class>/**/<image>``, classes in sorted order.

    Tiny-ImageNet's raw validation layout (``images/`` plus ``val_annotations.txt``) is read too,
    with class names taken from ``class_names`` (the training classes).
    """

    def __init__(self, split_dir: str | Path, class_names: Sequence[str] | None = None) -> None:
        split_dir = Path(split_dir)
        if not split_dir.is_dir():
            raise DataError(f"image folder {split_dir} does not exist; expected the layout {split_dir}/<class>/<image>")
        annotations = split_dir / "val_annotations.txt"
        if annotations.is_file():
            self.samples, self.classes = _annotated_samples(split_dir, annotations, class_names)
        else:
            self.samples, self.classes = _folder_samples(split_dir)
            if class_names is not None and list(class_names) != self.classes:
                raise DataError(f"{split_dir} has classes that differ from the training split's; check the folder layout")

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, index: int) -> Tensor:
        path = self.samples[index][0]
        try:
            return decode_file(path)
        except (RuntimeError, ValueError, OSError) as error:
            reason = decoder_reason(error)
            raise DataError(f"cannot decode image {path}: {reason}. Remove or replace the file.") from None

    def target(self, index: int) -> int:
        return self.samples[index][1]

    def location(self, index: int) -> str:
        return self.samples[index][0]

    def path(self, index: int) -> str:
        return self.samples[index][0]

    def files(self) -> list[str]:
        return [path for path, _ in self.samples]


def decode_file(path: str) -> Tensor:
    """An image file as a uint8 RGB (3, H, W) tensor: torchvision's decoders, Pillow for BMP (which
    they do not read)."""
    with open(path, "rb") as handle:
        is_bmp = handle.read(2) == b"BM"
    if is_bmp:
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    return decode_image(read_file(path), mode=ImageReadMode.RGB)


def decoder_reason(error: Exception) -> str:
    """The decoder's own words, without the C++ source location torchvision puts in front."""
    return re.sub(r"^\w+, \S+:\d+, ", "", str(error).strip())


def _folder_samples(split_dir: Path) -> tuple[list[tuple[str, int]], list[str]]:
    classes = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
    if not classes:
        raise DataError(f"{split_dir} has no class folders; expected {split_dir}/<class>/<image>")
    walk = _ImageWalk()
    tops = [os.path.join(split_dir, name) for name in classes]
    for top in tops:  # a link back to a class folder never makes it a subfolder of another class
        walk.claim(top)
    samples: list[tuple[str, int]] = []
    empty = []
    for index, (name, top) in enumerate(zip(classes, tops)):
        found = sorted(walk.images(top))
        if not found:
            empty.append(name)
        samples.extend((path, index) for path in found)
    if empty:
        raise DataError(f"class folder(s) with no images in {split_dir}: {empty[:10]}{' ...' if len(empty) > 10 else ''}")
    if walk.duplicates:
        first, again = walk.duplicates[0]
        warnings.warn(
            f"{split_dir}: {len(walk.duplicates)} image file(s) are reached more than once through symbolic links "
            f"(e.g. {again} is {first}); each path counts as a sample",
            stacklevel=3,
        )
    return samples, classes


class _ImageWalk:
    """``os.walk(followlinks=True)`` over one split that enters every real folder once, so a link
    back into a folder already walked (a loop, or a second route) adds nothing; links to folders
    elsewhere are still followed, since datasets are often assembled from links. Image files
    reached by more than one path are recorded in ``duplicates`` as (first path, later path)."""

    def __init__(self) -> None:
        self.walked: set[tuple[int, int]] = set()
        self.files: dict[tuple[int, int], str] = {}
        self.duplicates: list[tuple[str, str]] = []

    def claim(self, folder: str) -> bool:
        """Mark ``folder`` walked; False when it was already (or cannot be read)."""
        try:
            info = os.stat(folder)
        except OSError:
            return False
        key = (info.st_dev, info.st_ino)
        if key in self.walked:
            return False
        self.walked.add(key)
        return True

    def images(self, top: str) -> list[str]:
        """Image paths under ``top`` (already claimed), unsorted."""
        found, pending = [], [top]
        while pending:
            folder = pending.pop()
            try:
                device, entries = os.stat(folder).st_dev, list(os.scandir(folder))
            except OSError:
                continue  # unreadable folders are skipped, as os.walk does
            for entry in entries:
                if entry.is_dir():
                    if self.claim(entry.path):
                        pending.append(entry.path)
                elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(entry.path)
                    self._note(entry, device)
        return found

    def _note(self, entry: os.DirEntry, device: int) -> None:
        if entry.is_symlink():
            try:
                info = os.stat(entry.path)
            except OSError:
                return  # a dangling link: the file check names it
            key = (info.st_dev, info.st_ino)
        else:
            key = (device, entry.inode())  # from the directory listing: no extra system call
        first = self.files.setdefault(key, entry.path)
        if first != entry.path:
            self.duplicates.append((first, entry.path))


def _annotated_samples(
    split_dir: Path, annotations: Path, class_names: Sequence[str] | None
) -> tuple[list[tuple[str, int]], list[str]]:
    rows = [line.split("\t") for line in annotations.read_text().splitlines() if line.strip()]
    classes = list(class_names) if class_names is not None else sorted({row[1] for row in rows})
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({row[1] for row in rows} - index.keys())
    if unknown:
        raise DataError(f"{annotations} names classes missing from the training split: {unknown[:10]}")
    samples = [(str(split_dir / "images" / row[0]), index[row[1]]) for row in rows]
    missing = [path for path, _ in samples if not os.path.isfile(path)]
    if missing:
        raise DataError(f"{len(missing)} image(s) listed in {annotations} are missing, e.g. {missing[0]}")
    return samples, classes


# --------------------------------------------------------------------------------------------- CIFAR

_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": ("batches.meta", "label_names"),
        "labels": "labels",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": ("meta", "fine_label_names"),
        "labels": "fine_labels",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
    },
}


def cifar_files_missing(root: str | Path, variant: str) -> list[str]:
    spec = _CIFAR[variant]
    folder = Path(root) / spec["folder"]
    names = [*spec["train"], *spec["test"], spec["meta"][0]]
    return [name for name in names if not (folder / name).is_file()]


def download_cifar(root: str | Path, variant: str, timeout: float = 30.0) -> None:
    """Fetch and extract the official archive; network problems become a clear DataError."""
    from torchvision.datasets.utils import download_and_extract_archive

    spec = _CIFAR[variant]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        download_and_extract_archive(spec["url"], download_root=str(root), md5=spec["md5"])
    except Exception as error:  # urllib, ssl, socket and checksum errors all mean the same here
        raise DataError(cifar_missing_message(root, variant, f"downloading it failed ({error})")) from None
    finally:
        socket.setdefaulttimeout(previous)


def cifar_missing_message(root: str | Path, variant: str, reason: str) -> str:
    spec = _CIFAR[variant]
    folder = Path(root).resolve() / spec["folder"]
    return (
        f"{variant.upper()} is not in {folder} and {reason}. "
        f"Download {spec['url']} and extract it into {Path(root).resolve()} (giving {folder}/...), "
        f"or set data.root to the folder that holds {spec['folder']}/. {QUICKSTART_HINT}"
    )


def load_cifar(root: str | Path, variant: str, split: str) -> TensorSource:
    """Read CIFAR-10/100 from the python pickle batches torchvision and the authors distribute."""
    spec = _CIFAR[variant]
    missing = cifar_files_missing(root, variant)
    if missing:
        raise DataError(cifar_missing_message(root, variant, f"these files are missing: {missing}"))
    folder = Path(root) / spec["folder"]
    meta_path = folder / spec["meta"][0]
    names = cifar_entry(meta_path, (spec["meta"][1],))[spec["meta"][1]]
    if not isinstance(names, list) or not all(isinstance(c, (str, bytes)) for c in names):
        raise DataError(f"{meta_path} holds {spec['meta'][1]} that are not a list of names; re-download the dataset")
    classes = [c.decode("latin-1") if isinstance(c, bytes) else c for c in names]
    images, targets = [], []
    for name in spec[split]:
        path = folder / name
        entry = cifar_entry(path, ("data", spec["labels"]))
        data, labels = np.asarray(entry["data"]), np.asarray(entry[spec["labels"]])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{path} holds data {data.dtype} {data.shape}; expected (N, 3072) uint8 rows")
        integers = len(labels) == 0 or np.issubdtype(labels.dtype, np.integer)
        if labels.ndim != 1 or len(labels) != len(data) or not integers:
            raise DataError(
                f"{path} holds {spec['labels']} {labels.dtype} {labels.shape} for {len(data)} images; "
                "expected one integer label per image"
            )
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        targets.append(torch.from_numpy(labels.astype(np.int64)))
    images_t, targets_t = torch.cat(images), torch.cat(targets)
    if targets_t.numel() and (targets_t.min() < 0 or targets_t.max() >= len(classes)):
        raise DataError(f"{folder} has labels outside 0..{len(classes) - 1}")
    return TensorSource(images_t, targets_t, classes)


# -------------------------------------------------------------------------------------------- digits

DIGITS_SPLITS = {"train": 1197, "val": 300, "test": 300}


def load_digits(split: str, image_size: int = 32) -> TensorSource:
    """scikit-learn's bundled 8x8 digits, upsampled to RGB ``image_size`` with a fixed split.

    The permutation is fixed (seed 0), so train/val/test never overlap and never change.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = torch.from_numpy(bunch.images).float().mul_(255.0 / 16.0).unsqueeze(1)
    pixels = torch.nn.functional.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = pixels.round_().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    start = 0
    for name, count in DIGITS_SPLITS.items():
        if name == split:
            chosen = order[start : start + count]
            return TensorSource(images[chosen], torch.from_numpy(bunch.target)[chosen], [str(d) for d in range(10)])
        start += count
    raise DataError(f"digits has splits {list(DIGITS_SPLITS)}, not {split!r}")
