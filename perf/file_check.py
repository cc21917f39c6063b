"""Cost of the image-file checks that run before any compute, per file and extrapolated.

    python perf/file_check.py                      # 2,000 generated 375x500 JPEGs, 1 process
    python perf/file_check.py --files 5000 --workers 4

"ends" is the -C check of evaluate.py (benchmark.verify_files): each file's first bytes and last
kilobyte. "ends + header" is the training check (data.verify_files): the same plus a parse of the
header by Pillow for the image size. Files are read from the page cache after a first pass, so the
figures are the CPU cost; on a cold network file system the reads dominate and more workers help.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from augmix.data.verify import find_bad_images

IMAGENET_TRAIN = 1_281_167
IMAGENET_C = 50_000 * 75  # 15 corruptions x 5 severities of the 50,000 validation images


def write_jpegs(folder: Path, count: int) -> list[str]:
    """Photo-like 375x500 JPEGs (ImageNet's most common size), about 70 kB each at quality 85."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 500)[None, :, None] * np.ones((375, 1, 3))
    paths = []
    for i in range(count):
        path = folder / f"n{i % 20:08d}" / f"{i:06d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(ramp + rng.normal(0, 20, ramp.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=85)
        paths.append(str(path))
    return paths


def seconds_per_file(paths: list[str], min_size: int, workers: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        bad = find_bad_images(paths, min_size=min_size, workers=workers)
        best = min(best, time.perf_counter() - start)
        assert not bad, bad[:3]
    return best / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_jpegs(Path(folder), args.files)
        find_bad_images(paths)  # warm the page cache
        print(f"{args.files} JPEGs, {args.workers} worker(s), best of {args.rounds}")
        print(f"{'check':<16}{'us/file':>10}{'ImageNet train':>18}{'ImageNet-C':>14}")
        for name, min_size in (("ends", 0), ("ends + header", 1)):
            cost = seconds_per_file(paths, min_size, args.workers, args.rounds)
            print(
                f"{name:<16}{cost * 1e6:>10.1f}{cost * IMAGENET_TRAIN / 60:>14.1f} min{cost * IMAGENET_C / 60:>10.1f} min"
            )


if __name__ == "__main__":
    main()
