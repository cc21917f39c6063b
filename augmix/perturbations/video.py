"""MP4 sequences through PyAV (FFmpeg), the container of the released ImageNet-P videos.

The released videos are H.264 at 1 frame per second (``ffmpeg -r 1 -vcodec libx264 -crf 20
-preset veryslow``; noise sets ``-tune grain`` at the default CRF 23), from RGB PNG frames, so
they are lossy: their decoded pixels differ from the generated frames. Sets written here default
to ``lossless``: H.264 in RGB (``libx264rgb``, ``gbrp`` as decoders report it) with
quantiser 0, which decodes to exactly the written uint8 frames (OpenCV's and FFmpeg's decoders
read it too). ``benchmark`` mimics the release instead (``libx264``, 4:4:4, CRF 20 / 23 with
``tune=grain`` for noise): decode(encode(x)) then differs from x by a few intensity levels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

import av
import numpy as np

CODECS = ("lossless", "benchmark")
FRAME_RATE = 1  # the release's -r 1


def _stream_settings(codec: str, noise: bool) -> tuple[str, str, dict[str, str]]:
    if codec == "lossless":
        return "libx264rgb", "rgb24", {"qp": "0", "preset": "medium"}
    if codec == "benchmark":
        options = {"preset": "veryslow", "crf": "23" if noise else "20"}
        if noise:
            options["tune"] = "grain"
        return "libx264", "yuv444p", options
    raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")


def encode_mp4(frames: np.ndarray, handle: IO[bytes] | str | Path, codec: str = "lossless",
               noise: bool = False) -> None:
    """Write uint8 RGB frames (F, H, W, 3) as an MP4 to an open binary file (or a path)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected uint8 frames shaped (F, H, W, 3), got {frames.dtype} {frames.shape}")
    name, pix_fmt, options = _stream_settings(codec, noise)
    with av.open(handle, mode="w", format="mp4") as container:
        stream = container.add_stream(name, rate=FRAME_RATE)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = pix_fmt
        stream.options = options
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode an MP4 lazily, frame by frame, as uint8 RGB (H, W, 3). Raises ``av.FFmpegError``
    (or OSError) for a file that is not a decodable video."""
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise av.error.InvalidDataError(0, "the file holds no video stream")
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def probe(path: str | Path) -> tuple[int, int, int]:
    """(frames, height, width) from the container's header, without decoding; frames is 0 when
    the container does not record it. Raises like ``iter_frames``."""
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise av.error.InvalidDataError(0, "the file holds no video stream")
        stream = container.streams.video[0]
        return int(stream.frames or 0), int(stream.codec_context.height), int(stream.codec_context.width)
