"""From logits to figures: per-sample outcomes, per-set metrics, and the benchmark summaries built from them.

The run loop turns each batch's logits into rows of ``outcomes`` (gathered across ranks); a finished
set's table becomes its metrics (``metrics_from_outcomes``); the sets' metrics become the summary.
Errors are in percent. The summaries follow the benchmarks' own definitions:

* ``mean_corruption_error``: the plain mean over corruptions of the mean error over severities,
  as the CIFAR papers (and AugMix's ``cifar.py``) report it.
* ``mCE``: CE_c = mean_s E(c, s) / AlexNet_c, averaged over the 15 corruptions
  (``compute_mce`` in AugMix's ``imagenet.py``; Hendrycks & Dietterich, 2019).
* ``relative_mCE``: (mean_s E(c, s) - E_clean) / (AlexNet_c - AlexNet_clean), averaged likewise.

-C-bar sets use the same figures over their own 10 corruptions (``augmix.corruptions.names``).
Perturbation sets (-P) are scored per video (``stability_rows``) with the definitions of
``augmix.perturbations.metrics``; their summary is mFP and the mean top-5 distance. mFR and mT5D
divide by AlexNet's values, which could not be verified, so they are reported as null.
Distribution-shift sets (ImageNet-R/A/Sketch/V2, CIFAR-10.1/10.2) are per-image sets like the clean
one; their summary adds the gap to the error of their in-distribution reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from augmix.corruptions.names import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from augmix.perturbations.metrics import video_flip_rate, video_rank_distance

# AlexNet's ImageNet-C errors (fractions, mean over the 5 severities), canonical order, as
# published with the benchmark (hendrycks/robustness) and used by AugMix's imagenet.py.
ALEXNET_ERRORS: dict[str, float] = dict(
    zip(
        BENCHMARK_CORRUPTIONS,
        (
            0.886428,
            0.894468,
            0.922640,
            0.819880,
            0.826268,
            0.785948,
            0.798360,
            0.866816,
            0.826572,
            0.819324,
            0.564592,
            0.853204,
            0.646056,
            0.717840,
            0.606500,
        ),
        strict=True,
    )
)
ALEXNET_CLEAN_ERROR = 43.5  # percent, as published with the benchmark

RMS_BIN_SIZE = 100  # samples per adaptive bin, as in the authors' calib_err
ECE_BINS = 15


def rms_calibration_error(confidence: np.ndarray, correct: np.ndarray, bin_size: int = RMS_BIN_SIZE) -> float | None:
    """RMS calibration error in percent, computed as the AugMix paper's numbers were.

    The authors' ``calib_err`` (hendrycks/outlier-exposure, utils/calibration_tools.py) sorts by
    confidence with numpy's default argsort, cuts consecutive bins of ``bin_size`` samples, lets
    the last bin absorb the remainder and then leaves that last bin out of the sum while still
    weighting by the full count. We reproduce that exactly so figures compare with the paper's.
    Needs at least two bins; returns None for fewer than ``2 * bin_size`` samples.
    """
    total = len(confidence)
    full_bins = total // bin_size
    if full_bins < 2:
        return None
    order = np.argsort(np.asarray(confidence))
    counted = (full_bins - 1) * bin_size
    conf = np.asarray(confidence, dtype=np.float64)[order][:counted].reshape(-1, bin_size).mean(axis=1)
    acc = np.asarray(correct, dtype=np.float64)[order][:counted].reshape(-1, bin_size).mean(axis=1)
    return 100.0 * math.sqrt(float(np.sum(bin_size / total * (conf - acc) ** 2)))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """ECE in percent with ``bins`` equal-width confidence bins (lo, hi] (Guo et al., 2017)."""
    total = len(confidence)
    if total == 0:
        return None
    confidence = np.asarray(confidence, dtype=np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    acc_sum = np.bincount(index, weights=np.asarray(correct, dtype=np.float64), minlength=bins)
    return 100.0 * float(np.sum(np.abs(acc_sum - conf_sum)) / total)


def set_metrics(
    correct1: np.ndarray, correct5: np.ndarray | None, confidence: np.ndarray, loss: np.ndarray
) -> dict[str, float | int | None]:
    """Error, top-5 error, mean loss and calibration of one set from its per-sample outcomes."""
    n = len(correct1)
    if n == 0:
        raise ValueError("a set with no images has no error")
    correct = int(np.sum(correct1))
    correct_top5 = int(np.sum(correct5)) if correct5 is not None else None
    return {
        "n": n,
        "correct": correct,
        "error": 100.0 * (n - correct) / n,
        "correct_top5": correct_top5,
        "top5_error": 100.0 * (n - correct_top5) / n if correct_top5 is not None else None,
        "loss": float(np.mean(np.asarray(loss, dtype=np.float64))),
        "rms_calibration_error": rms_calibration_error(confidence, correct1),
        "ece": expected_calibration_error(confidence, correct1),
    }


# Columns of the per-sample outcome table the run loop gathers across ranks.
OUTCOME_COLUMNS = ("correct1", "correct5", "confidence", "loss")
CORRECT1, CORRECT5, CONFIDENCE, LOSS = range(len(OUTCOME_COLUMNS))


def outcomes(logits: Tensor, targets: Tensor) -> Tensor:
    """(B, 4) float32: top-1 hit, top-5 hit, max softmax probability, cross-entropy."""
    logits = logits.float()
    probabilities = logits.softmax(dim=1)
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return torch.stack(
        [
            (logits.argmax(dim=1) == targets).float(),
            (top == targets[:, None]).any(dim=1).float(),
            probabilities.max(dim=1).values,
            F.cross_entropy(logits, targets, reduction="none"),
        ],
        dim=1,
    )


def metrics_from_outcomes(table: Tensor, top5: bool) -> dict:
    """``set_metrics`` of one complete set from its ``outcomes`` rows."""
    values = table.cpu().numpy()
    return set_metrics(
        values[:, CORRECT1] > 0.5,
        values[:, CORRECT5] > 0.5 if top5 else None,
        values[:, CONFIDENCE].astype(np.float32),
        values[:, LOSS],
    )


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def mean_over_severities(errors: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
    """{corruption: mean error over its evaluated severities}."""
    return {name: float(np.mean(list(by_severity.values()))) for name, by_severity in errors.items()}


def mean_corruption_error(
    mean_errors: Mapping[str, float], names: Sequence[str] = BENCHMARK_CORRUPTIONS
) -> float | None:
    """Plain mean over the given corruptions that were evaluated."""
    return _mean([mean_errors[name] for name in names if name in mean_errors])


def corruption_errors_vs_alexnet(mean_errors: Mapping[str, float]) -> dict[str, float]:
    """CE_c in percent: mean_s E(c, s) / AlexNet_c, for the benchmark corruptions evaluated."""
    return {name: mean_errors[name] / ALEXNET_ERRORS[name] for name in BENCHMARK_CORRUPTIONS if name in mean_errors}


def relative_corruption_errors(mean_errors: Mapping[str, float], clean_error: float) -> dict[str, float]:
    """Relative CE_c in percent: (mean_s E(c, s) - E_clean) / (AlexNet_c - AlexNet_clean)."""
    return {
        name: 100.0 * (mean_errors[name] - clean_error) / (100.0 * ALEXNET_ERRORS[name] - ALEXNET_CLEAN_ERROR)
        for name in BENCHMARK_CORRUPTIONS
        if name in mean_errors
    }


def summarise(
    clean: Mapping[str, float | int | None],
    corrupted: Mapping[str, Mapping[int, Mapping[str, float | int | None]]],
    alexnet_baseline: bool,
    top5: bool,
    names: Sequence[str] = BENCHMARK_CORRUPTIONS,
    extra_names: Sequence[str] = EXTRA_CORRUPTIONS,
) -> dict:
    """The figures of ``robustness.json`` from the clean set's and every corrupted set's metrics;
    ``names`` are the corruptions whose mean is the benchmark's figure (-C's 15, a -C-bar's 10)."""
    errors = {name: {s: m["error"] for s, m in by_s.items()} for name, by_s in corrupted.items()}
    means = mean_over_severities(errors)
    ce = corruption_errors_vs_alexnet(means) if alexnet_baseline else None
    relative = relative_corruption_errors(means, clean["error"]) if alexnet_baseline else None
    benchmark_sets = [m for name, by_s in corrupted.items() if name in names for m in by_s.values()]
    summary = {
        "clean_error": clean["error"],
        "corruption_errors": {name: {str(s): e for s, e in by_s.items()} for name, by_s in errors.items()},
        "mean_errors": means,
        "mean_corruption_error": mean_corruption_error(means, names),
        "mean_extra_corruption_error": mean_corruption_error(means, extra_names),
        "mCE": _mean(list(ce.values())) if ce else None,
        "relative_mCE": _mean(list(relative.values())) if relative else None,
        "corruption_ce": ce,
        "relative_corruption_ce": relative,
        "calibration": {
            "clean": {"rms": clean["rms_calibration_error"], "ece": clean["ece"]},
            "corrupted": {
                "rms": _mean([m["rms_calibration_error"] for m in benchmark_sets]),
                "ece": _mean([m["ece"] for m in benchmark_sets]),
            },
        },
    }
    if top5:
        summary["clean_top5_error"] = clean["top5_error"]
        summary["corruption_top5_errors"] = {
            name: {str(s): m["top5_error"] for s, m in by_s.items()} for name, by_s in corrupted.items()
        }
        summary["mean_corruption_top5_error"] = _mean([m["top5_error"] for m in benchmark_sets])
    return summary


# ------------------------------------------------------------------------ perturbation stability (-P)

STABILITY_COLUMNS = ("flip", "top5_distance", "zipf_distance")


def stability_rows(logits: Tensor, frames: int, noise: bool, difficulty: int) -> Tensor:
    """(videos, 3) float64 on the logits' device: each video's flip rate, top-5 and Zipf distance
    (``augmix.perturbations.metrics``) from the logits of its ``frames`` consecutive frames."""
    videos = logits.float().reshape(-1, frames, logits.shape[-1]).cpu().numpy()
    rows = [
        [
            video_flip_rate(video.argmax(-1), noise, difficulty),
            video_rank_distance(video, noise, difficulty, "top5"),
            video_rank_distance(video, noise, difficulty, "zipf"),
        ]
        for video in videos
    ]
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, len(STABILITY_COLUMNS)).to(logits.device)


def stability_metrics(table: Tensor) -> dict:
    """A -P set's figures, means over its videos (each video weighs the same, as ImageNet-P/test.py):
    flip probability in percent (as the AugMix paper reports mFP), top-5 and Zipf distances as they are."""
    values = table.cpu().numpy().astype(np.float64)
    if len(values) == 0:
        raise ValueError("a set with no videos has no flip probability")
    flip, top5_distance, zipf = values.mean(axis=0)
    return {"n": len(values), "flip_probability": 100.0 * float(flip), "top5_distance": float(top5_distance),
            "zipf_distance": float(zipf)}


def summarise_stability(sets: Mapping[str, Mapping[str, float]], names: Sequence[str], extra_names: Sequence[str]) -> dict:
    """mFP and the mean top-5 distance over the benchmark perturbations evaluated (and over the extra
    ones apart). mFR and mT5D stay null: they divide by AlexNet's values, which are not shipped."""
    flips = {name: m["flip_probability"] for name, m in sets.items()}
    distances = {name: m["top5_distance"] for name, m in sets.items()}
    return {
        "flip_probabilities": flips,
        "top5_distances": distances,
        "zipf_distances": {name: m["zipf_distance"] for name, m in sets.items()},
        "mFP": _mean([flips[name] for name in names if name in flips]),
        "mean_top5_distance": _mean([distances[name] for name in names if name in distances]),
        "mean_extra_flip_probability": _mean([flips[name] for name in extra_names if name in flips]),
        "mFR": None,
        "mT5D": None,
    }


# ------------------------------------------------------------------------------- distribution shift


def summarise_shift(metrics: Mapping[str, float | int | None], reference: Mapping[str, float | int | None],
                    reference_name: str, top5: bool) -> dict:
    """A distribution-shift set's figures and its gap (percentage points) to the error of the
    in-distribution ``reference`` set evaluated the same way."""
    summary = {
        "error": metrics["error"],
        "reference": reference_name,
        "reference_error": reference["error"],
        "gap": metrics["error"] - reference["error"],
        "calibration": {"rms": metrics["rms_calibration_error"], "ece": metrics["ece"]},
    }
    if top5:
        summary["top5_error"] = metrics["top5_error"]
        summary["reference_top5_error"] = reference["top5_error"]
    return summary
