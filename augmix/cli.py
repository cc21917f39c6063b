"""Entry-point helpers: user-facing errors become one clear line instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from augmix.errors import AugMixError

T = TypeVar("T")
EXIT_USER_ERROR = 2


def report_errors(task: Callable[..., T]) -> Callable[..., T]:
    """Print ``Error: <message>`` for AugMixError and exit with status 2; re-raise anything else."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        try:
            return task(*args, **kwargs)
        except AugMixError as error:
            print(f"Error: {error}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper
