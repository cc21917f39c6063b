"""``import augmix`` is light, and the CIFAR architectures are in timm whichever is imported first.

Imports are cached per process, so each order runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

FRAMEWORK = ("timm", "hydra", "omegaconf", "cv2", "pytorch_lightning", "torchvision")


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    "code",
    [
        # augmix first: nothing of the framework is loaded, and timm finds the models once imported
        f"import sys, augmix\nprint([m for m in {FRAMEWORK!r} if m in sys.modules])\n"
        "import timm\nprint(type(timm.create_model('cifar_wrn16_1', num_classes=10)).__name__)",
        # timm first: augmix registers them at once
        "import timm, augmix\nprint([])\nprint(type(timm.create_model('cifar_wrn16_1', num_classes=10)).__name__)",
    ],
    ids=["augmix-then-timm", "timm-then-augmix"],
)
def test_import_augmix_loads_no_framework_and_registers_the_cifar_models_with_timm(code):
    loaded, model = run_python(code).splitlines()
    assert loaded == "[]", f"import augmix loaded {loaded}"
    assert model == "WideResNet"
