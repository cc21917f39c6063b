"""CIFAR-10-P / CIFAR-100-P on disk: ``DIR/<set>.npy`` uint8 (N, frames, H, W, 3), sequence ``i``
made from clean test image ``i``. Each array's header is checked before any compute (rank 5, frames
along axis 1, as many sequences as the clean split has images, the perturbation's frame count, the
model's image size: ``augmix.perturbations.readers.open_cifar_p``); frames are read later through a
memory map, one batch of whole sequences at a time, in the loader workers."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from augmix.evaluation.inputs.perturbed import PerturbationSet, PerturbationSpec
from augmix.evaluation.inputs.sets import MappedArray
from augmix.perturbations.readers import open_cifar_p


class CifarPSet(MappedArray, PerturbationSet):
    """One ``<set>.npy``; item ``i`` is sequence ``i``, loaded as its frames (frames, 3, H, W)."""

    def __init__(self, spec: PerturbationSpec, name: str, frames: int, count: int) -> None:
        super().__init__(name, spec, frames, count)
        self.path = spec.root / f"{self.folder}.npy"

    def load(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        rows = self.array[start:stop]  # (n, frames, H, W, 3), nothing read yet
        n, frames, height, width, channels = rows.shape
        images = torch.empty((n * frames, channels, height, width), dtype=torch.uint8)
        np.copyto(images.numpy().reshape(n, frames, channels, height, width), rows.transpose(0, 1, 4, 2, 3))
        return images, torch.zeros(n, dtype=torch.long)  # labels play no part in stability


def cifar_p_set(spec: PerturbationSpec, name: str, frames: int, num_images: int, image_size: int) -> CifarPSet:
    """The set of perturbation ``name`` after checking its array's header."""
    open_cifar_p(spec.root / f"{spec.folder(name)}.npy", count=num_images, frames=frames, image_size=image_size)
    return CifarPSet(spec, name, frames, num_images)
