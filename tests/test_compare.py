"""compare.py: several runs' robustness reports side by side, grouped over seeds, refused when they differ."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from augmix.comparison import compare, compare_command, default_output
from augmix.comparison.reading import run_folders
from augmix.errors import ConfigError, RunDirError
from augmix.evaluation import evaluate
from tests.conftest import ROOT
from tests.evaluation_fixtures import evaluate_config, lightning_checkpoint

CORRUPTIONS = ["gaussian_noise", "fog"]


def report(clean: float, corrupted: dict[str, float], **changes) -> dict:
    """A robustness.json as augmix.evaluation writes it (the keys compare.py reads, and the rest)."""
    mean = sum(corrupted.values()) / len(corrupted)
    base = {
        "benchmark": "synthetic", "format": "synthetic", "root": None, "checkpoint": "ckpt", "checkpoint_sha256": "0" * 64,
        "checkpoint_kind": "lightning", "backbone": "cifar_wrn16_1", "data": "photos", "num_classes": 12,
        "protocol": "benchmark", "regenerated": True, "complete": False, "limit_per_set": 100,
        "regeneration": {"generator": "augmix.corruptions", "format": "on the fly", "seed": 0, "table": 32},
        "corruptions": list(corrupted), "severities": [1, 2, 3, 4, 5], "clean_error": clean,
        "corruption_errors": {c: {str(s): e for s in range(1, 6)} for c, e in corrupted.items()},
        "mean_errors": dict(corrupted), "mean_corruption_error": mean, "mean_extra_corruption_error": None,
        "mCE": None, "relative_mCE": None, "corruption_ce": None, "relative_corruption_ce": None,
        "calibration": {"clean": {"rms": 1.0, "ece": 1.0}, "corrupted": {"rms": 2.0, "ece": 2.0}}, "sets": {},
    }
    return {**base, **changes}


def write_run(folder: Path, summary: dict, seed: int | None = 0, enabled: bool = True, lr: float = 0.05) -> Path:
    """A run folder: robustness.json and the .hydra/config.yaml train.py leaves (seed None: no config)."""
    folder.mkdir(parents=True)
    (folder / "robustness.json").write_text(json.dumps(summary))
    if seed is not None:
        config = {
            "seed": seed, "task_name": "quickstart_photos", "paths": {"output_dir": str(folder)},
            "data": {"name": "photos", "num_workers": 0}, "model": {"backbone": "cifar_wrn16_1", "optimizer": {"lr": lr}},
            "augmix": {"enabled": enabled, "severity": 3}, "trainer": {"max_epochs": 12, "enable_progress_bar": True},
        }
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_seeds_are_grouped_with_mean_std_and_reductions_against_the_first_run(tmp_path):
    runs = [
        write_run(tmp_path / "a0", report(10.0, {"gaussian_noise": 40.0, "fog": 20.0}), seed=0, enabled=False),
        write_run(tmp_path / "b0", report(9.0, {"gaussian_noise": 20.0, "fog": 10.0}), seed=0, enabled=True),
        write_run(tmp_path / "a1", report(12.0, {"gaussian_noise": 44.0, "fog": 24.0}), seed=1, enabled=False),
        write_run(tmp_path / "b1", report(11.0, {"gaussian_noise": 24.0, "fog": 14.0}), seed=1, enabled=True),
    ]
    groups, paths = compare(runs, tmp_path / "out")
    assert [g.label for g in groups] == ["augmix.enabled=false", "augmix.enabled=true"]
    assert [g.seeds for g in groups] == [[0, 1], [0, 1]]
    assert groups[0].stats["mean_corruption_error"] == pytest.approx((32.0, 2.8284271))  # mean of 30, 34; stdev
    assert groups[1].stats["mean_corruption_error"] == pytest.approx((17.0, 2.8284271))
    markdown = paths["md"].read_text()
    assert "| augmix.enabled=false | 0, 1 | 11.00 ± 1.41 | 32.00 ± 2.83 | baseline |" in markdown
    assert "| augmix.enabled=true | 0, 1 | 10.00 ± 1.41 | 17.00 ± 2.83 | +46.9% |" in markdown  # (32 - 17) / 32
    assert "| gaussian_noise | 42.00 ± 2.83 | 22.00 ± 2.83 |" in markdown
    assert "REGENERATED" in markdown and "PARTIAL" in markdown and "first 100 images per set" in markdown
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert [row["group"] for row in rows] == ["augmix.enabled=false", "augmix.enabled=true"]
    assert float(rows[1]["mean_corruption_error_reduction_pct"]) == pytest.approx(46.875)
    assert rows[1]["mCE_reduction_pct"] == "" and rows[0]["seeds"] == "0 1"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_without_settings_stand_alone_and_settings_that_do_not_train_are_ignored(tmp_path):
    runs = [
        write_run(tmp_path / "x", report(10.0, {"fog": 20.0}), seed=None),
        write_run(tmp_path / "y", report(10.0, {"fog": 30.0}), seed=0),
        write_run(tmp_path / "z", report(10.0, {"fog": 10.0}), seed=1),  # differs in paths and seed only
    ]
    groups, _ = compare(runs, tmp_path / "out")
    assert [len(g.runs) for g in groups] == [1, 2]
    assert groups[0].label == "x" and groups[1].stats["mean_corruption_error"] == pytest.approx((20.0, 14.1421356))


def test_an_evaluate_run_takes_its_settings_from_the_training_run_of_its_checkpoint(tmp_path):
    trained = write_run(tmp_path / "train", report(5.0, {"fog": 6.0}), seed=3, lr=0.1)
    evaluated = tmp_path / "eval"
    write_run(evaluated, report(5.0, {"fog": 6.0}, checkpoint=str(trained / "checkpoints" / "last.ckpt")), seed=None)
    (evaluated / ".hydra").mkdir()
    (evaluated / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"checkpoint": "x", "model": {"backbone": None}}))
    groups, _ = compare([trained, evaluated], tmp_path / "out")
    assert len(groups) == 1 and groups[0].seeds == [3, 3]


def test_a_multirun_folder_gives_its_jobs_in_job_order_and_holds_the_results(tmp_path):
    sweep = tmp_path / "multirun"
    for job in (0, 1, 2, 10):
        write_run(sweep / str(job), report(10.0, {"fog": 20.0 + job}), seed=job)
    (sweep / "sweep_summary.md").write_text("")
    assert [p.name for p in run_folders([sweep])] == ["0", "1", "2", "10"]
    assert default_output([str(sweep)]) == sweep and default_output([str(sweep / "0")]) is None
    (sweep / "3" / ".hydra").mkdir(parents=True)  # a job whose evaluation never ran
    with pytest.raises(RunDirError, match=r"multirun/3 has no robustness.json \(1 of the 5 jobs"):
        run_folders([sweep])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"benchmark": "cifar10c", "format": "cifar_c"}, "their benchmark differ (synthetic (synthetic) vs cifar10c (cifar_c))"),
        ({"data": "digits"}, "their training set differ (photos vs digits)"),
        ({"corruptions": ["fog"], "mean_errors": {"fog": 1.0}}, "their corruptions differ"),
        ({"severities": [5]}, "their severities differ ([1, 2, 3, 4, 5] vs [5])"),
        ({"limit_per_set": None}, "their limit_per_set differ (100 vs None)"),
        ({"protocol": "augmix_official"}, "their protocol differ (benchmark vs augmix_official)"),
        ({"regenerated": False, "regeneration": None}, "their corruption files differ (REGENERATED vs released files)"),
        ({"regeneration": {"generator": "augmix.corruptions", "format": "on the fly", "seed": 1, "table": 32}}, "their regenerated sets differ"),
        ({"complete": True}, "their completeness differ (PARTIAL vs complete)"),
    ],
)
def test_reports_measured_differently_are_refused_with_one_line(tmp_path, changes, reason):
    corrupted = {"gaussian_noise": 30.0, "fog": 20.0}
    first = write_run(tmp_path / "first", report(10.0, corrupted))
    second = write_run(tmp_path / "second", report(10.0, corrupted, **changes), seed=1)
    with pytest.raises(ConfigError) as refused:
        compare([first, second], tmp_path / "out")
    message = str(refused.value)
    assert reason in message and str(second) in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "robustness.json does not exist"),
        ('{"benchmark": "synthetic", "clean_error": NaN}', "is damaged (NaN is not JSON)"),
        ('{"benchmark": "synth', "is damaged (Unterminated string"),
        ("[1, 2]", "is damaged (it holds a list, not a report)"),
        (json.dumps(report(10.0, {"fog": 1.0}, clean_error="ten")), "is damaged: clean_error is 'ten', expected a number"),
        (json.dumps(report(10.0, {"fog": 1.0}, mean_errors={})), "is damaged: mean_errors lacks ['fog']"),
    ],
)
def test_missing_or_damaged_reports_are_one_line(tmp_path, content, reason):
    folder = tmp_path / "run"
    folder.mkdir()
    if content is not None:
        (folder / "robustness.json").write_text(content)
    else:
        (folder / ".hydra").mkdir()
    with pytest.raises(RunDirError) as failed:
        compare([folder], tmp_path / "out")
    assert reason in str(failed.value) and "\n" not in str(failed.value)


def test_a_damaged_hydra_config_is_one_line(tmp_path):
    run = write_run(tmp_path / "run", report(10.0, {"fog": 1.0}))
    (run / ".hydra" / "config.yaml").write_text("model: [unclosed\n")
    with pytest.raises(RunDirError, match=r"config.yaml is damaged \(.*\); restore it or leave the run out"):
        compare([run], tmp_path / "out")


def test_reports_written_by_the_evaluation_are_compared(tmp_path):
    checkpoint = lightning_checkpoint(tmp_path / "train" / "checkpoints" / "last.ckpt")
    (tmp_path / "train" / ".hydra").mkdir()  # what train.py leaves beside the checkpoints
    (tmp_path / "train" / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "model": {}, "augmix": {}}))
    overrides = [
        "benchmark=synthetic", f"benchmark.corruptions=[{','.join(CORRUPTIONS)}]", "benchmark.severities=[1]",
        "benchmark.limit_per_set=8", "data.eval_batch_size=8",
    ]
    evaluate(evaluate_config(checkpoint, tmp_path / "eval", overrides), data_overrides=([], False))
    folders = [tmp_path / "eval", tmp_path / "eval"]  # the same evaluation twice: one recipe, two runs
    groups, paths = compare(folders, tmp_path / "out")
    assert len(groups) == 1 and groups[0].seeds == [0, 0]  # settings of the checkpoint's training run
    assert groups[0].stats["mean_corruption_error"][1] == 0.0
    assert "benchmark `synthetic` on `digits`" in paths["md"].read_text()


def compose_compare(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("compare", overrides=list(overrides))


def test_compare_command_takes_a_multirun_folder_and_writes_into_it(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    for job in (0, 1):
        write_run(sweep / str(job), report(10.0, {"fog": 20.0}), seed=job)
    paths = compare_command(compose_compare(f"runs=[{sweep}]"))
    assert paths["md"] == sweep / "comparison.md" and (sweep / "comparison.png").is_file()
    assert f"Wrote {sweep / 'comparison.md'}, comparison.csv and comparison.png" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"runs=\[DIR,...\] is required"):
        compare_command(compose_compare())
    with pytest.raises(ConfigError, match=r"runs=\[\] is invalid"):
        compare_command(compose_compare("runs=[]", f"out={tmp_path / 'o'}"))


@pytest.mark.slow
def test_compare_command_refuses_with_one_line_and_exit_code_2(tmp_path):
    first = write_run(tmp_path / "first", report(10.0, {"fog": 20.0}))
    second = write_run(tmp_path / "second", report(10.0, {"fog": 20.0}, complete=True), seed=1)
    result = subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), f"runs=[{first},{second}]", f"hydra.run.dir={tmp_path / 'cmd'}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: cannot compare {second} with the baseline {first}")
    assert "Traceback" not in result.stderr
