"""Stability metrics of the -P benchmarks, defined as the benchmark's own evaluation code.

Source: github.com/hendrycks/robustness, ``ImageNet-P/test.py`` (``flip_prob``, ``ranking_dist``,
``dist``) and ``ImageNet-P/cifar-p-eval.py`` (the same functions for CIFAR-10/100-P, difficulty 1).

Flip probability of one video with predictions ``p_0 .. p_{F-1}``:

* noise perturbations (name contains ``noise``): the mean over j = 1..F-1 of ``[p_j != p_0]``,
  every frame against the first (clean) frame; their difficulty is a separate set
  (``<name>_2``, ``<name>_3``), not a step;
* the others, at difficulty ``d``: the mean over j = d..F-1 of ``[p_j != p_{j-d}]``, i.e. the
  F - d pairs of frames ``d`` apart (test.py walks the ``d`` interleaved subsequences
  ``i, i+d, i+2d, ...`` comparing neighbours).

A set's flip probability is the mean of its videos' values (each video weighs the same). The
top-5 and Zipf distances use the same pairs: for frames ``a`` (reference) and ``b``, with
``sigma_k`` the rank (1 = highest logit) in ``b`` of the class ranked k-th (k = 1..C) in ``a``,

* top-5 distance ``sum_{k=1..5} |(k - 1) - min(sigma_k - 1, 5)|``;
* Zipf distance ``sum_{k=1..C} |1/k - 1/sigma_k| / k``.

Ranks break ties by class index, as ``scipy.stats.rankdata(-logits, method='ordinal')`` does.

Means over perturbations: mFP (CIFAR-10-P, as reported in the AugMix paper) is the plain mean of
the flip probabilities. ImageNet-P's mFR and mT5D (Hendrycks & Dietterich, ICLR 2019, section 4)
divide each perturbation's value by AlexNet's before averaging. AlexNet's per-perturbation values
are not in the paper's text nor hard-coded in the repository; the authors point to a spreadsheet
(hendrycks/robustness issue #49) that could not be read here. No AlexNet constants are therefore
shipped: ``normalised_mean`` takes the baseline values as an argument (e.g. measured by running
torchvision's AlexNet through the same sets), and without them only the unnormalised means exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from augmix.perturbations.registry import is_noise

TOP_K = 5
MODES = ("top5", "zipf")


def _pairs(frames: int, noise: bool, difficulty: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (reference, compared) of the frame pairs test.py scores for one video."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, np.integer)) or difficulty < 1:
        raise ValueError(f"difficulty must be an integer >= 1, got {difficulty!r}")
    step = 1 if noise else int(difficulty)
    if frames <= step:
        raise ValueError(f"a video of {frames} frame(s) has no pair of frames {step} apart")
    compared = np.arange(step, frames)
    reference = np.zeros_like(compared) if noise else compared - step
    return reference, compared


def video_flip_rate(predictions: np.ndarray, noise: bool, difficulty: int = 1) -> float:
    """Share of scored frame pairs of one video whose top-1 predictions differ."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ValueError(f"expected the predictions of one video, shape (frames,), got {predictions.shape}")
    reference, compared = _pairs(len(predictions), noise, difficulty)
    return float(np.mean(predictions[compared] != predictions[reference]))


def flip_probability(predictions: Sequence[np.ndarray] | np.ndarray, noise: bool, difficulty: int = 1) -> float:
    """Mean over videos of ``video_flip_rate``: test.py's ``flip_prob``. ``predictions`` is
    (videos, frames) or a list of per-video arrays."""
    rates = [video_flip_rate(video, noise, difficulty) for video in predictions]
    if not rates:
        raise ValueError("no videos to score")
    return float(np.mean(rates))


def rank_order(logits: np.ndarray) -> np.ndarray:
    """Classes of each frame from highest to lowest logit, ties by class index: (..., C) ints.
    ``rank_order(x)[..., k]`` is the class whose ``rankdata(-x, 'ordinal')`` rank is k + 1."""
    return np.argsort(-np.asarray(logits, dtype=np.float64), axis=-1, kind="stable")


def ranks(logits: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(-logits, method='ordinal')`` per frame: 1 for the highest logit."""
    order = rank_order(logits)
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(1, order.shape[-1] + 1), axis=-1)
    return out


def pair_distance(reference_logits: np.ndarray, logits: np.ndarray, mode: str = "top5") -> float:
    """test.py's ``dist`` for one pair of frames: how far the reference frame's ranking moved."""
    return float(_pair_distances(np.asarray(reference_logits)[None], np.asarray(logits)[None], mode)[0])


def _pair_distances(reference_logits: np.ndarray, logits: np.ndarray, mode: str) -> np.ndarray:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    order = rank_order(reference_logits)  # (P, C): the reference ranking
    sigma = np.take_along_axis(ranks(logits), order, axis=-1)  # (P, C): their ranks in the other frame
    if mode == "top5":
        k = min(TOP_K, sigma.shape[-1])
        return np.abs(np.arange(k) - np.minimum(sigma[:, :k] - 1, TOP_K)).sum(axis=-1).astype(np.float64)
    position = np.arange(1, sigma.shape[-1] + 1)
    return (np.abs(1.0 / position - 1.0 / sigma) / position).sum(axis=-1)


def video_rank_distance(logits: np.ndarray, noise: bool, difficulty: int = 1, mode: str = "top5") -> float:
    """Mean distance over the scored frame pairs of one video, logits shaped (frames, classes)."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"expected the logits of one video, shape (frames, classes), got {logits.shape}")
    reference, compared = _pairs(len(logits), noise, difficulty)
    return float(np.mean(_pair_distances(logits[reference], logits[compared], mode)))


def ranking_distance(logits: Sequence[np.ndarray] | np.ndarray, noise: bool, difficulty: int = 1,
                     mode: str = "top5") -> float:
    """Mean over videos of ``video_rank_distance``: test.py's ``ranking_dist``. With
    ``mode='top5'`` this is the top-5 distance (T5D) of a set."""
    values = [video_rank_distance(video, noise, difficulty, mode) for video in logits]
    if not values:
        raise ValueError("no videos to score")
    return float(np.mean(values))


@dataclass
class StabilityMeter:
    """Accumulates one -P set video by video, so a set never sits in memory as logits.

    ``update`` takes a batch of videos' logits (videos, frames, classes); ``result`` gives the
    set's flip probability, top-5 and Zipf distances (means over videos, as test.py). ``state`` /
    ``from_state`` hold the running sums as plain floats, for resumable evaluation."""

    noise: bool
    difficulty: int = 1
    videos: int = 0
    sums: dict[str, float] = field(default_factory=lambda: {"flip_probability": 0.0, "top5": 0.0, "zipf": 0.0})

    @classmethod
    def for_set(cls, name: str, difficulty: int = 1) -> StabilityMeter:
        """The meter of perturbation ``name`` at ``difficulty`` (noise semantics from the name)."""
        return cls(noise=is_noise(name), difficulty=difficulty)

    def update(self, logits: np.ndarray) -> None:
        logits = np.asarray(logits)
        if logits.ndim != 3:
            raise ValueError(f"expected logits shaped (videos, frames, classes), got {logits.shape}")
        for video in logits:
            self.sums["flip_probability"] += video_flip_rate(video.argmax(-1), self.noise, self.difficulty)
            self.sums["top5"] += video_rank_distance(video, self.noise, self.difficulty, "top5")
            self.sums["zipf"] += video_rank_distance(video, self.noise, self.difficulty, "zipf")
            self.videos += 1

    def result(self) -> dict[str, float | None]:
        """Means over the videos seen; None (undefined) before any video."""
        return {key: (value / self.videos if self.videos else None) for key, value in self.sums.items()}

    def state(self) -> dict:
        return {"noise": self.noise, "difficulty": self.difficulty, "videos": self.videos, "sums": dict(self.sums)}

    @classmethod
    def from_state(cls, state: Mapping) -> StabilityMeter:
        return cls(noise=bool(state["noise"]), difficulty=int(state["difficulty"]), videos=int(state["videos"]),
                   sums={key: float(value) for key, value in state["sums"].items()})


def mean_over_perturbations(values: Mapping[str, float]) -> float:
    """Plain mean over perturbations: mFP from flip probabilities (CIFAR-10-P in the AugMix
    paper), or the unnormalised mean top-5 distance."""
    if not values:
        raise ValueError("no perturbations to average")
    return float(np.mean([float(value) for value in values.values()]))


def normalised_mean(values: Mapping[str, float], baseline: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """ImageNet-P's mFR / mT5D: each perturbation's value divided by the baseline model's
    (AlexNet in the paper) on the same perturbation, then averaged. Returns the mean and the
    per-perturbation ratios. Every perturbation needs a positive baseline value."""
    missing = sorted(set(values) - set(baseline))
    if missing:
        raise ValueError(f"no baseline value for {', '.join(missing)}")
    ratios = {}
    for name, value in values.items():
        reference = float(baseline[name])
        if not np.isfinite(reference) or reference <= 0:
            raise ValueError(f"baseline value of {name} must be a positive number, got {reference}")
        ratios[name] = float(value) / reference
    return mean_over_perturbations(ratios), ratios
