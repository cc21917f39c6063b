"""CIFAR-10-P / Tiny-ImageNet-P / ImageNet-P (Hendrycks & Dietterich, 2019): the benchmark's
perturbation sequences reimplemented on numpy/scipy/scikit-image/OpenCV/Pillow with the creation
scripts' constants, writers and strict readers for the released formats, and the stability
metrics (flip probability, top-5 distance) as the benchmark's evaluation code defines them."""

from augmix.perturbations.metrics import (
    StabilityMeter,
    flip_probability,
    mean_over_perturbations,
    normalised_mean,
    ranking_distance,
    video_flip_rate,
    video_rank_distance,
)
from augmix.perturbations.readers import CifarPSequences, VideoSequences, list_videos, open_cifar_p, read_video
from augmix.perturbations.registry import (
    ALL_PERTURBATIONS,
    BENCHMARK_PERTURBATIONS,
    EXTRA_PERTURBATIONS,
    NOISE_PERTURBATIONS,
    frame_count,
    is_noise,
    perturb_batch,
    perturb_sequence,
    sequence_rng,
    set_name,
    set_names,
)
from augmix.perturbations.tables import DIFFICULTIES
from augmix.perturbations.writer import write_cifar_p, write_imagenet_p

__all__ = [
    "ALL_PERTURBATIONS",
    "BENCHMARK_PERTURBATIONS",
    "DIFFICULTIES",
    "EXTRA_PERTURBATIONS",
    "NOISE_PERTURBATIONS",
    "CifarPSequences",
    "StabilityMeter",
    "VideoSequences",
    "flip_probability",
    "frame_count",
    "is_noise",
    "list_videos",
    "mean_over_perturbations",
    "normalised_mean",
    "open_cifar_p",
    "perturb_batch",
    "perturb_sequence",
    "ranking_distance",
    "read_video",
    "sequence_rng",
    "set_name",
    "set_names",
    "video_flip_rate",
    "video_rank_distance",
    "write_cifar_p",
    "write_imagenet_p",
]
