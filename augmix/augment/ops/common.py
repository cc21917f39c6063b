"""Small tensor helpers shared by the kernels.

None of them copies data from the host to the images' device (parameters arrive on that device,
constants are passed as Python scalars), so the kernels never wait on an accelerator.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

#: Planes at least this large are handed to OpenCV on CPU, where its SIMD kernels beat PyTorch's
#: (per-call overhead makes smaller planes cheaper in PyTorch): measured in docs/performance.md.
OPENCV_PLANE_VALUES = 48 * 48


def opencv() -> ModuleType:
    """OpenCV, imported on first use: only CPU batches with large planes go through it
    (``opencv_planes``), and ``from augmix import AugMix`` should not pay for loading it."""
    import cv2

    return cv2


def opencv_planes(images: Tensor) -> bool:
    """Whether plane-wise work on ``images`` (N, C, H, W) goes through OpenCV: CPU, large planes
    (below 2**24 values, where OpenCV's float32 histogram counts stay exact)."""
    plane = images.shape[-2] * images.shape[-1]
    return images.device.type == "cpu" and OPENCV_PLANE_VALUES <= plane < 2**24


def plane_arrays(images: Tensor) -> np.ndarray:
    """(N * C, H, W) NumPy view of CPU images (a contiguous copy first if they are not), for
    OpenCV's plane-wise kernels; writing into it writes ``images`` when they are contiguous."""
    return images.contiguous().numpy().reshape(-1, *images.shape[-2:])


def transpose_planes(images: Tensor) -> Tensor:
    """``images.transpose(-2, -1)``, contiguous. PyTorch copies a transposed uint8 tensor value by
    value; OpenCV's blocked transpose is several times faster on CPU."""
    if not (images.dtype == torch.uint8 and opencv_planes(images)):
        return images.transpose(-2, -1).contiguous()
    out = images.new_empty((*images.shape[:-2], images.shape[-1], images.shape[-2]))
    cv2 = opencv()
    for plane, result in zip(plane_arrays(images), plane_arrays(out)):
        cv2.transpose(plane, result)
    return out

Fill = int | float | Sequence[float]


def per_image(values: Tensor) -> Tensor:
    """Reshape a per-image parameter (N,) so it broadcasts against (N, C, H, W)."""
    return values.reshape(-1, 1, 1, 1)


def to_uint8(values: Tensor) -> Tensor:
    """Truncate float values already in [0, 255] to uint8.

    Going through int16 gives the same bytes as ``.to(torch.uint8)`` and is several times faster
    on CPU, where the direct float-to-uint8 conversion is not vectorised.
    """
    return values.to(torch.int16).to(torch.uint8)


def fill_values(fill: Fill, channels: int) -> tuple[int, ...]:
    """One integer fill value per channel: the images are uint8, so the fill is rounded."""
    values = [fill] if isinstance(fill, (int, float)) else list(fill)
    if len(values) not in (1, channels):
        raise ValueError(f"fill has {len(values)} values but the images have {channels} channels")
    rounded = tuple(min(max(round(float(v)), 0), 255) for v in values)
    return rounded * channels if len(rounded) == 1 else rounded


def padded(images: Tensor, dim: int, before: int, after: int, fill: Fill) -> Tensor:
    """``images`` with ``before``/``after`` fill values added along ``dim`` (a new uint8 tensor)."""
    shape = list(images.shape)
    size = shape[dim]
    shape[dim] = before + size + after
    values = fill_values(fill, images.shape[1])
    if len(set(values)) == 1:
        out = images.new_full(shape, values[0])
    else:
        out = images.new_empty(shape)
        for channel, value in enumerate(values):
            out[:, channel].fill_(value)
    out.narrow(dim, before, size).copy_(images)
    return out


def row_windows(rows: Tensor, starts: Tensor, length: int) -> Tensor:
    """``length`` consecutive values from each row of ``rows`` (R, L), starting at its own offset.

    The rows are read as overlapping windows of the flat storage, so one ``index_select`` over
    R row starts copies whole windows: no per-value index is built. ``starts`` (R,) must lie in
    [0, L - length].
    """
    flat = rows.reshape(-1)
    windows = flat.as_strided((flat.numel() - length + 1, length), (1, 1))
    first = torch.arange(rows.shape[0], device=rows.device, dtype=torch.int64).mul_(rows.shape[1])
    return windows.index_select(0, first.add_(starts))
