"""Every kind of bad input stops evaluate() with a clear error before any image reaches the model."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from augmix.errors import CheckpointError, ConfigError, DataError
from augmix.evaluation import commands as commands_module
from augmix.evaluation import evaluate
from tests.evaluation_fixtures import (
    digits_test,
    evaluate_config,
    write_cifar_c_fixture,
    write_imagenet_c_fixture,
)

CLASSES = [str(d) for d in range(10)]


@pytest.fixture(autouse=True)
def no_compute(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the evaluation loop started before the bad input was reported")

    monkeypatch.setattr(commands_module, "run_sets", fail)


def _run(checkpoint: Path, tmp_path: Path, overrides: list[str], data_overrides=([], False)) -> dict:
    return evaluate(evaluate_config(checkpoint, tmp_path / "out", overrides), data_overrides=data_overrides)


@pytest.fixture
def cifar_c(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    images, labels = digits_test(8)
    stacked = np.tile(images, (5, 1, 1, 1))
    root = write_cifar_c_fixture(tmp_path / "c", {"fog": stacked, "contrast": stacked}, labels)
    return root, stacked, labels


def _cifar(root: Path) -> list[str]:
    return [f"benchmark.root={root}", "benchmark.corruptions=[fog,contrast]"]


def test_missing_corruption_files_are_all_listed(tmp_path, checkpoint, cifar_c):
    root = cifar_c[0]
    with pytest.raises(DataError, match=r"missing 2 file\(s\): snow.npy, frost.npy.*zenodo"):
        _run(checkpoint, tmp_path, [f"benchmark.root={root}", "benchmark.corruptions=[fog,snow,frost]"])


@pytest.mark.parametrize(
    "array, shown",
    [
        (np.zeros((40, 32, 32, 3), dtype=np.float32), "float32 (40, 32, 32, 3)"),  # dtype
        (np.zeros((40, 28, 28, 3), dtype=np.uint8), "uint8 (40, 28, 28, 3)"),  # image size
        (np.zeros((35, 32, 32, 3), dtype=np.uint8), "uint8 (35, 32, 32, 3)"),  # rows vs labels
        (np.zeros((40, 32, 32), dtype=np.uint8), "uint8 (40, 32, 32)"),  # no channels
    ],
)
def test_wrong_array_shape_or_dtype(tmp_path, checkpoint, cifar_c, array, shown):
    root = cifar_c[0]
    np.save(root / "fog.npy", array)
    with pytest.raises(DataError, match=rf"fog.npy holds {re.escape(shown)}\. Expected uint8 \(40, 32, 32, 3\)"):
        _run(checkpoint, tmp_path, _cifar(root))


def test_labels_of_the_wrong_length(tmp_path, checkpoint, cifar_c):
    root, _, labels = cifar_c
    np.save(root / "labels.npy", np.tile(labels, 5)[:-5])  # 35 labels for 40 images
    with pytest.raises(DataError, match=r"fog.npy holds uint8 \(40, 32, 32, 3\).*\(35 labels\)"):
        _run(checkpoint, tmp_path, _cifar(root))
    np.save(root / "labels.npy", np.tile(labels, 5)[:-1])  # not 5 blocks
    with pytest.raises(DataError, match="labels.npy holds int64 \\(39,\\).*5 stacked severities"):
        _run(checkpoint, tmp_path, _cifar(root))


def test_labels_outside_the_classes(tmp_path, checkpoint, cifar_c):
    root, _, labels = cifar_c
    np.save(root / "labels.npy", np.tile(labels, 5) + 10)
    with pytest.raises(DataError, match="outside the model's 10 classes"):
        _run(checkpoint, tmp_path, _cifar(root))


def test_missing_severity_folders_are_all_listed(tmp_path, checkpoint):
    images, labels = digits_test(40)  # every digit appears
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", 1): images, ("fog", 3): images}, labels, CLASSES)
    with pytest.raises(DataError, match=r"missing 4 severity folder\(s\): snow/1, snow/2, snow/3, fog/2"):
        _run(
            checkpoint,
            tmp_path,
            [
                "benchmark=imagenetc",
                f"benchmark.root={root}",
                "benchmark.num_classes=10",
                "benchmark.corruptions=[fog,snow]",
                "benchmark.severities=[1,2,3]",
            ],
        )


def test_class_folders_must_match_the_clean_split(tmp_path, checkpoint):
    images, labels = digits_test(40)  # every digit appears
    names = [*CLASSES[:9], "n01440764"]
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", 1): images}, labels, names)
    with pytest.raises(
        DataError, match=r"fog/1 has 10 class folders.*missing e.g. \['9'\], unexpected e.g. \['n01440764'\]"
    ):
        _run(
            checkpoint,
            tmp_path,
            [
                "benchmark=imagenetc",
                f"benchmark.root={root}",
                "benchmark.num_classes=10",
                "benchmark.corruptions=[fog]",
                "benchmark.severities=[1]",
            ],
        )


def test_unreadable_jpeg_is_named_with_its_path(tmp_path, checkpoint):
    images, labels = digits_test(40)  # every digit appears
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", 1): images}, labels, CLASSES, ext="JPEG")
    broken = next((root / "fog" / "1" / "7").iterdir())
    broken.write_bytes(b"<html>403 Forbidden</html>")  # what a failed download leaves behind
    with pytest.raises(DataError, match=rf"1 unreadable image file\(s\).*{broken}"):
        _run(
            checkpoint,
            tmp_path,
            [
                "benchmark=imagenetc",
                f"benchmark.root={root}",
                "benchmark.num_classes=10",
                "benchmark.corruptions=[fog]",
                "benchmark.severities=[1]",
            ],
        )


def test_truncated_jpeg_is_named_when_decoded(tmp_path, monkeypatch):
    from augmix.data.sources import FolderSource
    from augmix.evaluation.inputs import BatchDataset, SourceSet

    images, labels = digits_test(4)
    write_imagenet_c_fixture(tmp_path, {("fog", 1): images}, labels, CLASSES, ext="JPEG")
    path = next((tmp_path / "fog" / "1").rglob("*.JPEG"))
    encoded = io.BytesIO()
    Image.fromarray(images[0]).save(encoded, format="JPEG")
    path.write_bytes(encoded.getvalue()[:200])  # a valid header, then nothing
    source = FolderSource(tmp_path / "fog" / "1")
    batch = BatchDataset([SourceSet(source, lambda image: image)], [(0, 0, 4)])[0]
    assert str(path) in batch["error"]  # the runner raises DataError with this message


def test_class_count_mismatch_of_a_lightning_checkpoint(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="trained for 10 classes but benchmark cifar100c has 100"):
        _run(checkpoint, tmp_path, ["benchmark=cifar100c", f"benchmark.root={tmp_path}"])


def test_class_count_mismatch_of_a_plain_state_dict(tmp_path):
    import timm

    path = tmp_path / "model.pth"
    torch.save(timm.create_model("cifar_wrn16_1", num_classes=100).state_dict(), path)
    with pytest.raises(CheckpointError, match="trained for 100 classes but benchmark synthetic has 10"):
        _run(path, tmp_path, ["benchmark=synthetic", "model.backbone=cifar_wrn16_1"])


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "benchmark.corruptions=[fog,haze]",
            r"benchmark.corruptions=\['fog', 'haze'\] is invalid: unknown name\(s\) \['haze'\]",
        ),
        ("benchmark.severities=[0,6]", r"benchmark.severities=\[0, 6\] is invalid"),
        ("benchmark.limit_per_set=0", "benchmark.limit_per_set=0 is invalid"),
        ("benchmark.protocol=official", "benchmark.protocol='official' is invalid"),
        ("benchmark.root=/nonexistent/CIFAR-10-C", "benchmark root /nonexistent/CIFAR-10-C does not exist"),
    ],
)
def test_bad_benchmark_settings(tmp_path, checkpoint, override, message):
    with pytest.raises((ConfigError, DataError), match=message):
        _run(checkpoint, tmp_path, [override])


def test_checkpoint_problems(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="does not exist"):
        _run(tmp_path / "missing.ckpt", tmp_path, [])
    plain = tmp_path / "plain.pth"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(ConfigError, match="plain state_dict.*model.backbone=NAME"):
        _run(plain, tmp_path, [])
    with pytest.raises(ConfigError, match="trained as 'cifar_wrn16_1'; drop model.backbone"):
        _run(checkpoint, tmp_path, ["model.backbone=resnet50"])
    with pytest.raises(ConfigError, match="brings its own data config"):
        _run(checkpoint, tmp_path, ["benchmark=synthetic"], data_overrides=([], True))


def test_command_line_data_keys_change_a_lightning_checkpoints_data(tmp_path, checkpoint, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        commands_module, "run_evaluation", lambda checkpoint, spec, data, *a, **k: seen.update(data=data)
    )
    _run(
        checkpoint,
        tmp_path,
        ["benchmark=synthetic", "data.eval_batch_size=7", "data.root=/elsewhere"],
        data_overrides=(["eval_batch_size", "root"], False),
    )
    assert seen["data"]["eval_batch_size"] == 7 and seen["data"]["root"] == "/elsewhere"  # plain, checked data
    assert seen["data"]["name"] == "digits"  # the rest is the checkpoint's own (not the composed cifar10)


def test_benchmark_selection_of_corruptions_and_severities():
    from augmix.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
    from augmix.evaluation.inputs import benchmark_spec

    node = {"name": "cifar10c", "format": "cifar_c", "root": "x"}
    full = benchmark_spec(node)
    assert full.corruptions == BENCHMARK_CORRUPTIONS and full.severities == (1, 2, 3, 4, 5) and full.complete
    assert benchmark_spec({**node, "extra": True}).corruptions == BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
    subset = benchmark_spec({**node, "corruptions": ["spatter", "fog", "fog"], "severities": [5, 1], "extra": False})
    assert subset.corruptions == ("fog", "spatter") and subset.severities == (1, 5) and not subset.complete
    assert not benchmark_spec({**node, "limit_per_set": 100}).complete


def test_cifar_c_labels_must_be_the_clean_splits_when_the_blocks_are_as_long(tmp_path, checkpoint):
    images, labels = digits_test(300)  # the whole digits test split: blocks as long as the clean set
    stacked = np.tile(images, (5, 1, 1, 1))
    root = write_cifar_c_fixture(tmp_path / "c", {"fog": stacked, "contrast": stacked}, labels)
    other = np.tile(np.random.default_rng(0).permutation(labels), 5)  # the same classes, other images
    np.save(root / "labels.npy", other)
    with pytest.raises(DataError, match=r"labels.npy does not match the clean test split.*\(s\) \[1, 2, 3, 4, 5\]"):
        _run(checkpoint, tmp_path, _cifar(root))
    np.save(root / "labels.npy", np.tile(labels, 5))
    with pytest.raises(AssertionError, match="evaluation loop started"):  # matching labels pass every check
        _run(checkpoint, tmp_path, _cifar(root))


def _imagenet_c(root: Path, protocol: str = "benchmark") -> list[str]:
    return [
        "benchmark=imagenetc",
        f"benchmark.root={root}",
        "benchmark.num_classes=10",
        "benchmark.corruptions=[fog]",
        "benchmark.severities=[1]",
        f"benchmark.protocol={protocol}",
    ]


def test_benchmark_protocol_refuses_images_of_another_size(tmp_path, checkpoint):
    images, labels = digits_test(40)  # every digit appears; the model takes 32x32
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", 1): padded}, labels, CLASSES, ext="JPEG")
    with pytest.raises(DataError, match=r"is 40x40 but the model takes 32x32.*benchmark.protocol=augmix_official"):
        _run(checkpoint, tmp_path, _imagenet_c(root))
    with pytest.raises(AssertionError, match="evaluation loop started"):  # resized by the eval transform
        _run(checkpoint, tmp_path, _imagenet_c(root, "augmix_official"))


def test_class_folders_in_another_order_are_named_as_such(tmp_path):
    from augmix.evaluation.inputs import benchmark_spec
    from augmix.evaluation.inputs.imagenet_c import imagenet_c_sets

    images, labels = digits_test(40)
    root = write_imagenet_c_fixture(tmp_path, {("fog", 1): images}, labels, CLASSES)
    node = {"name": "c", "format": "imagenet_c", "root": str(root), "corruptions": ["fog"], "severities": [1]}
    spec = benchmark_spec(node)
    unsorted = ["1", "0", *CLASSES[2:]]  # e.g. CIFAR-10's class order, which is not alphabetical
    with pytest.raises(DataError, match=r"clean test split's classes, but in another order.*index 0 is '0'.*has '1'"):
        imagenet_c_sets(spec, unsorted, lambda image: image, 32)


def test_only_global_rank_zero_scans_files_and_opens_the_output_folder(tmp_path, checkpoint, monkeypatch):
    images, labels = digits_test(40)
    root = write_imagenet_c_fixture(tmp_path / "c", {("fog", 1): images}, labels, CLASSES, ext="JPEG")
    next((root / "fog" / "1" / "7").iterdir()).write_bytes(b"not an image")  # found by the scan only
    monkeypatch.setenv("RANK", "1")  # a torchrun / SLURM rank other than zero, without LOCAL_RANK
    with pytest.raises(AssertionError, match="evaluation loop started"):
        _run(checkpoint, tmp_path, [*_imagenet_c(root), "benchmark.verify_files=true"])
    assert not (tmp_path / "out" / "robustness_sets").exists()
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(DataError, match="1 unreadable image file"):
        _run(checkpoint, tmp_path, _imagenet_c(root))


def test_mce_is_reported_for_imagenet_c_only():
    from augmix.evaluation.inputs import benchmark_spec

    imagenetc = {"name": "imagenetc", "format": "imagenet_c", "root": "x", "alexnet_baseline": True}
    assert benchmark_spec(imagenetc).reports_mce(1000)
    assert not benchmark_spec(imagenetc).reports_mce(10)  # e.g. a 10-class set in the ImageNet-C layout
    assert not benchmark_spec({**imagenetc, "name": "tinyimagenetc"}).reports_mce(200)
    assert not benchmark_spec({**imagenetc, "format": "cifar_c"}).reports_mce(1000)
    assert not benchmark_spec({**imagenetc, "format": "synthetic"}).reports_mce(1000)
    assert not benchmark_spec({**imagenetc, "alexnet_baseline": False}).reports_mce(1000)
