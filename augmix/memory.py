"""Memory: batch-sized CPU buffers that are cheap to touch first, and the peak tensor memory of a
piece of code on any device, without the profiler.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import sys
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


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


class PeakMemory(TorchDispatchMode):
    """``with PeakMemory() as memory: ...`` then ``memory.peak`` (bytes), counting tensors created
    inside the block only (the inputs that existed before are not included).

    The CPU allocator keeps no statistics, and the profiler's memory events are slow to collect.
    This watches every operator's outputs instead: a storage counts from its first appearance
    until it is freed. Buffers an operator allocates and frees internally are not seen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if _counts(t)}
        for tensor in tree_leaves(out):
            # outputs aliasing an input (views, in-place and out= results) allocated nothing
            if _counts(tensor) and tensor.untyped_storage().data_ptr() not in inputs:
                self._track(tensor.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in self._live:
            return
        self._live.add(key)
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key, size)

    def _free(self, key: int, size: int) -> None:
        self._live.discard(key)
        self.current -= size


def _counts(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type != "meta"
