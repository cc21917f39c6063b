"""Entry-point helpers: the top-level scripts' Hydra setup, and user-facing errors as one clear line
instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import hydra
from omegaconf import DictConfig

from augmix import interrupts
from augmix.errors import AugMixError

T = TypeVar("T")
EXIT_USER_ERROR = 2
ABORTED = "Aborted by Ctrl-C without saving; every file written so far is complete (files are written atomically)."


def report_errors(task: Callable[..., T]) -> Callable[..., T]:
    """Print ``Error: <message>`` for AugMixError and exit with status 2; when Ctrl-C aborted (the
    second press, see ``augmix.interrupts``) print one line instead of a traceback and exit with
    status 130; re-raise anything else."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        try:
            return task(*args, **kwargs)
        except AugMixError as error:
            print(f"Error: {error}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        except (KeyboardInterrupt, SystemExit) as error:
            if isinstance(error, SystemExit) and not interrupts.aborted():
                raise
            print(ABORTED, file=sys.stderr, flush=True)
            sys.exit(interrupts.EXIT_INTERRUPTED)

    return wrapper


def hydra_command(config_name: str) -> Callable[[Callable[[DictConfig], T]], Callable[..., T]]:
    """Decorate a top-level script's ``main``: Hydra composes ``configs/<config_name>.yaml`` beside
    the script (and names the job after it), and ``report_errors`` turns user errors into one line."""

    def decorate(task: Callable[[DictConfig], T]) -> Callable[..., T]:
        return hydra.main(version_base="1.3", config_path="configs", config_name=config_name)(report_errors(task))

    return decorate
