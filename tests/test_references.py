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


def imagenet_c_report(**changes) -> dict:
    """A robustness.json of a ResNet-50 on the released ImageNet-C, complete (fabricated figures)."""
    from tests.test_compare import report

    corrupted = {"gaussian_noise": 60.0, "fog": 40.0}
    released = dict(benchmark="imagenetc", format="imagenet_c", data="imagenet", backbone="resnet50", regenerated=False,
                    regeneration=None, complete=True, limit_per_set=None, mCE=66.1, relative_mCE=80.2,
                    corruption_ce={"gaussian_noise": 68.0, "fog": 64.2})
    return report(22.9, corrupted, **{**released, **changes})


def test_reports_print_the_published_line_under_the_measured_figures():
    from rich.console import Console

    from augmix.evaluation.reports import markdown_text, terminal_table

    markdown = markdown_text(imagenet_c_report())
    measured = markdown.index("| relative mCE | 80.20 |")
    line = markdown.index("- published: AugMix + JSD, 180 epochs: mCE 65.3%, clean error 22.47%")
    assert measured < line < markdown.index("Top-1 error (%) by corruption")
    assert "- published: standard training (baseline): mCE 76.7%" in markdown
    console = Console(record=True, width=400)
    console.print(terminal_table(imagenet_c_report()))
    assert "published: AugMix + JSD, 180 epochs: mCE 65.3%" in console.export_text()

    for regenerated in (imagenet_c_report(regenerated=True), imagenet_c_report(complete=False, limit_per_set=100)):
        assert "published:" not in markdown_text(regenerated)  # ("not comparable with published numbers" is)
        console = Console(record=True, width=400)
        console.print(terminal_table(regenerated))
        assert "published:" not in console.export_text()


def test_the_suite_summary_table_has_the_published_line_of_its_c_member():
    from augmix.evaluation.suite_reports import markdown_suite, summary_rows

    def suite(**changes) -> dict:
        section = {**imagenet_c_report(**changes), "kind": "corruption", "corruption_set": "c"}
        return {"suite": "imagenet", "checkpoint": "r50.pth.tar", "backbone": "resnet50", "data": "imagenet", "num_classes": 1000,
                "limit_per_set": None, "regenerated": section["regenerated"], "complete": section["complete"],
                "clean_error": 22.9, "benchmarks": {"imagenetc": section}, "not_found": {}}

    rows = summary_rows(suite())
    published_rows = [row for row in rows if row[1] == "published"]
    assert rows.index(published_rows[0]) == rows.index(("imagenetc", "mCE (%, AlexNet-normalised)", "66.10", "")) + 1
    assert published_rows[0][2].startswith("AugMix + JSD, 180 epochs: mCE 65.3%") and len(published_rows) == 2
    assert "| imagenetc | published | AugMix + JSD" in markdown_suite(suite())
    assert not [row for row in summary_rows(suite(regenerated=True)) if row[1] == "published"]
    assert "published:" not in markdown_suite(suite(regenerated=True)) and "| published |" not in markdown_suite(suite(regenerated=True))
