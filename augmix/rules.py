"""The small predicates and the one error format that every config check shares.

Schemas (augmix/config.py), the benchmark settings, the allowlist for configs read from checkpoints
and the runtime guards of ``AugMix``/``JSDLoss`` all phrase a bad value the same way:
``<key>=<value> is invalid: <what is expected>``.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from augmix.errors import ConfigError

MAX_SHOWN = 120  # characters of a value quoted in an error


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str)) or is_number(value)


def is_sequence(value: Any) -> bool:
    """A list or tuple, including OmegaConf's ListConfig (not a string)."""
    from omegaconf import ListConfig

    return isinstance(value, (list, tuple, ListConfig))


def is_pair(value: Any) -> bool:
    return is_sequence(value) and len(value) == 2 and all(is_number(v) for v in value)


def show(value: Any) -> str:
    """A value as the user wrote it: containers plain, strings quoted, long values cut."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def fail(key: str, value: Any, expected: str) -> NoReturn:
    raise ConfigError(f"{key}={show(value)} is invalid: {expected}")
