"""Corruption-robustness evaluation: CIFAR-10-C, CIFAR-100-C, ImageNet-C, Tiny-ImageNet-C and
synthetic -C sets of any data config, with benchmark-exact metrics, resumable per-set results and
reports. ``evaluate.py`` is the command line; ``make_corrupted.py`` writes -C sets."""

from augmix.corruptions.make import write_corrupted
from augmix.evaluation.checkpoints import Checkpoint, create_backbone, read_checkpoint
from augmix.evaluation.commands import (
    check_evaluate_after_fit,
    evaluate,
    evaluate_after_fit,
)
from augmix.evaluation.metrics import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    expected_calibration_error,
    rms_calibration_error,
    summarise,
)
from augmix.evaluation.pipeline import run_evaluation
from augmix.evaluation.settings import BenchmarkSpec, benchmark_spec

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_ERRORS",
    "BenchmarkSpec",
    "Checkpoint",
    "benchmark_spec",
    "check_evaluate_after_fit",
    "create_backbone",
    "evaluate",
    "evaluate_after_fit",
    "expected_calibration_error",
    "read_checkpoint",
    "rms_calibration_error",
    "run_evaluation",
    "summarise",
    "write_corrupted",
]
