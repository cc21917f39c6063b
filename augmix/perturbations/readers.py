"""Strict readers of the released -P formats: every problem is one DataError line, naming the file
and what was expected, raised before any frame reaches a model.

* CIFAR-10-P / CIFAR-100-P: ``DIR/<set>.npy``, uint8 (N, frames, H, W, 3), sequences in the order
  of the clean test split, opened as a memory map (``CifarPSequences``).
* ImageNet-P / Tiny-ImageNet-P: ``DIR/<set>/<wnid>/<name>.mp4``; videos are listed and their
  headers checked up front, frames decoded lazily per video (``VideoSequences``).

``<set>`` is the perturbation name, or ``<name>_2`` / ``<name>_3`` for the harder noise sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from augmix.errors import DataError
from augmix.perturbations import video

VIDEO_EXTENSION = ".mp4"
MIN_FRAMES = 2  # a stability metric needs a pair of frames


def _shape_problem(shape: tuple[int, ...], count: int | None, frames: int | None,
                   image_size: int | None) -> str | None:
    """What is wrong with a -P array's shape, or None."""
    expected = f"(N{'=' + str(count) if count is not None else ''}, frames{'=' + str(frames) if frames else ''}, H, W, 3)"
    if len(shape) == 4 and shape[-1] == 3:
        return f"holds single images {shape}, not sequences; expected {expected} with frames along axis 1"
    if len(shape) != 5:
        return f"has rank {len(shape)} {shape}; expected rank 5, {expected}"
    if shape[-1] != 3:
        return f"has {shape[-1]} channels {shape}; expected RGB, {expected}"
    n, f = shape[:2]
    swapped = (count is not None and n != count and f == count) or (frames is not None and f != frames and n == frames)
    if swapped:
        return f"holds {shape}: frames are along axis 0; expected {expected} with frames along axis 1"
    if count is not None and n != count:
        return f"holds {n} sequences {shape}, but the clean test split has {count} images; expected {expected}"
    if frames is not None and f != frames:
        return f"holds {f} frames per sequence {shape}; expected {frames} for this perturbation, {expected}"
    if f < MIN_FRAMES:
        return f"holds {f} frame(s) per sequence {shape}; a stability metric needs at least {MIN_FRAMES}"
    if image_size is not None and shape[2:4] != (image_size, image_size):
        return f"holds {shape[2]}x{shape[3]} frames {shape}; expected {image_size}x{image_size} like the clean test images"
    return None


def open_cifar_p(path: str | Path, count: int | None = None, frames: int | None = None,
                 image_size: int | None = None) -> np.ndarray:
    """Memory-map a CIFAR-P array after checking it: uint8, (count, frames, image_size, image_size, 3).
    Any check given as None is skipped (the frames axis is still required to be axis 1)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing; expected a -P array (N, frames, H, W, 3) in the CIFAR-10-P format")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npy array ({error}); re-download or regenerate it") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path} is not a single .npy array; expected uint8 (N, frames, H, W, 3)")
    if array.dtype != np.uint8:
        raise DataError(f"{path} holds {array.dtype} values; expected uint8 (N, frames, H, W, 3) like CIFAR-10-P")
    problem = _shape_problem(tuple(array.shape), count, frames, image_size)
    if problem:
        raise DataError(f"{path} {problem}")
    return array


class CifarPSequences:
    """One CIFAR-P set: ``seq[i]`` is sequence ``i`` as uint8 (frames, H, W, 3), read from the
    memory map on access (so the set never sits in memory whole)."""

    def __init__(self, path: str | Path, count: int | None = None, frames: int | None = None,
                 image_size: int | None = None) -> None:
        self.path = Path(path)
        self.array = open_cifar_p(self.path, count, frames, image_size)

    def __len__(self) -> int:
        return len(self.array)

    @property
    def frames(self) -> int:
        return int(self.array.shape[1])

    def __getitem__(self, index: int) -> np.ndarray:
        return np.array(self.array[index])

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Sequences ``start:stop`` as one uint8 (n, frames, H, W, 3) array."""
        return np.array(self.array[start:stop])


def list_videos(folder: str | Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """(path, class index) of every ``<wnid>/<name>.mp4`` under ``folder``, in the order of
    torchvision's DatasetFolder (classes sorted, files sorted), as ImageNet-P/test.py reads them.
    Class folders must be among ``classes`` (the clean split's); classes may be missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is missing; expected the -P video layout {folder}/<class>/<name>.mp4")
    index = {name: i for i, name in enumerate(classes)}
    videos: list[tuple[Path, int]] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            raise DataError(f"{entry.path} is a file; expected only class folders in {folder} (<class>/<name>.mp4)")
        if entry.name not in index:
            raise DataError(f"{entry.path} is not one of the {len(classes)} classes of the clean test split; "
                            "check that the -P set belongs to this dataset")
        for item in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if item.is_file() and item.name.lower().endswith(VIDEO_EXTENSION):
                videos.append((Path(item.path), index[entry.name]))
    if not videos:
        raise DataError(f"{folder} holds no .mp4 videos; expected {folder}/<class>/<name>.mp4")
    return videos


def _check_header(path: Path, frames: int | None, image_size: int | None) -> None:
    try:
        count, height, width = video.probe(path)
    except (av.FFmpegError, OSError) as error:
        raise DataError(f"{path} does not decode as an mp4 video ({_reason(error)}); re-download or regenerate it") from None
    if image_size is not None and (height, width) != (image_size, image_size):
        raise DataError(f"{path} has {height}x{width} frames; expected {image_size}x{image_size} like the clean test images")
    if frames is not None and count and count != frames:
        raise DataError(f"{path} has {count} frames; expected {frames} for this perturbation")


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


def read_video(path: str | Path, frames: int | None = None, image_size: int | None = None) -> np.ndarray:
    """Decode a whole -P video as uint8 (frames, H, W, 3), checking that it decodes, its frame
    count (when given, else at least 2) and its frame size (when given)."""
    path = Path(path)
    try:
        decoded = list(video.iter_frames(path))
    except (av.FFmpegError, OSError) as error:
        raise DataError(f"{path} does not decode as an mp4 video ({_reason(error)}); re-download or regenerate it") from None
    if frames is not None and len(decoded) != frames:
        raise DataError(f"{path} decodes to {len(decoded)} frames; expected {frames} for this perturbation")
    if len(decoded) < MIN_FRAMES:
        raise DataError(f"{path} decodes to {len(decoded)} frame(s); a stability metric needs at least {MIN_FRAMES}")
    sizes = {frame.shape for frame in decoded}
    if len(sizes) != 1:
        raise DataError(f"{path} has frames of different sizes {sorted(sizes)}; expected one size")
    height, width = decoded[0].shape[:2]
    if image_size is not None and (height, width) != (image_size, image_size):
        raise DataError(f"{path} has {height}x{width} frames; expected {image_size}x{image_size} like the clean test images")
    return np.stack(decoded)


class VideoSequences:
    """One ImageNet-P set folder: ``seq[i]`` is (uint8 (frames, H, W, 3), class index), decoded on
    access. Construction lists the videos and, with ``check_headers``, opens every file's header
    (about 0.4 ms each), so a file that is not an mp4, or has the wrong size or frame count in
    its header, stops the run before any frame reaches a model."""

    def __init__(self, folder: str | Path, classes: Sequence[str], frames: int | None = None,
                 image_size: int | None = None, check_headers: bool = True) -> None:
        self.folder = Path(folder)
        self.frames, self.image_size = frames, image_size
        self.videos = list_videos(self.folder, classes)
        if check_headers:
            for path, _ in self.videos:
                _check_header(path, frames, image_size)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.videos[index]
        return read_video(path, self.frames, self.image_size), label
