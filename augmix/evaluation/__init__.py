"""Robustness evaluation: the -C benchmarks (CIFAR-10-C, CIFAR-100-C, ImageNet-C, Tiny-ImageNet-C,
synthetic -C of any data config) and -C-bar, perturbation stability (-P), and distribution shift
(ImageNet-R/A/Sketch/V2, CIFAR-10.1/10.2), one benchmark or a whole suite per run, with
benchmark-exact metrics, resumable per-set results and reports. ``evaluate.py`` is the command
line; ``make_corrupted.py`` writes -C sets (``augmix.corruptions.make``), ``make_perturbed.py`` -P
sets (``augmix.perturbations.make``).

The modules follow the data path of one run:

* ``commands``: ``evaluate`` / ``evaluate_after_fit`` resolve the config (checkpoint, backbone, data,
  devices) and what to run; ``run_evaluation`` (one -C benchmark) and ``suite.run_suite`` (a suite)
  check everything, build the model and the sets and call the stages below;
* ``checkpoints``: weights read safely (``torch.load(weights_only=True)``) and fitted to a backbone;
  ``exported``: exported model folders and ``.safetensors`` files, read without pickle;
* ``inputs``: the benchmark and suite nodes and every set of images, one module per released format family;
* ``run``: the loop over all pending sets: loader, sharding across ranks, progress, the per-set result stores;
* ``metrics``: from logits to per-sample outcomes (or per-video stability rows), per-set metrics and
  the benchmark summaries;
* ``sections``: each benchmark's section of robustness.json;
* ``reports`` / ``suite_reports``: robustness.json / .csv / .md / .png (and robustness_p.png), the
  terminal tables, and the same figures to the loggers.
"""

from augmix.corruptions.make import write_corrupted
from augmix.evaluation.checkpoints import Checkpoint, create_backbone, read_checkpoint
from augmix.evaluation.commands import (
    check_evaluate_after_fit,
    evaluate,
    evaluate_after_fit,
    run_evaluation,
)
from augmix.evaluation.inputs import BenchmarkSpec, benchmark_spec
from augmix.evaluation.inputs.suite import SuiteSpec, suite_spec
from augmix.evaluation.metrics import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    expected_calibration_error,
    rms_calibration_error,
    summarise,
)
from augmix.evaluation.suite import run_suite

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_ERRORS",
    "BenchmarkSpec",
    "Checkpoint",
    "SuiteSpec",
    "benchmark_spec",
    "check_evaluate_after_fit",
    "create_backbone",
    "evaluate",
    "evaluate_after_fit",
    "expected_calibration_error",
    "read_checkpoint",
    "rms_calibration_error",
    "run_evaluation",
    "run_suite",
    "suite_spec",
    "summarise",
    "write_corrupted",
]
