"""Cheap checks of image files before any compute: is each file an image, whole, and big enough?

Each file costs one open and two small reads (its first bytes and its last kilobyte), plus, where
sizes matter, a parse of its header by Pillow; no pixel is decoded. That names empty, foreign and
truncated files (a JPEG without its end-of-image marker, a PNG without its IEND chunk) up front,
instead of when their batch comes up hours later. A file whose end looks wrong but that the decoder
still reads (e.g. a camera trailer after the JPEG end marker) is decoded once to be sure, so the
check never refuses what training would have read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from augmix.data.sources import decode_file, decoder_reason

TAIL = 1024  # bytes read from the end of each file
CHUNK = 512  # files per task handed to a pool
IN_PROCESS = 2048  # fewer files than this are checked without a pool


def _kind(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def _complete(kind: str, head: bytes, tail: bytes, size: int) -> bool:
    """Whether the file ends where its format says it ends (the decoders refuse a file that does not)."""
    if kind == "JPEG":
        return b"\xff\xd9" in tail
    if kind == "PNG":
        return b"IEND" in tail
    declared = int.from_bytes(head[4:8] if kind == "WebP" else head[2:6], "little") + (8 if kind == "WebP" else 0)
    return size >= declared


def _decode_failure(path: str) -> str | None:
    """What the loaders' decoder says about ``path``, or None when it reads it."""
    try:
        decode_file(path)
    except (RuntimeError, ValueError, OSError) as error:
        return decoder_reason(error)
    return None


def image_problem(path: str, min_size: int = 0) -> str | None:
    """Why ``path`` cannot be used as an image, or None. With ``min_size`` > 0 the header is parsed
    too and either side shorter than ``min_size`` pixels is a problem."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(32)
            handle.seek(max(size - TAIL, 0))
            tail = handle.read()
            problem = _content_problem(path, head, tail, size)
            if problem is None and min_size > 0:
                problem = _size_problem(handle, _kind(head), min_size)
            return problem
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"


def _content_problem(path: str, head: bytes, tail: bytes, size: int) -> str | None:
    if size == 0:
        return "is empty"
    kind = _kind(head)
    if kind is None:
        return f"is not a JPEG, PNG, BMP or WebP file (it starts with {head[:12]!r})"
    if not _complete(kind, head, tail, size):
        failure = _decode_failure(path)
        if failure is not None:
            return f"is truncated or damaged (a {kind} file that does not decode: {failure})"
    return None


def _size_problem(handle: BinaryIO, kind: str, min_size: int) -> str | None:
    handle.seek(0)
    try:
        with Image.open(handle, formats=[kind.upper()]) as image:
            width, height = image.size  # from the header: nothing decoded
    except Exception as error:  # noqa: BLE001  (Pillow's parsers raise many types; all mean a damaged header)
        return f"has a damaged {kind} header ({error})"
    if width < min_size or height < min_size:
        return f"is {width}x{height}, smaller than the {min_size}x{min_size} the training crop needs"
    return None


def _check_chunk(paths: Sequence[str], min_size: int) -> list[str | None]:
    return [image_problem(path, min_size) for path in paths]


def find_bad_images(
    paths: Sequence[str],
    min_size: int = 0,
    workers: int = 1,
    processes: bool = True,
    advance: Callable[[int], None] | None = None,
) -> list[tuple[str, str]]:
    """(path, problem) for every bad file of ``paths``, in order. ``workers`` processes (threads with
    ``processes=False``, for pure reads on a slow file system) share the work in chunks; ``advance``
    is called with each chunk's file count, for a progress bar."""
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    if workers <= 1 or len(paths) < IN_PROCESS:
        results = (_check_chunk(chunk, min_size) for chunk in chunks)
        return _collect(chunks, results, advance)
    pool: Executor = ProcessPoolExecutor(workers) if processes else ThreadPoolExecutor(workers)
    with pool:
        results = pool.map(_check_chunk, chunks, [min_size] * len(chunks))
        return _collect(chunks, results, advance)


def _collect(chunks, results, advance) -> list[tuple[str, str]]:
    bad = []
    for chunk, problems in zip(chunks, results):
        bad.extend((path, problem) for path, problem in zip(chunk, problems) if problem is not None)
        if advance is not None:
            advance(len(chunk))
    return bad


@contextmanager
def file_progress(total: int, enabled: bool, description: str) -> Iterator[Callable[[int], None]]:
    """A progress bar over ``total`` files (none when disabled or for a few files); yields ``advance``."""
    if not enabled or total < IN_PROCESS:
        yield lambda count: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count: progress.advance(task, count)
