"""CIFAR-10-P / Tiny-ImageNet-P / ImageNet-P (Hendrycks & Dietterich, 2019): the benchmark's
perturbation sequences reimplemented on numpy/scipy/scikit-image/OpenCV/Pillow with the creation
scripts' constants, writers and strict readers for the released formats, and the stability
metrics (flip probability, top-5 distance) as the benchmark's evaluation code defines them.

The sequences pull in OpenCV, SciPy, scikit-image and PyAV, so every name below loads from its
module on first use, as in ``augmix.corruptions``."""

from importlib import import_module
from typing import Any

_HOMES = {
    "StabilityMeter": "metrics",
    "flip_probability": "metrics",
    "mean_over_perturbations": "metrics",
    "normalised_mean": "metrics",
    "ranking_distance": "metrics",
    "video_flip_rate": "metrics",
    "video_rank_distance": "metrics",
    "CifarPSequences": "readers",
    "VideoSequences": "readers",
    "list_videos": "readers",
    "open_cifar_p": "readers",
    "read_video": "readers",
    "ALL_PERTURBATIONS": "registry",
    "BENCHMARK_PERTURBATIONS": "registry",
    "EXTRA_PERTURBATIONS": "registry",
    "NOISE_PERTURBATIONS": "registry",
    "frame_count": "registry",
    "is_noise": "registry",
    "perturb_batch": "registry",
    "perturb_sequence": "registry",
    "sequence_rng": "registry",
    "set_name": "registry",
    "set_names": "registry",
    "DIFFICULTIES": "tables",
    "write_cifar_p": "writer",
    "write_imagenet_p": "writer",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"augmix.perturbations.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'augmix.perturbations' has no attribute {name!r}")
