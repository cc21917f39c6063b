"""CIFAR-10-C / Tiny-ImageNet-C / ImageNet-C corruptions (Hendrycks & Dietterich, 2019),
reimplemented on current numpy/scipy/scikit-image/OpenCV/Pillow with the benchmark's
own severity constants, plus writers for user-made "-C" sets in the on-disk formats.

* ``names``: the corruption names and severities (defined once) and the checks of a choice of them;
* ``registry``: ``corrupt`` / ``corrupt_batch`` over the functions of ``noise``, ``blur``, ``weather``
  and ``digital``, with the severity ``tables``;
* ``writer``: the CIFAR-C (.npy) and ImageNet-C (JPEG folder) writers;
* ``make``: ``write_corrupted``, a data config's test split written as a -C set (``make_corrupted.py``).

The names load at once (config checks need them); the corruption functions pull in OpenCV, SciPy and
scikit-image, so they load on first use of a name below.
"""

from importlib import import_module
from typing import Any

from augmix.corruptions.names import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    HELD_OUT_CORRUPTIONS,
    SEVERITIES,
    check_corruptions,
    check_severities,
)

_HOMES = {
    "corrupt": "registry",
    "corrupt_batch": "registry",
    "image_rng": "registry",
    "TABLE_SIZES": "tables",
    "select_table": "tables",
    "write_cifar_c": "writer",
    "write_imagenet_c": "writer",
}

__all__ = [
    "ALL_CORRUPTIONS",
    "BENCHMARK_CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "HELD_OUT_CORRUPTIONS",
    "SEVERITIES",
    "check_corruptions",
    "check_severities",
    *_HOMES,
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"augmix.corruptions.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'augmix.corruptions' has no attribute {name!r}")
