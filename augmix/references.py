"""Published figures of the AugMix authors, each with where it was published, to print beside a
measured one when benchmark, dataset and architecture match.

Only figures checked against their source are listed. They are comparable with a measurement only
on the released benchmark files, with every corruption and severity and no image limit; a report
on regenerated or partial sets never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

AUGMIX_PAPER = "Hendrycks, Mu et al., AugMix, ICLR 2020 (arXiv:1912.02781)"


@dataclass(frozen=True)
class Published:
    """One published result: ``figures`` in percent, by the names robustness.json uses."""

    benchmark: str  # robustness.json "benchmark"
    data: str  # robustness.json "data": the training set
    backbones: tuple[str, ...]  # the architectures it applies to, as model.backbone names them
    method: str
    figures: dict[str, float]
    paper: str
    source: str  # where the figures are printed


# the setting both ImageNet-C rows share: what a run must match to be set beside them
_RESNET50_ON_IMAGENET_C = {
    "benchmark": "imagenetc",
    "data": "imagenet",
    "backbones": ("resnet50", "torchvision:resnet50"),
}

PUBLISHED = (
    Published(
        **_RESNET50_ON_IMAGENET_C,
        method="AugMix + JSD, 180 epochs",
        figures={"mCE": 65.3, "clean_error": 22.47},
        paper=AUGMIX_PAPER,
        source=(
            "github.com/google-research/augmix README, 'Pretrained weights' (65.3 mCE, 77.53% top-1); "
            "github.com/hendrycks/robustness README, ImageNet-C leaderboard"
        ),
    ),
    Published(
        **_RESNET50_ON_IMAGENET_C,
        method="standard training (baseline)",
        figures={"mCE": 76.7, "clean_error": 23.85},
        paper="Hendrycks & Dietterich, ICLR 2019 (arXiv:1903.12261)",
        source="github.com/hendrycks/robustness README, ImageNet-C leaderboard, 'ResNet-50 Baseline'",
    ),
)
FIGURE_NAMES = {"mCE": "mCE", "clean_error": "clean error", "mean_corruption_error": "mean corruption error"}


def published(benchmark: str, data: str, backbone: str) -> list[Published]:
    """The published results for ``backbone`` trained on ``data`` and measured on ``benchmark``."""
    return [row for row in PUBLISHED if (row.benchmark, row.data) == (benchmark, data) and backbone in row.backbones]


def comparable(summary: dict) -> bool:
    """Whether a robustness.json summary may be set beside published figures: released files,
    every corruption and severity, no image limit."""
    return summary.get("regenerated") is False and summary.get("complete") is True


def published_lines(summary: dict) -> list[str]:
    """``published: ...`` lines to print under a report's measured figures (none unless they are
    comparable and benchmark, dataset and architecture match)."""
    if not comparable(summary):
        return []
    rows = published(str(summary.get("benchmark")), str(summary.get("data")), str(summary.get("backbone")))
    return [format_row(row) for row in rows]


def format_row(row: Published) -> str:
    figures = ", ".join(f"{FIGURE_NAMES.get(name, name)} {value:g}%" for name, value in row.figures.items())
    return f"published: {row.method}: {figures} ({row.paper}; {row.source})"
