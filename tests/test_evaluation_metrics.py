"""Metrics against hand computations: errors, mCE, relative mCE, RMS calibration error, ECE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from augmix.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from augmix.evaluation.metrics import (
    ALEXNET_ERRORS,
    expected_calibration_error,
    rms_calibration_error,
    set_metrics,
    summarise,
)

# AlexNet's ImageNet-C errors in percent, by name, typed in from the issue / hendrycks/robustness
# independently of the module's constants (which hold fractions in canonical order).
ALEXNET_PERCENT = {
    "gaussian_noise": 88.6428,
    "shot_noise": 89.4468,
    "impulse_noise": 92.264,
    "defocus_blur": 81.988,
    "glass_blur": 82.6268,
    "motion_blur": 78.5948,
    "zoom_blur": 79.836,
    "snow": 86.6816,
    "frost": 82.6572,
    "fog": 81.9324,
    "brightness": 56.4592,
    "contrast": 85.3204,
    "elastic_transform": 64.6056,
    "pixelate": 71.784,
    "jpeg_compression": 60.65,
}
ALEXNET = [ALEXNET_PERCENT[name] / 100 for name in BENCHMARK_CORRUPTIONS]


def _set(error: float, n: int = 1000) -> dict:
    correct = round(n * (1 - error / 100))
    return {
        "n": n,
        "correct": correct,
        "error": error,
        "top5_error": error / 2,
        "loss": 1.0,
        "rms_calibration_error": 10.0,
        "ece": 5.0,
    }


def test_alexnet_constants_in_canonical_order():
    assert list(ALEXNET_ERRORS) == list(BENCHMARK_CORRUPTIONS)
    fractions = {name: percent / 100 for name, percent in ALEXNET_PERCENT.items()}
    assert ALEXNET_ERRORS == pytest.approx(fractions, rel=1e-12)


def test_mce_and_relative_mce_hand_computed():
    # E(c, s) = 40 + 2c + s for corruption index c and severity s; clean error 20%.
    corrupted = {name: {s: _set(40.0 + 2 * c + s) for s in range(1, 6)} for c, name in enumerate(BENCHMARK_CORRUPTIONS)}
    summary = summarise(_set(20.0), corrupted, alexnet_baseline=True, top5=False)
    means = [40.0 + 2 * c + 3 for c in range(15)]  # mean over s = 1..5 is s = 3
    expected_mce = sum(m / a for m, a in zip(means, ALEXNET)) / 15
    expected_relative = sum(100 * (m - 20.0) / (100 * a - 43.5) for m, a in zip(means, ALEXNET)) / 15
    assert summary["mean_corruption_error"] == pytest.approx(sum(means) / 15)
    assert summary["mCE"] == pytest.approx(expected_mce, rel=1e-12)
    assert summary["relative_mCE"] == pytest.approx(expected_relative, rel=1e-12)
    # Pinned: a regression in constants or formula moves these.
    assert summary["mCE"] == pytest.approx(74.9216, abs=1e-3)
    assert summary["relative_mCE"] == pytest.approx(128.6898, abs=1e-3)
    assert summary["corruption_ce"]["gaussian_noise"] == pytest.approx(43.0 / 0.886428)


def test_alexnet_itself_scores_100():
    corrupted = {name: {s: _set(100 * a) for s in range(1, 6)} for name, a in zip(BENCHMARK_CORRUPTIONS, ALEXNET)}
    summary = summarise(_set(43.5), corrupted, alexnet_baseline=True, top5=False)
    assert summary["mCE"] == pytest.approx(100.0)
    assert summary["relative_mCE"] == pytest.approx(100.0)


def test_extras_stay_out_of_the_benchmark_means_and_mce_only_for_imagenet():
    corrupted = {name: {1: _set(30.0)} for name in BENCHMARK_CORRUPTIONS}
    corrupted |= {name: {1: _set(90.0)} for name in EXTRA_CORRUPTIONS}
    summary = summarise(_set(10.0), corrupted, alexnet_baseline=False, top5=True)
    assert summary["mean_corruption_error"] == pytest.approx(30.0)
    assert summary["mean_extra_corruption_error"] == pytest.approx(90.0)
    assert summary["mCE"] is None and summary["relative_mCE"] is None
    assert summary["mean_corruption_top5_error"] == pytest.approx(15.0)
    assert summary["corruption_errors"]["fog"] == {"1": 30.0}


def test_set_metrics_counts():
    correct1 = np.array([1, 0, 1, 1], dtype=bool)
    correct5 = np.array([1, 1, 1, 1], dtype=bool)
    metrics = set_metrics(
        correct1, correct5, np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32), np.array([0.1, 2.0, 0.3, 0.4])
    )
    assert metrics["n"] == 4 and metrics["correct"] == 3 and metrics["error"] == pytest.approx(25.0)
    assert metrics["top5_error"] == 0.0 and metrics["loss"] == pytest.approx(0.7)
    assert metrics["rms_calibration_error"] is None  # fewer than two bins of 100


def test_rms_calibration_error_follows_the_authors_binning():
    # 250 samples: bins [0, 100) and [100, 250); the authors' calib_err sums every bin but the
    # last, weighting by the full count. Sorted confidences: 100 at 0.3 (20 correct), 150 at 0.9.
    confidence = np.array([0.9] * 150 + [0.3] * 100, dtype=np.float32)
    correct = np.array([1] * 150 + [1] * 20 + [0] * 80, dtype=bool)
    expected = 100 * math.sqrt(100 / 250 * (0.3 - 0.2) ** 2)
    assert rms_calibration_error(confidence, correct) == pytest.approx(expected, rel=1e-6)
    assert rms_calibration_error(confidence[:199], correct[:199]) is None


def test_rms_calibration_error_zero_when_calibrated_and_grows_with_overconfidence():
    rng = np.random.default_rng(0)
    levels = np.arange(1, 11) / 10  # 100 samples at each confidence 0.1 .. 1.0, accuracy equal to it
    confidence = np.repeat(levels, 100).astype(np.float32)
    correct = np.concatenate([rng.permutation(np.arange(100) < round(100 * c)) for c in levels])
    assert rms_calibration_error(confidence, correct) == pytest.approx(0.0, abs=1e-5)
    assert rms_calibration_error(np.minimum(confidence + 0.1, 1.0), correct) > 5.0


def test_expected_calibration_error_hand_computed():
    confidence = np.array([0.95, 0.95, 0.55, 0.55])  # bins (14/15, 1] and (8/15, 9/15]
    correct = np.array([1, 0, 1, 1], dtype=bool)
    expected = 100 * (2 / 4 * abs(0.5 - 0.95) + 2 / 4 * abs(1.0 - 0.55))
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1.0]), np.array([True])) == pytest.approx(0.0)
