"""ImageNet-P / Tiny-ImageNet-P on disk: ``DIR/<set>/<wnid>/<name>.mp4``, read as
ImageNet-P/test.py reads them (classes sorted, videos sorted within a class). Class folders must be
classes of the clean test split; with ``verify_files`` every video's header is probed before any
compute (about 0.4 ms a file), so a file that is not an mp4, or one with the wrong frame size or count
in its header, stops the run with its name. Videos are decoded (PyAV) in the loader workers; one
that fails to decode further inside is named when its batch is loaded."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from augmix.evaluation.inputs.perturbed import PerturbationSet, PerturbationSpec
from augmix.perturbations.readers import VideoSequences


class VideoSet(PerturbationSet):
    """One ``<set>/`` folder of videos; item ``i`` is video ``i``, decoded as (frames, 3, H, W)."""

    def __init__(self, spec: PerturbationSpec, name: str, videos: VideoSequences) -> None:
        super().__init__(name, spec, videos.frames, len(videos))
        self.videos = videos

    def load(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        clips = [self.videos[i] for i in range(start, stop)]  # DataError names an undecodable file
        frames = torch.from_numpy(np.stack([pixels for pixels, _ in clips]))  # (n, frames, H, W, 3)
        n, count, height, width, channels = frames.shape
        images = frames.permute(0, 1, 4, 2, 3).reshape(n * count, channels, height, width).contiguous()
        return images, torch.tensor([label for _, label in clips], dtype=torch.long)


def imagenet_p_set(spec: PerturbationSpec, name: str, frames: int, classes: list[str], image_size: int) -> VideoSet:
    """The set of perturbation ``name`` after listing its videos and (``verify_files``) probing them."""
    videos = VideoSequences(spec.root / spec.folder(name), classes, frames, image_size, check_headers=spec.verify_files)
    return VideoSet(spec, name, videos)
