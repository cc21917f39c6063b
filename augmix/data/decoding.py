"""Draft-mode JPEG decoding for training crops (``data.decode=draft``): decode at a reduced DCT
scale only where the crop keeps at least the output's resolution.

A RandomResizedCrop of a large image throws most of its pixels away: an ``h x w`` box becomes
``size x size``. libjpeg decodes a JPEG at 1/2, 1/4 or 1/8 of its size for less (inverse DCTs of
4x4, 2x2 or 1x1 coefficient blocks instead of 8x8, and less colour conversion; the scaled decode
is itself a low-pass downscale). Here the crop box is drawn first, from the full image size read
from the file's header and with the very draws a full decode makes, so boxes and every later
draw of the batch are unchanged. The image is then decoded at the largest scale ``1/s``
(``s`` in 8, 4, 2) that keeps the box at least ``size`` pixels on both sides, and the box, divided
by ``s`` (fractional corners), is resampled to the output with Pillow's antialiased bilinear
filter, the filter torchvision's ``antialias=True`` reproduces. Where no scale fits (``s = 1``),
or the file is not a baseline-decodable JPEG, the full decode and its crop run, bit for bit.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image

DRAFT_SCALES = (8, 4, 2)  # the DCT scalings Pillow's draft mode offers (1/8, 1/4, 1/2)
# Start-of-frame markers (baseline, progressive, ...) carry the image size; C4, C8 and CC are not frames.
FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE_MARKERS = frozenset((0x01, *range(0xD0, 0xD8)))  # no length field

Box = tuple[int, int, int, int]  # (top, left, height, width) in full-size pixels


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame segment, walking the segments before it
    (nothing is decoded); None for other formats or a header that cannot be walked."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker in STANDALONE_MARKERS:
            at += 2
        elif marker in FRAME_MARKERS:
            frame = data[at + 5 : at + 9]
            return (int.from_bytes(frame[:2], "big"), int.from_bytes(frame[2:], "big")) if len(frame) == 4 else None
        else:
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def decode_jpeg_bytes(data: bytes) -> Tensor:
    """A full decode, as ``augmix.data.sources.decode_file`` does it for a JPEG file: uint8 RGB (3, H, W)."""
    return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)


def draft_scale(height: int, width: int, size: int) -> int:
    """The largest DCT scale divisor that keeps an ``height x width`` box at least ``size`` on both
    sides; 1 (a full decode) when the box is less than twice ``size``."""
    for scale in DRAFT_SCALES:
        if min(height, width) >= scale * size:
            return scale
    return 1


def draft_resized_crop(data: bytes, box: Box, scale: int, size: int) -> Tensor | None:
    """``box`` of the JPEG ``data`` resampled to ``size x size`` from a decode at ``1/scale``:
    uint8 (3, size, size). None when the decoder would not scale by exactly ``scale`` (a
    progressive or multi-tile file, or an image too small for it): decode it in full instead."""
    top, left, height, width = box
    with Image.open(io.BytesIO(data)) as image:
        full_width, full_height = image.size
        drafted = image.draft("RGB", (full_width // scale, full_height // scale))
        if drafted is None or abs(full_width / drafted[1][2] - scale) > 1e-9:
            return None
        rgb = image.convert("RGB")  # decodes, at 1/scale
        region = (left / scale, top / scale, (left + width) / scale, (top + height) / scale)
        out = rgb.resize((size, size), Image.Resampling.BILINEAR, box=region)
    return torch.from_numpy(np.array(out)).permute(2, 0, 1).contiguous()
