"""What ``import augmix`` costs on top of ``import torch``, and what it loads.

Every row is timed in a fresh interpreter (imports are cached per process): the time of the
statement after ``import torch`` has run, median of interleaved rounds. The first row is what a
user of ``from augmix import AugMix, JSDLoss`` pays (target: under 1 s); the others show what
the framework parts add when they are used.

    python perf/import_time.py                 # this checkout
    python perf/import_time.py --root DIR      # another source tree (e.g. an older commit's)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = {
    "from augmix import AugMix, JSDLoss": "from augmix import AugMix, JSDLoss",
    "import augmix, timm (CIFAR models registered)": "import augmix, timm; assert timm.is_model('cifar_wrn40_2')",
    "import augmix.config (Hydra schemas)": "import augmix.config",
    "import augmix.training (whole framework)": "import augmix.training",
}
WATCHED = ("timm", "hydra", "omegaconf", "cv2", "pytorch_lightning", "torchvision", "PIL", "scipy", "wandb")
PROBE = """
import json, sys, time
start = time.perf_counter()
import torch
torch_done = time.perf_counter()
{statement}
done = time.perf_counter()
print(json.dumps({{"torch": torch_done - start, "over_torch": done - torch_done,
                  "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""


def probe(statement: str, root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    code = PROBE.format(statement=statement, watched=WATCHED)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree holding the augmix package")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    samples: dict[str, list[dict]] = {name: [] for name in ROWS}
    for _ in range(args.rounds):  # interleaved, so a busy machine disturbs every row alike
        for name, statement in ROWS.items():
            samples[name].append(probe(statement, args.root))
    torch_time = statistics.median(s["torch"] for runs in samples.values() for s in runs)
    print(f"augmix at {args.root}; import torch alone: {torch_time:.2f} s (median of {args.rounds} rounds)\n")
    print(f"| {'statement':<46} | over torch (s) | also loaded |")
    print(f"|{'-' * 48}|---------------:|---|")
    for name, runs in samples.items():
        over = statistics.median(s["over_torch"] for s in runs)
        print(f"| {name:<46} | {over:14.2f} | {', '.join(runs[-1]['loaded']) or '-'} |")
    light = statistics.median(s["over_torch"] for s in samples["from augmix import AugMix, JSDLoss"])
    print(f"\nfrom augmix import AugMix, JSDLoss: {light:.2f} s over torch (target: under 1 s)")


if __name__ == "__main__":
    main()
