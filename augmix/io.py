"""Atomic file writes: a crash mid-write never leaves a truncated result behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``write(handle)`` into a temp file beside ``path``, fsync, then rename.

    The temp file lives in the destination folder so the final ``os.replace`` never crosses
    filesystems and is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from collaborators
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def finite_or_none(value: Any) -> Any:
    """A float that JSON can hold: NaN and infinities (an undefined figure) become None (null)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def strict_json(data: Any, **options: Any) -> str:
    """``json.dumps`` that refuses NaN and infinity (bare ``NaN`` is not JSON), naming the key.

    Writers decide where a figure is undefined and pass None there (``finite_or_none``); a
    non-finite float reaching this point is a bug, never silently written."""
    try:
        return json.dumps(data, allow_nan=False, **options)
    except ValueError:
        raise ValueError(f"refusing to write non-finite float(s) as JSON at {_non_finite_keys(data)}") from None


def _non_finite_keys(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, float):
        return [] if math.isfinite(node) else [prefix or "<top level>"]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
    return [key for name, value in items for key in _non_finite_keys(value, f"{prefix}.{name}" if prefix else str(name))]


def write_json(path: str | Path, data: Any) -> None:
    """Strict JSON (see ``strict_json``), written atomically."""
    text = strict_json(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO whose saves are atomic renames in the checkpoint's own folder.

    Lightning's default goes through an fsspec transaction whose temp file sits in /tmp, so the
    final move can become a copy across filesystems and be cut short.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        import torch

        atomic_write(path, lambda handle: torch.save(checkpoint, handle))
