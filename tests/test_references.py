"""Published AugMix figures: looked up by benchmark, dataset and architecture, shown only on released data."""

from __future__ import annotations

from augmix.references import PUBLISHED, published, published_lines


def summary(**changes) -> dict:
    """The keys of robustness.json that decide whether published figures apply."""
    return {"benchmark": "imagenetc", "data": "imagenet", "backbone": "resnet50", "regenerated": False, "complete": True, **changes}


def test_every_published_row_cites_its_paper_and_where_the_figures_are_printed():
    for row in PUBLISHED:
        assert row.paper and row.source and row.figures
        assert all(0 < value < 100 for value in row.figures.values())


def test_lookup_matches_benchmark_dataset_and_architecture():
    rows = published("imagenetc", "imagenet", "resnet50")
    assert {row.method for row in rows} == {"AugMix + JSD, 180 epochs", "standard training (baseline)"}
    assert [row.figures["mCE"] for row in rows] == [65.3, 76.7]
    assert published("imagenetc", "imagenet", "torchvision:resnet50") == rows
    assert published("imagenetc", "imagenet", "resnet18") == []
    assert published("synthetic", "imagenet", "resnet50") == []
    assert published("imagenetc", "tinyimagenet", "resnet50") == []


def test_published_lines_only_for_released_complete_matching_reports():
    lines = published_lines(summary())
    assert lines[0].startswith("published: AugMix + JSD, 180 epochs: mCE 65.3%, clean error 22.47%")
    assert "google-research/augmix" in lines[0] and "Hendrycks & Dietterich" in lines[1]
    assert published_lines(summary(regenerated=True)) == []
    assert published_lines(summary(complete=False)) == []
    assert published_lines(summary(backbone="cifar_wrn40_2")) == []
