"""evaluate.py's pipeline on small fixtures in the real on-disk formats: exact errors, synthetic
sets equal to written ones, resume after an interruption, reports, loggers, post-fit evaluation."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from pytorch_lightning.loggers import CSVLogger

from augmix.data import CenterCropOrPad, ResizeCenterCrop
from augmix.errors import ConfigError
from augmix.evaluation import evaluate, evaluate_after_fit, write_corrupted
from augmix.evaluation import run as run_module
from augmix.evaluation.inputs import benchmark_spec, corrupted_transform
from augmix.evaluation.run import ResultStore
from tests.evaluation_fixtures import (
    compose_config,
    digits_test,
    evaluate_config,
    write_cifar_c_fixture,
    write_folder_images,
    write_imagenet_c_fixture,
)

NAMES = ["contrast", "fog"]


def _run(checkpoint: Path, out: Path, overrides: list[str]) -> dict:
    return evaluate(evaluate_config(checkpoint, out, overrides), data_overrides=([], False))


@pytest.fixture(scope="module")
def clean_as_corrupted(tmp_path_factory, checkpoint) -> tuple[dict, Path, str]:
    """One evaluation, shared by the tests below: CIFAR-C files whose blocks hold the clean images."""
    tmp = tmp_path_factory.mktemp("clean_as_corrupted")
    images, labels = digits_test(16)
    root = write_cifar_c_fixture(tmp / "c", {name: np.tile(images, (5, 1, 1, 1)) for name in NAMES}, labels)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = _run(
            checkpoint,
            tmp / "out",
            [
                f"benchmark.root={root}",
                f"benchmark.corruptions=[{','.join(NAMES)}]",
                "benchmark.limit_per_set=16",
                "benchmark.batch_size=6",
                "logger=csv",
            ],
        )
    return summary, tmp / "out", printed.getvalue()


def test_corruption_files_holding_clean_images_give_the_clean_error(clean_as_corrupted):
    summary = clean_as_corrupted[0]
    clean = summary["sets"]["clean"]
    assert clean["n"] == 16 and len(summary["sets"]) == 1 + 2 * 5
    for key, metrics in summary["sets"].items():
        assert metrics == clean, key  # error, loss, calibration: identical images, identical figures
    assert summary["mean_corruption_error"] == clean["error"] == summary["clean_error"]
    assert summary["regenerated"] is False and summary["complete"] is False
    assert set(summary["corruption_errors"]) == set(NAMES)


def test_folder_sets_holding_clean_images_give_the_clean_error(tmp_path, checkpoint):
    images, labels = digits_test(40)
    classes = [str(d) for d in range(10)]
    assert set(labels) == set(range(10))
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", s): images for s in (1, 2)}, labels, classes)
    summary = _run(
        checkpoint,
        tmp_path / "out",
        [
            "benchmark=imagenetc",
            f"benchmark.root={root}",
            "benchmark.num_classes=10",
            "benchmark.corruptions=[fog]",
            "benchmark.severities=[1,2]",
            "benchmark.limit_per_set=40",
        ],
    )
    clean = summary["sets"]["clean"]
    for key in ("fog-1", "fog-2"):  # same images in ImageFolder order: same counts, same mean loss
        assert summary["sets"][key]["correct"] == clean["correct"]
        assert summary["sets"][key]["correct_top5"] == clean["correct_top5"]
        assert summary["sets"][key]["loss"] == pytest.approx(clean["loss"], rel=1e-5)
    assert summary["clean_top5_error"] is not None
    assert summary["mCE"] is None and summary["relative_mCE"] is None  # AlexNet's baseline is ImageNet-C's only


def test_folder_datasets_need_only_their_val_split(tmp_path):
    images, labels = digits_test(40)
    write_folder_images(tmp_path / "imagenet" / "val", images, labels, [f"n{d:08d}" for d in range(10)])
    torch.save(timm.create_model("cifar_wrn16_1", num_classes=10).state_dict(), tmp_path / "model.pth")
    summary = evaluate(
        compose_config(
            "evaluate",
            [
                f"checkpoint={tmp_path / 'model.pth'}",
                "model.backbone=cifar_wrn16_1",
                f"paths.output_dir={tmp_path / 'out'}",
                "benchmark=synthetic",
                "benchmark.corruptions=[contrast]",
                "benchmark.severities=[1]",
                "benchmark.limit_per_set=6",
                "benchmark.num_workers=0",
                "benchmark.progress=false",
                "data=imagenet",
                f"data.root={tmp_path / 'imagenet'}",  # val/ only: no train/ anywhere
                "data.num_classes=10",
                "trainer.accelerator=cpu",
            ],
        ),
        data_overrides=([], True),
    )
    assert summary["data"] == "imagenet" and summary["sets"]["contrast-1"]["n"] == 6
    assert summary["regeneration"]["table"] == 224  # Resize 256 + CenterCrop 224, then the 224px constants


def test_synthetic_sets_equal_the_written_cifar_c_files(tmp_path, checkpoint):
    data = compose_config("train", ["experiment=quickstart", f"paths.output_dir={tmp_path}"]).data
    written = write_corrupted(
        data, "cifar_c", tmp_path / "digits-c", corruptions=["gaussian_noise", "jpeg_compression"], seed=3, limit=12
    )
    common = [
        "benchmark.corruptions=[gaussian_noise,jpeg_compression]",
        "benchmark.severities=[1,5]",
        "benchmark.limit_per_set=12",
        "benchmark.batch_size=5",
    ]
    from_files = _run(checkpoint, tmp_path / "a", [f"benchmark.root={written}", *common])
    on_the_fly = _run(checkpoint, tmp_path / "b", ["benchmark=synthetic", "benchmark.seed=3", *common])
    assert from_files["sets"] == on_the_fly["sets"]
    assert from_files["regenerated"] and on_the_fly["regenerated"]
    assert from_files["sets"]["gaussian_noise-5"]["loss"] != from_files["sets"]["clean"]["loss"]


def test_writing_a_folder_dataset_needs_only_its_val_split(tmp_path):
    images, labels = digits_test(40)  # every digit appears
    root = _val_only_imagenet(tmp_path / "imagenet", images, labels)  # no train/ anywhere
    data = compose_config("make_corrupted", ["data=imagenet", f"data.root={root}", "data.num_classes=10"]).data
    out = write_corrupted(data, "cifar_c", tmp_path / "c", corruptions=["contrast"], limit=2)
    assert np.load(out / "contrast.npy", mmap_mode="r").shape == (10, 224, 224, 3)  # ResizeCenterCrop 224
    assert np.load(out / "labels.npy").tolist() == [0, 0] * 5  # val/ in ImageFolder order: class 0 first


def test_writing_an_empty_split_is_a_clear_error(tmp_path, monkeypatch):
    from augmix.data import AugMixDataModule
    from augmix.data.sources import TensorSource
    from augmix.errors import DataError

    empty = TensorSource(torch.zeros((0, 3, 32, 32), dtype=torch.uint8), torch.zeros(0), [str(d) for d in range(10)])
    monkeypatch.setattr(AugMixDataModule, "source", lambda self, split: empty)
    data = compose_config("make_corrupted", ["data=digits"]).data
    with pytest.raises(DataError, match="test split of data digits .* has no images to corrupt"):
        write_corrupted(data, "cifar_c", tmp_path / "c", corruptions=["contrast"])


def _cifar_fixture(tmp_path: Path) -> Path:
    images, labels = digits_test(12)
    rng = np.random.default_rng(0)
    noisy = {
        name: np.clip(np.tile(images, (5, 1, 1, 1)) + rng.integers(-60, 60, (60, 32, 32, 3)), 0, 255).astype(np.uint8)
        for name in NAMES
    }
    return write_cifar_c_fixture(tmp_path / "c", noisy, labels)


def test_resume_after_an_interruption_computes_only_the_missing_sets(tmp_path, checkpoint, monkeypatch):
    root = _cifar_fixture(tmp_path)
    overrides = [
        f"benchmark.root={root}",
        f"benchmark.corruptions=[{','.join(NAMES)}]",
        "benchmark.severities=[2,4]",
        "benchmark.limit_per_set=12",
    ]
    real_write = ResultStore.write
    written = []

    def crash_on_third(self, key, metrics):
        if len(written) == 2:
            raise KeyboardInterrupt  # killed while the third set was being saved
        written.append(key)
        real_write(self, key, metrics)

    monkeypatch.setattr(ResultStore, "write", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        _run(checkpoint, tmp_path / "out", overrides)
    sets_dir = tmp_path / "out" / "robustness_sets"
    assert sorted(p.name for p in sets_dir.iterdir()) == sorted(["run.json", *(f"{k}.json" for k in written)])
    assert not (tmp_path / "out" / "robustness.json").exists()

    monkeypatch.setattr(ResultStore, "write", real_write)
    computed = []
    real_metrics = run_module.metrics_from_outcomes
    monkeypatch.setattr(
        run_module,
        "metrics_from_outcomes",
        lambda table, top5: computed.append(len(table)) or real_metrics(table, top5),
    )
    before = {k: (sets_dir / f"{k}.json").stat().st_mtime_ns for k in written}
    resumed = _run(checkpoint, tmp_path / "out", overrides)
    assert len(computed) == 5 - len(written)  # clean + 2 corruptions x 2 severities, minus finished
    assert {k: (sets_dir / f"{k}.json").stat().st_mtime_ns for k in written} == before  # not rewritten

    fresh = _run(checkpoint, tmp_path / "fresh", overrides)
    assert resumed["sets"] == fresh["sets"] and resumed["mean_corruption_error"] == fresh["mean_corruption_error"]

    with pytest.raises(ConfigError, match="different evaluation.*limit_per_set"):
        _run(checkpoint, tmp_path / "out", [*overrides[:-1], "benchmark.limit_per_set=10"])


def test_resume_with_top5_reported_finds_it_in_every_stored_set(tmp_path, checkpoint):
    root = _cifar_fixture(tmp_path)
    overrides = [f"benchmark.root={root}", "benchmark.corruptions=[fog]", "benchmark.severities=[1,3]"]
    _run(checkpoint, tmp_path / "out", [*overrides, "benchmark.top5=false"])
    (tmp_path / "out" / "robustness_sets" / "fog-3.json").unlink()  # interrupted before the last set
    resumed = _run(checkpoint, tmp_path / "out", [*overrides, "benchmark.top5=true"])
    assert all(metrics["top5_error"] is not None for metrics in resumed["sets"].values())
    assert resumed["clean_top5_error"] is not None and None not in resumed["corruption_top5_errors"]["fog"].values()
    assert resumed["sets"] == _run(checkpoint, tmp_path / "fresh", [*overrides, "benchmark.top5=true"])["sets"]


def _val_only_imagenet(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    write_folder_images(root / "val", images, labels, [f"n{d:08d}" for d in range(10)])
    return root


def test_resume_refuses_results_of_another_clean_split(tmp_path):
    images, labels = digits_test(40)
    _val_only_imagenet(tmp_path / "a", images, labels)
    _val_only_imagenet(tmp_path / "b", images[::-1].copy(), labels[::-1].copy())
    torch.save(timm.create_model("cifar_wrn16_1", num_classes=10).state_dict(), tmp_path / "model.pth")

    def run(data_root: Path) -> dict:
        cfg = compose_config(
            "evaluate",
            [
                f"checkpoint={tmp_path / 'model.pth'}",
                "model.backbone=cifar_wrn16_1",
                f"paths.output_dir={tmp_path / 'out'}",
                "benchmark=synthetic",
                "benchmark.corruptions=[contrast]",
                "benchmark.severities=[1]",
                "benchmark.limit_per_set=4",
                "benchmark.progress=false",
                "data=imagenet",
                f"data.root={data_root}",
                "data.num_classes=10",
                "data.num_workers=0",
                "trainer.accelerator=cpu",
            ],
        )
        return evaluate(cfg, data_overrides=([], True))

    run(tmp_path / "a")
    with pytest.raises(ConfigError, match=r"different evaluation \(differs in \['clean'\]\)"):
        run(tmp_path / "b")  # the same settings on other images must not reuse a's sets


def test_replacing_stale_results_tolerates_files_already_removed(tmp_path, monkeypatch):
    ResultStore(tmp_path, {"run": 1}).open()
    ResultStore(tmp_path, {"run": 1}).write("clean", {"n": 1})
    ghost = tmp_path / "fog-1.json"  # listed, then removed by another process before this one unlinks it
    real_glob = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: [*real_glob(self, pattern), ghost])
    replacing = ResultStore(tmp_path, {"run": 2}, replace_stale=True)
    replacing.open()
    assert json.loads((tmp_path / "run.json").read_text())["description"] == {"run": 2}
    assert replacing.read("clean") is None and not (tmp_path / "clean.json").exists()


def test_report_files_exist_and_parse(clean_as_corrupted):
    summary, out, printed = clean_as_corrupted
    on_disk = json.loads((out / "robustness.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    for key in (
        "benchmark",
        "checkpoint",
        "clean_error",
        "corruption_errors",
        "mean_corruption_error",
        "mCE",
        "relative_mCE",
        "calibration",
        "regenerated",
    ):
        assert key in on_disk
    assert set(on_disk["corruption_errors"]["fog"]) == {"1", "2", "3", "4", "5"}
    rows = list(csv.DictReader((out / "robustness.csv").read_text().splitlines()))
    assert len(rows) == 1 + 2 * 5 and rows[0]["corruption"] == "clean"
    assert (rows[1]["corruption"], rows[1]["severity"]) == ("fog", "1")  # canonical corruption order
    assert float(rows[1]["error"]) == pytest.approx(on_disk["corruption_errors"]["fog"]["1"], rel=1e-5)
    markdown = (out / "robustness.md").read_text()
    assert "| contrast |" in markdown and "mean corruption error" in markdown and "PARTIAL" in markdown
    with Image.open(out / "robustness.png") as image:
        assert image.format == "PNG" and image.width > 200
    assert "mean corruption error" in printed and "contrast" in printed  # the terminal table


def test_csv_logger_receives_the_figures(clean_as_corrupted):
    logged = next((clean_as_corrupted[1] / "csv").rglob("metrics.csv")).read_text()
    assert "robustness/clean_error" in logged and "robustness/mean_corruption_error" in logged


def test_regenerated_and_partial_labels_reach_the_csv_the_scalars_and_the_wandb_table(clean_as_corrupted):
    from unittest.mock import MagicMock

    from pytorch_lightning.loggers import WandbLogger

    from augmix.evaluation.reports import log_summary

    summary, out, _ = clean_as_corrupted
    rows = list(csv.DictReader((out / "robustness.csv").read_text().splitlines()))
    assert {(row["regenerated"], row["complete"]) for row in rows} == {("false", "false")}
    logged = next((out / "csv").rglob("metrics.csv")).read_text()
    assert "robustness/regenerated" in logged and "robustness/complete" in logged
    wandb = MagicMock(spec=WandbLogger)
    log_summary([wandb], {**summary, "regenerated": True}, out / "robustness.png")
    scalars = wandb.log_metrics.call_args.args[0]
    assert (scalars["robustness/regenerated"], scalars["robustness/complete"]) == (1.0, 0.0)
    table = wandb.log_table.call_args.kwargs
    assert table["columns"][-2:] == ["regenerated", "complete"]
    assert [row[-2:] for row in table["data"]] == [[True, False]] * len(NAMES)


def test_evaluate_after_fit_writes_reports_into_the_run_dir(tmp_path, checkpoint):
    cfg = compose_config(
        "train",
        [
            "experiment=quickstart",
            f"paths.output_dir={tmp_path}",
            "evaluate_after_fit.limit_per_set=12",
            "evaluate_after_fit.corruptions=[contrast]",
            "evaluate_after_fit.severities=[1]",
            "evaluate_after_fit.progress=false",
        ],
    )
    logger = CSVLogger(tmp_path, name="csv", version="")
    trainer = SimpleNamespace(
        is_global_zero=True,
        loggers=[logger],
        checkpoint_callback=SimpleNamespace(best_model_path=str(checkpoint), last_model_path=""),
    )
    metrics = evaluate_after_fit(cfg, trainer)
    summary = json.loads((tmp_path / "robustness.json").read_text())
    assert metrics == {
        "robustness/clean_error": summary["clean_error"],
        "robustness/mean_corruption_error": summary["mean_corruption_error"],
    }
    assert summary["regenerated"] and summary["benchmark"] == "synthetic" and summary["sets"]["clean"]["n"] == 12
    assert evaluate_after_fit(cfg, SimpleNamespace(is_global_zero=False)) == {}


def test_protocols_choose_the_corrupted_image_preprocessing():
    node = {"name": "imagenetc", "format": "imagenet_c", "root": "x"}
    resize = ResizeCenterCrop(256, 224)
    assert isinstance(corrupted_transform(benchmark_spec(node), 224, resize), CenterCropOrPad)
    assert corrupted_transform(benchmark_spec({**node, "protocol": "augmix_official"}), 224, resize) is resize


def test_wandb_offline_gets_the_table_and_the_heatmap(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    root = _cifar_fixture(tmp_path)
    _run(
        checkpoint,
        tmp_path / "out",
        [f"benchmark.root={root}", "benchmark.corruptions=[fog]", "benchmark.limit_per_set=12", "logger=wandb"],
    )
    files = [p.relative_to(tmp_path) for p in (tmp_path / "out" / "wandb").rglob("*") if p.is_file()]
    assert any("media/table/robustness/table" in str(p) for p in files), files
    assert any("media/images/robustness/heatmap" in str(p) for p in files), files
