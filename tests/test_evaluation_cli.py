"""evaluate.py and make_corrupted.py as users run them: real subprocesses, exit codes, messages.
The slow ones: two CPU ranks through Lightning, and the quickstart's evaluation after training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.evaluation_fixtures import (
    compose_config,
    digits_test,
    write_imagenet_c_fixture,
)
from tests.scripts import run_script


def _run(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )


def test_written_set_evaluates_from_the_command_line(tmp_path, checkpoint, capfd):
    import make_corrupted

    make_corrupted.main(
        compose_config(
            "make_corrupted",
            [  # Hydra's pass-through: the entry point's own code
                "data=digits",
                "format=imagenet_c",
                f"out={tmp_path / 'digits-c'}",
                "corruptions=[contrast]",
                "limit=40",
            ],
        )
    )
    assert json.loads((tmp_path / "digits-c" / "regenerated.json").read_text())["format"] == "imagenet-c"
    assert len(list((tmp_path / "digits-c" / "contrast" / "5").rglob("*.JPEG"))) == 40

    run = run_script(
        capfd,
        "evaluate.py",
        f"checkpoint={checkpoint}",
        "benchmark=tinyimagenetc",
        "benchmark.num_classes=10",
        f"benchmark.root={tmp_path / 'digits-c'}",
        "benchmark.corruptions=[contrast]",
        "benchmark.severities=[1,5]",
        "benchmark.limit_per_set=40",
        f"hydra.run.dir={tmp_path / 'out'}",
        cwd=ROOT,
        env={"WANDB_MODE": "disabled"},
    )
    assert run.returncode == 0, run.stderr
    assert "mean corruption error" in run.stdout and "REGENERATED" in run.stdout
    summary = json.loads((tmp_path / "out" / "robustness.json").read_text())
    assert summary["regenerated"] and summary["regeneration"]["seed"] == 0
    assert summary["sets"]["contrast-5"]["n"] == 40 and summary["data"] == "digits"
    assert summary["clean_top5_error"] is not None  # tinyimagenetc reports top-5


def test_bad_input_prints_one_line_and_exits_2(tmp_path, capsys):
    import evaluate

    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(compose_config("evaluate", [f"paths.output_dir={tmp_path}"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: checkpoint=PATH is required") and "Traceback" not in err


@pytest.mark.slow
def test_two_cpu_ranks_give_exactly_the_single_process_result(tmp_path, checkpoint):
    common = [
        f"checkpoint={checkpoint}",
        "benchmark=synthetic",
        "benchmark.corruptions=[gaussian_noise,fog]",
        "benchmark.severities=[3]",
        "benchmark.limit_per_set=37",
        "benchmark.batch_size=8",
        "trainer.accelerator=cpu",
    ]
    single = _run("evaluate.py", *common, f"hydra.run.dir={tmp_path / 'one'}")
    assert single.returncode == 0, single.stderr
    double = _run(
        "evaluate.py",
        *common,
        "trainer.devices=2",
        "+trainer.strategy=ddp",
        f"hydra.run.dir={tmp_path / 'two'}",
        timeout=600,
    )
    assert double.returncode == 0, double.stderr
    one = json.loads((tmp_path / "one" / "robustness.json").read_text())["sets"]
    two = json.loads((tmp_path / "two" / "robustness.json").read_text())["sets"]
    assert one.keys() == two.keys()
    for key in one:  # 37 images split 18 / 19: every image counted once, counts reduced exactly
        assert (two[key]["n"], two[key]["correct"]) == (one[key]["n"], one[key]["correct"]) == (37, one[key]["correct"])
        assert two[key]["loss"] == pytest.approx(one[key]["loss"], rel=1e-5)
        assert two[key]["ece"] == pytest.approx(one[key]["ece"], rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_an_unreadable_image_on_one_rank_stops_both_ranks_with_one_line(tmp_path, checkpoint):
    images, labels = digits_test(40)  # every digit appears
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", 1): images}, labels, [str(d) for d in range(10)], "JPEG")
    last = max((root / "fog" / "1" / "9").iterdir())  # the set's last image: in rank 1's half
    last.write_bytes(last.read_bytes()[:200])  # a valid header, so only decoding finds it
    run = _run(
        "evaluate.py",
        f"checkpoint={checkpoint}",
        "benchmark=imagenetc",
        "benchmark.num_classes=10",
        f"benchmark.root={root}",
        "benchmark.corruptions=[fog]",
        "benchmark.severities=[1]",
        "benchmark.limit_per_set=40",
        "benchmark.verify_files=false",  # the up-front check would find it; this covers decoding on one rank
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "+trainer.strategy=ddp",
        f"hydra.run.dir={tmp_path / 'out'}",
        timeout=600,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count(f"Error: cannot decode image {last}") == 2, run.stderr  # once per rank
    assert "Traceback" not in run.stderr  # rank 0 does not die in the gather rank 1 never joins
    assert (tmp_path / "out" / "robustness_sets" / "clean.json").is_file()  # the set before is kept


@pytest.mark.slow
def test_quickstart_evaluates_after_training(tmp_path):
    run = _run(
        "train.py",
        "experiment=quickstart",
        "logger=csv",
        "trainer.max_epochs=1",
        "evaluate_after_fit.limit_per_set=20",
        f"hydra.run.dir={tmp_path}",
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "robustness.json").read_text())
    assert summary["benchmark"] == "synthetic" and summary["regenerated"] is True
    assert summary["checkpoint"].startswith(str(tmp_path / "checkpoints"))
    assert len(summary["corruptions"]) == 15 and summary["severities"] == [1, 2, 3, 4, 5]
    assert summary["sets"]["clean"]["n"] == 20 and summary["mean_corruption_error"] is not None
    for name in ("robustness.csv", "robustness.md", "robustness.png"):
        assert (tmp_path / name).is_file()
    assert "mean corruption error" in run.stdout
