"""The -C benchmarks' corruption names and severities, defined once, and the one check of a choice of them.

Every place that takes corruption names or severities from a user (``val_corruptions``, the
``benchmark`` node, ``CorruptedSource``, ``corrupt``/``corrupt_batch`` and the -C writers) calls
the checks below, so a bad choice reads the same everywhere: ``<key>=<value> is invalid: ...``.
This module imports no image library, so configs are checked with it before anything heavy loads.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from augmix.corruptions.tables import CIFAR10_C_BAR, IMAGENET_C_BAR
from augmix.rules import fail, is_sequence

# fmt: off
BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog",
    "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
# fmt: on
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
#: The 4 extra corruptions are never part of the -C test sets, so tuning on them does not peek at the
#: benchmark (the benchmark authors' intent). ``configs/val_corruptions/held_out.yaml`` reads this list.
HELD_OUT_CORRUPTIONS: tuple[str, ...] = EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: The corruption families a -C layout can hold: (the test corruptions, the extra ones). ``c`` is the
#: -C benchmarks' (all synthesisable here); the -C-bar families are read from their released files only.
CORRUPTION_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "c": (BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS),
    "cifar10_c_bar": (tuple(CIFAR10_C_BAR), ()),
    "imagenet_c_bar": (tuple(IMAGENET_C_BAR), ()),
}
SEVERITY_PARAMETERS: dict[str, dict[str, tuple[float, ...]]] = {"cifar10_c_bar": CIFAR10_C_BAR, "imagenet_c_bar": IMAGENET_C_BAR}

#: What ``${corruptions:GROUP}`` in a config resolves to (see ``corruption_group``).
GROUPS: dict[str, tuple[str, ...]] = {
    "benchmark": BENCHMARK_CORRUPTIONS,
    "extra": EXTRA_CORRUPTIONS,
    "held_out": HELD_OUT_CORRUPTIONS,
    "all": ALL_CORRUPTIONS,
}


def corruption_group(group: str) -> list[str]:
    """The ``corruptions`` config resolver: ``${corruptions:held_out}`` is ``list(HELD_OUT_CORRUPTIONS)``,
    so a config names a group instead of retyping it."""
    if group not in GROUPS:
        fail("${corruptions:GROUP}", group, f"GROUP must be one of {list(GROUPS)}")
    return list(GROUPS[group])


def _known(name: Any) -> bool:
    return isinstance(name, str) and name in ALL_CORRUPTIONS


def _severity(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value in SEVERITIES


def check_corruption(key: str, name: Any) -> str:
    """One corruption name (``corrupt(image, name, ...)``)."""
    if not _known(name):
        fail(key, name, f"unknown corruption; choose from {list(ALL_CORRUPTIONS)}")
    return name


def check_corruptions(key: str, names: Any, known: tuple[str, ...] = ALL_CORRUPTIONS) -> tuple[str, ...]:
    """A non-empty list of corruption names drawn from ``known``, returned in the given order."""
    if not is_sequence(names) or len(names) == 0:
        fail(key, names, f"must be a non-empty list drawn from {list(known)}")
    unknown = [name for name in names if not isinstance(name, str) or name not in known]
    if unknown:
        fail(key, names, f"unknown name(s) {unknown}; choose from {list(known)}")
    return tuple(names)


def select_corruptions(chosen: Any, extra: Any = False, prefix: str = "", family: str = "c") -> tuple[str, ...]:
    """The corruptions of a -C set from its ``corruptions`` and ``extra`` keys: ``chosen`` (null: the
    family's test corruptions, the 15 of -C), plus the extra ones (-C's 4) when ``extra`` is true, in
    canonical order, no duplicates."""
    tests, extras = CORRUPTION_SETS[family]
    if chosen is not None and (not is_sequence(chosen) or len(chosen) == 0):
        fail(prefix + "corruptions", chosen, f"must be null (the {len(tests)} benchmark corruptions) or a non-empty list")
    names = tests if chosen is None else check_corruptions(prefix + "corruptions", chosen, tests + extras)
    if not isinstance(extra, bool):
        fail(prefix + "extra", extra, "must be true or false")
    if extra and not extras:
        fail(prefix + "extra", extra, f"must be false: {family} has no extra corruptions")
    if extra:
        names += extras
    return tuple(name for name in tests + extras if name in names)


def check_severity(key: str, severity: Any) -> int:
    """One severity: an integer level of the benchmark."""
    if not _severity(severity):
        fail(key, severity, f"must be an integer in {list(SEVERITIES)}")
    return int(severity)


def check_severities(key: str, severities: Any) -> tuple[int, ...]:
    """A non-empty list of severities, returned in the given order."""
    if not is_sequence(severities) or len(severities) == 0 or not all(_severity(s) for s in severities):
        fail(key, severities, f"must be a non-empty list drawn from {list(SEVERITIES)}")
    return tuple(int(s) for s in severities)
