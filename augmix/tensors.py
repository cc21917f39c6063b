"""Tensor helpers shared by AugMix, the data pipeline, mixing and erasing: batch-sized buffers that
are cheap to touch first, cache-sized blocks of images, and host-to-device copies that never wait."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import sys

import torch
from torch import Tensor

HUGE_PAGE_BYTES = 2**21
_MADV_HUGEPAGE = 14


def empty_batch(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 tensor for a batch-sized result.

    A large CPU buffer is fresh memory from the kernel, and touching it first costs a page fault
    per 4 KiB: about 1.3 ns per float32 on the machine of docs/performance.md, as much as the
    AugMix mix itself. On Linux it is advised to use transparent huge pages before anything
    touches it (what NumPy does for its own arrays), which cut that to about 0.4 ns. Elsewhere,
    or where the kernel declines, it is a plain ``torch.empty``.
    """
    out = torch.empty(shape, dtype=torch.float32, device=device)
    if device.type == "cpu" and math.prod(shape) * 4 >= 2 * HUGE_PAGE_BYTES:
        _advise_huge_pages(out.data_ptr(), out.data_ptr() + out.nbytes)
    return out


def _advise_huge_pages(start: int, end: int) -> None:
    madvise = _madvise()
    first, last = -(-start // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES, end // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES
    if madvise is not None and last > first:
        madvise(first, last - first, _MADV_HUGEPAGE)  # advice only: a refusal changes nothing


@functools.cache
def _madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise

# On CPU, ops and the mix run on a few images at a time, so their float temporaries stay in the
# core's caches: 2**19 values is about 3 images at 224 px and 170 at 32 px (measured best at both).
CPU_BLOCK_VALUES = 2**19

def images_per_block(images: Tensor) -> int:
    """How many images one kernel call takes: a cache-sized block on CPU, everything elsewhere."""
    if images.device.type != "cpu":
        return max(1, images.shape[0])
    return max(1, CPU_BLOCK_VALUES // images[0].numel())


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """A small host tensor on ``device`` without the host waiting for the device's queue: pinned and
    non-blocking on CUDA (a pageable copy would synchronise), as ``upload`` does for the plans."""
    if device.type != "cuda" or tensor.device == device:
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
