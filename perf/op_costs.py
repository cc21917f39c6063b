"""Cost of every AugMix op, in ns per value (N x C x H x W), one CPU thread.

Each op runs on cache-sized blocks of images (``augmix.tensors.CPU_BLOCK_VALUES``) and on the
whole group at once; the grouped executor uses the form its ``Op.blocked`` names (marked *).
``--pytorch-planes`` turns off the OpenCV plane kernels (histograms, table lookups, transposes),
to show what they buy. Fastest of interleaved rounds, so a busy machine
disturbs it little.

    python perf/op_costs.py                  # 224 px (24 images) and 32 px (768 images)
    python perf/op_costs.py --pytorch-planes
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import torch
from augmix_throughput import sample_images

from augmix.augment.ops import ALL_OPS, OPS, common
from augmix.tensors import images_per_block


def cost(fn, values: int, rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / values * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 32])
    parser.add_argument("--values", type=int, default=2**22, help="values per op and size (about 24 images at 224 px)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pytorch-planes", action="store_true", help="no OpenCV plane kernels")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.pytorch_planes:
        common.OPENCV_PLANE_VALUES = 2**24
    levels_generator = torch.Generator().manual_seed(0)
    print(f"ns per value, fastest of {args.rounds} rounds, one thread; * the executor's form"
          + (", PyTorch plane kernels" if args.pytorch_planes else ""))
    header = " | ".join(f"{size} px blocked | {size} px whole group" for size in args.sizes)
    print(f"| op | {header} |")
    print("|---|" + "---:|" * 2 * len(args.sizes))
    batches = {size: sample_images(max(1, args.values // (3 * size * size)), size) for size in args.sizes}
    for name in ALL_OPS:
        op, cells = OPS[name], []
        used = []  # the form the grouped executor uses, marked with *
        for size, images in batches.items():
            n = len(images)
            levels = torch.rand(n, dtype=torch.float64, generator=levels_generator) * 2.9 + 0.1
            signs = torch.randint(0, 2, (n,), generator=levels_generator).double().mul_(2).sub_(1)
            argument = op.parameter(levels, signs, size, size)
            out = torch.empty_like(images)
            block = images_per_block(images)

            def blocked() -> None:
                for start in range(0, n, block):
                    out[start : start + block] = op.apply(images[start : start + block], argument[start : start + block])

            used += [op.blocked(images), not op.blocked(images)]
            cells += [cost(blocked, images.numel(), args.rounds), cost(lambda: op.apply(images, argument), images.numel(), args.rounds)]
        print(f"| {name} | " + " | ".join(f"{c:.2f}" + ("*" if mark else "") for c, mark in zip(cells, used)) + " |")


if __name__ == "__main__":
    main()
