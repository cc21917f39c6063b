"""sweep_summary.csv/.md: what varies across jobs, and each job's robustness figures once its post-fit
evaluation is recorded as done (fabricated job folders; the real 2x2 multirun is a slow test)."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from augmix.comparison import compare
from augmix.sweep_summary import write_summary
from tests.conftest import ROOT
from tests.test_compare import report

FIXED = ["experiment=quickstart", "trainer.max_epochs=1", "evaluate_after_fit.limit_per_set=100"]


def write_job(sweep: Path, job: int, overrides: list[str], summary: dict | None, step: int = 10, evaluated_at: int | None = 10,
              **metrics) -> Path:
    """A job folder as train.py leaves it: overrides, metrics.json (with the post-fit record of an
    evaluation at global step ``evaluated_at``, None: not recorded) and robustness.json."""
    folder = sweep / str(job)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    record = {"val/acc": 0.5 + job / 100, "val/loss": 1.0, "val/acc_best": 0.5 + job / 100, "epoch": 0,
              "global_step": step, "finished": True, **metrics}
    if evaluated_at is not None:
        record["post_fit"] = {"evaluate_after_fit": {"name": "synthetic"}, "global_step": evaluated_at}
    (folder / "metrics.json").write_text(json.dumps(record))
    if summary is not None:
        (folder / "robustness.json").write_text(json.dumps(summary))
    return folder


def table(markdown: str) -> list[list[str]]:
    """The .md table's rows (header first) as lists of cells."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def read_csv(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "sweep_summary.csv") as handle:
        return list(csv.DictReader(handle))


def test_the_table_shows_what_varies_and_each_jobs_robustness(tmp_path):
    sweep = tmp_path / "multirun"
    for job, (enabled, seed) in enumerate([(True, 0), (True, 1), (False, 0), (False, 1)]):
        summary = report(10.0 + job, {"gaussian_noise": 30.0 + job, "fog": 20.0}, data="digits")
        write_job(sweep, job, [*FIXED, f"augmix.enabled={enabled}", f"seed={seed}"], summary)
    write_summary(sweep)
    markdown = (sweep / "sweep_summary.md").read_text()
    assert f"- every job: `{' '.join(FIXED)}`" in markdown
    assert "- robustness (post-fit evaluation, top-1 error in %): benchmark `synthetic` on `digits`" in markdown
    assert "REGENERATED corruptions" in markdown and "PARTIAL" in markdown
    rows = table(markdown)
    assert rows[0] == ["job", "varying", "val/acc", "val/loss", "val/acc_best", "epoch", "robustness/clean_error",
                       "robustness/mean_corruption_error", "status"]
    assert rows[1] == ["0", "augmix.enabled=True seed=0", "0.5000", "1.0000", "0.5000", "0", "10.00", "25.00", "finished"]
    assert rows[4][:2] == ["3", "augmix.enabled=False seed=1"] and rows[4][6:8] == ["13.00", "26.50"]
    csv_rows = read_csv(sweep)
    assert csv_rows[3]["overrides"] == " ".join([*FIXED, "augmix.enabled=False", "seed=1"])
    assert csv_rows[3]["varying"] == "augmix.enabled=False seed=1"
    assert csv_rows[3]["robustness/benchmark"] == "synthetic (REGENERATED, PARTIAL)"
    assert (csv_rows[3]["robustness/regenerated"], csv_rows[3]["robustness/complete"]) == ("true", "false")
    assert float(csv_rows[3]["robustness/mean_corruption_error"]) == 26.5 and csv_rows[3]["robustness/mCE"] == ""


def test_mce_and_benchmarks_that_differ_get_their_columns(tmp_path):
    sweep = tmp_path / "multirun"
    released = dict(benchmark="imagenetc", format="imagenet_c", data="imagenet", regenerated=False, regeneration=None,
                    complete=True, limit_per_set=None)
    write_job(sweep, 0, ["seed=0"], report(24.0, {"fog": 60.0}, **released, mCE=70.5, relative_mCE=101.25))
    write_job(sweep, 1, ["seed=1"], report(24.0, {"fog": 60.0}, limit_per_set=100))
    write_summary(sweep)
    rows = table((sweep / "sweep_summary.md").read_text())
    assert rows[0][-6:] == ["robustness/benchmark", "robustness/clean_error", "robustness/mean_corruption_error",
                            "robustness/mCE", "robustness/relative_mCE", "status"]
    assert rows[1][-6:] == ["imagenetc", "24.00", "60.00", "70.50", "101.25", "finished"]
    assert rows[2][-6:] == ["synthetic (REGENERATED, PARTIAL)", "24.00", "60.00", "", "", "finished"]
    assert "every job" not in (sweep / "sweep_summary.md").read_text()  # nothing is shared


def test_a_report_not_recorded_for_the_final_weights_is_not_shown(tmp_path, caplog):
    """A resumed job trained further (its metrics at a later step than the recorded evaluation), a job
    whose evaluation is still running, and one with a damaged report."""
    sweep = tmp_path / "multirun"
    summary = report(10.0, {"fog": 20.0})
    write_job(sweep, 0, ["seed=0"], summary)
    write_job(sweep, 1, ["seed=1"], summary, step=20, evaluated_at=10)
    write_job(sweep, 2, ["seed=2"], summary, evaluated_at=None)
    (write_job(sweep, 3, ["seed=3"], None) / "robustness.json").write_text('{"clean_error": NaN}')
    with caplog.at_level(logging.WARNING):
        write_summary(sweep)
    rows = read_csv(sweep)
    assert [row["robustness/clean_error"] for row in rows] == ["10.0", "", "", ""]
    assert [row["robustness/benchmark"] for row in rows] == ["synthetic (REGENERATED, PARTIAL)", "", "", "unreadable"]
    warning = caplog.records[-1].getMessage()
    assert warning.startswith(f"{sweep / '3' / 'robustness.json'} is damaged (NaN is not JSON); its job's robustness shows as")
    assert "evaluate.py" in warning and "\n" not in warning
    markdown = (sweep / "sweep_summary.md").read_text()
    header, *jobs = table(markdown)
    assert [job[header.index("robustness/benchmark")] for job in jobs] == ["synthetic (REGENERATED, PARTIAL)", "", "", "unreadable"]


def test_a_search_sweep_keeps_its_objective_column(tmp_path):
    sweep = tmp_path / "optuna"
    for job, severity in enumerate((2, 5)):
        write_job(sweep, job, ["hparams_search=augmix_optuna", f"augmix.severity={severity}"], None,
                  **{"val/corruption_error": 0.25 + job / 10})
    write_summary(sweep, objective="val/corruption_error")
    markdown = (sweep / "sweep_summary.md").read_text()
    assert "- objective: `val/corruption_error`" in markdown and "- every job: `hparams_search=augmix_optuna`" in markdown
    rows = table(markdown)
    assert rows[0][:3] == ["job", "varying", "objective (val/corruption_error)"] and "val/corruption_error" not in rows[0][3:]
    assert rows[2][:3] == ["1", "augmix.severity=5", "0.3500"]
    assert [row["objective"] for row in read_csv(sweep)] == ["0.25", "0.35"]


def test_a_value_with_a_pipe_cannot_break_the_table(tmp_path):
    sweep = tmp_path / "multirun"
    write_job(sweep, 0, ["tags=[a|b]", "seed=0"], None)
    write_job(sweep, 1, ["tags=[a|b]", "seed=1"], None)
    write_job(sweep, 2, ["tags=[c|d]", "seed=1"], None)
    write_summary(sweep)
    markdown = (sweep / "sweep_summary.md").read_text()
    assert "- every job" not in markdown
    assert [row[1] for row in table(markdown)] == ["varying", "tags=[a\\|b] seed=0", "tags=[a\\|b] seed=1", "tags=[c\\|d] seed=1"]


@pytest.mark.slow
def test_a_2x2_quickstart_multirun_summarises_robustness_and_compares(tmp_path):
    """The issue's done-when: augmix on/off x 2 seeds, each evaluated after fit, in the summary and
    in compare.py's table and figure."""
    sweep = tmp_path / "multirun"
    overrides = [
        "experiment=quickstart", "logger=none", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1", "evaluate_after_fit.limit_per_set=10", "evaluate_after_fit.corruptions=[fog,contrast]",
        "evaluate_after_fit.severities=[1,3]", "evaluate_after_fit.progress=false", "augmix.enabled=true,false", "seed=0,1",
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", f"hydra.sweep.dir={sweep}", *overrides],
        cwd=tmp_path, env={**os.environ, "WANDB_MODE": "disabled"}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = (sweep / "sweep_summary.md").read_text()
    rows = table(markdown)
    assert [row[1] for row in rows[1:]] == [
        "augmix.enabled=True seed=0", "augmix.enabled=True seed=1", "augmix.enabled=False seed=0", "augmix.enabled=False seed=1"
    ]
    assert {"robustness/clean_error", "robustness/mean_corruption_error"} <= set(rows[0])
    assert all(row[-1] == "finished" and row[rows[0].index("robustness/clean_error")] for row in rows[1:])
    assert "every job: `experiment=quickstart logger=none" in markdown and "2 corruptions x severities 1,3" in markdown
    groups, paths = compare([sweep], sweep)
    assert [g.label for g in groups] == ["augmix.enabled=true", "augmix.enabled=false"] and groups[0].seeds == [0, 1]
    assert "| augmix.enabled=false | 0, 1 |" in paths["md"].read_text()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
