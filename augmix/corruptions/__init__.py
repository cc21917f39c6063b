"""CIFAR-10-C / Tiny-ImageNet-C / ImageNet-C corruptions (Hendrycks & Dietterich, 2019),
reimplemented on current numpy/scipy/scikit-image/OpenCV/Pillow with the benchmark's
own severity constants, plus writers for user-made "-C" sets in the on-disk formats."""

from augmix.corruptions.registry import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    SEVERITIES,
    corrupt,
    corrupt_batch,
    image_rng,
)
from augmix.corruptions.tables import TABLE_SIZES, select_table
from augmix.corruptions.writer import MARKER_NAME, write_cifar_c, write_imagenet_c

__all__ = [
    "ALL_CORRUPTIONS",
    "BENCHMARK_CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "MARKER_NAME",
    "SEVERITIES",
    "TABLE_SIZES",
    "corrupt",
    "corrupt_batch",
    "image_rng",
    "select_table",
    "write_cifar_c",
    "write_imagenet_c",
]
