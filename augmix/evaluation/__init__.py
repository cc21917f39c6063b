"""Corruption-robustness evaluation: CIFAR-10-C, CIFAR-100-C, ImageNet-C, Tiny-ImageNet-C and
synthetic -C sets of any data config, with benchmark-exact metrics, resumable per-set results and
reports. ``evaluate.py`` is the command line; ``make_corrupted.py`` writes -C sets
(``augmix.corruptions.make``).

The modules follow the data path of one run:

* ``commands``: ``evaluate`` / ``evaluate_after_fit`` resolve the config (checkpoint, backbone, data,
  devices) and ``run_evaluation`` checks everything, builds the model and the sets and calls the stages below;
* ``checkpoints``: weights read safely (``torch.load(weights_only=True)``) and fitted to a backbone;
* ``inputs``: the ``benchmark`` node and every set of images, one module per released format family;
* ``run``: the loop over all pending sets: loader, sharding across ranks, progress, the per-set result store;
* ``metrics``: from logits to per-sample outcomes, per-set metrics and the benchmark summaries;
* ``reports``: robustness.json / .csv / .md / .png, the terminal table, and the same figures to the loggers.

Inputs is a subpackage so that new kinds of sets (perturbation sequences, distribution-shift sets,
-C-bar) each add a module there, not beside the stages; their metrics go to ``metrics``, their
tables to ``reports``.
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
from augmix.evaluation.metrics import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS,
    expected_calibration_error,
    rms_calibration_error,
    summarise,
)

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
