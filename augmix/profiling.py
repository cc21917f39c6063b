"""The peak tensor memory of a piece of code on any device, without the profiler (tests and perf/)."""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


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
