"""Atomic file writes: a crash mid-write never leaves a truncated result behind.

A write goes to ``.<name>.<pid>@<host>.<random>.tmp`` beside its destination and is renamed over it
when complete. A process killed mid-write (``kill -9``, a node failure) leaves that temp file;
``remove_stale_temporaries`` deletes such leftovers at start-up, never one a live process is writing.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from augmix.errors import AugMixError

log = logging.getLogger(__name__)

STORAGE_FULL = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (over the file size limit, see ulimit -f)",
}
# .<name>.<pid>@<host>.<random>.tmp, or .<name>.<random>.tmp as written before the pid was recorded
TEMP_NAME = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)@(?P<host>[^/]+)\.)?[a-z0-9_]{8}\.tmp$")
STALE_AFTER_S = 3600.0  # a temp file of another host (or of no recorded writer) untouched this long is stale


class StorageFullError(AugMixError):
    """A write ran out of space (or past the file size limit); the previous file is intact."""


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``write(handle)`` into a temp file beside ``path``, fsync, then rename.

    The temp file lives in the destination folder so the final ``os.replace`` never crosses
    filesystems and is atomic. A full disk or the file size limit becomes a StorageFullError that
    names the file (torch.save reports it only as "unexpected pos").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}@{socket.gethostname()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from collaborators
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as error:
        Path(temp).unlink(missing_ok=True)
        reason = _storage_full(error)
        if reason is None:
            raise
        kept = f"the previous {path.name} is intact" if path.exists() else f"no earlier {path.name} existed"
        raise StorageFullError(
            f"could not write {path}: {reason}; {kept}. Free some space (or raise the limit) and run the same command again"
        ) from None


def _storage_full(error: BaseException) -> str | None:
    """The reason when ``error`` (or what caused it) is a full disk, quota or file size limit."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in STORAGE_FULL:
            return STORAGE_FULL[error.errno]
        error = error.__cause__ or error.__context__
    return None


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temp files that interrupted ``atomic_write`` calls left in ``folder``.

    Only names of our own pattern, and only when no live process can be writing them: the writer
    recorded in the name is a process of this host that has ended, or (another host's writer, or
    none recorded) the file has not changed for an hour. Call it at start-up, from one process.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    host = socket.gethostname()
    for path in folder.iterdir():
        match = TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or path.is_symlink():
            continue
        if match["pid"] and match["host"] == host:
            stale = not _alive(int(match["pid"]))
        else:
            stale = time.time() - path.stat().st_mtime > STALE_AFTER_S
        if stale:
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            removed.append(path)
            log.info(f"removed {path} ({size / 1e6:.1f} MB), left by an interrupted write")
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON file holding one object (``what``, for messages), parsed strictly: bare NaN and Infinity
    are not JSON. Any failure (unreadable, unparsable, not an object) is a ValueError whose message
    is one line saying why."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=refuse)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    if not isinstance(value, dict):
        raise ValueError(f"it holds a {type(value).__name__}, not {what}")
    return value


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
