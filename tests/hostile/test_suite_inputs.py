"""Bad inputs to the robustness suite: each is one line (exit status 2) naming the file and what was
expected, before any image reaches the model. Before this suite, evaluate.py read none of these sets.

| Case | Before | After |
|------|--------|-------|
| -P ``.npy`` holding single images (rank 4) | not readable by evaluate.py | "<file> holds single images (4, 32, 32, 3), not sequences; expected (N=4, frames=31, H, W, 3) with frames along axis 1" |
| -P ``.npy`` with frames along axis 0 | not readable | "<file> holds (31, 4, 32, 32, 3): frames are along axis 0; expected (N=4, frames=31, H, W, 3) with frames along axis 1" |
| ImageNet-P ``.mp4`` that does not decode | not readable | "<file> does not decode as an mp4 video (Invalid data found when processing input); re-download or regenerate it" |
| -P set that make_perturbed.py has not finished | not readable | "<dir> holds a -P set that make_perturbed.py has not finished writing; run the same make_perturbed.py command again ..." |
| ImageNet-R folder of a wnid outside its 200 classes | a plain ImageFolder numbers it among the others: every label after it shifts | "<dir>/n01440764 is not one of ImageNet-R's 200 classes (imagenet_r_wnids of github.com/hendrycks/imagenet-r eval.py); <root> must hold only imagenet_r's class folders" |
| ImageNet-V2 folder that is not a plain integer in 0..999 (``ten``, ``1000``, ``010``) | ImageFolder sorts names as strings: ``10`` before ``2``, labels silently permuted | "<dir>/ten is not an ImageNet-V2 class folder: ImageNet-V2 names its folders by class index, a plain integer in 0..999; ..." |
| a 10-class checkpoint with a 1000-class member (ImageNet-R) | - | "suite member imagenet_r (imagenet_r) needs a model of 1000 classes but <ckpt> is evaluated with data digits of 10; choose the suite of the checkpoint's dataset or leave the member out (suite.members.imagenet_r=null)" |
| CIFAR-10.2 ``.npz`` without ``labels``; the old pickled ``.npy`` release under the ``.npz`` name | - | "<file> has no 'labels' array (it has ['images']); expected CIFAR-10.2's images and labels" / "<file> is not a readable .npz archive of arrays (Object arrays cannot be loaded when allow_pickle=False); re-download it" (never unpickled) |
| CIFAR-10.1 labels outside CIFAR-10's classes | - | "<data> / cifar10.1_v6_labels.npy has labels in 0..12; expected CIFAR-10's classes 0..9" |
| a typo in a member's key (``+suite.members.digitsp.rooot=...``) | - | "unknown config key suite.members.digitsp.rooot (did you mean suite.members.digitsp.root?); ..." |
| ``benchmark.KEY=...`` next to ``suite=...`` | - | "benchmark=... / benchmark.KEY=... do nothing with suite=...: ...; change one with suite.members.NAME.KEY=VALUE ..." |
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augmix.evaluation import commands
from augmix.evaluation import suite as suite_module
from augmix.evaluation.inputs.imagenet_classes import IMAGENET_R_WNIDS
from augmix.regenerated import IN_PROGRESS_NAME
from tests.evaluation_fixtures import digits_test, evaluate_config
from tests.suite_fixtures import (
    bias_model,
    imagenet_config,
    imagenet_wnids,
    with_members,
    write_cifar10_1,
    write_cifar10_2,
    write_png_folders,
)

N = 4


@pytest.fixture(autouse=True)
def no_compute(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the evaluation loop started before the bad input was reported")

    monkeypatch.setattr(suite_module, "run_sets", fail)


def cli(cfg, capsys) -> str:
    """evaluate.py's entry point in-process: the one line it printed (exit status 2 asserted)."""
    import evaluate

    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "\n" not in err, err
    return err[len("Error: "):]


def digits_suite(checkpoint: Path, out: Path, members: dict[str, dict], overrides: list[str] = ()):
    cfg = evaluate_config(checkpoint, out, ["suite=digits", f"suite.limit_per_set={N}", "suite.progress=false",
                                            "suite.members.digitsc=null", "suite.members.digitsp=null", *overrides])
    return with_members(cfg, members)


def p_member(root: Path, fmt: str = "cifar_p") -> dict:
    return {"digitsp": {"name": "digitsp", "format": fmt, "root": str(root), "perturbations": ["rotate"]}}


def test_a_p_array_of_single_images_is_refused(tmp_path, checkpoint, capsys):
    root = tmp_path / "P"
    root.mkdir()
    np.save(root / "rotate.npy", digits_test(N)[0])
    message = cli(digits_suite(checkpoint, tmp_path / "out", p_member(root)), capsys)
    assert message == (f"{root / 'rotate.npy'} holds single images (4, 32, 32, 3), not sequences; "
                       "expected (N=300, frames=31, H, W, 3) with frames along axis 1")


def test_a_p_array_with_frames_along_axis_0_is_refused(tmp_path, checkpoint, capsys):
    root = tmp_path / "P"
    root.mkdir()
    np.save(root / "rotate.npy", np.zeros((31, 300, 32, 32, 3), dtype=np.uint8))
    message = cli(digits_suite(checkpoint, tmp_path / "out", p_member(root)), capsys)
    assert message == (f"{root / 'rotate.npy'} holds (31, 300, 32, 32, 3): frames are along axis 0; "
                       "expected (N=300, frames=31, H, W, 3) with frames along axis 1")


def test_an_mp4_that_does_not_decode_is_named(tmp_path, checkpoint, capsys):
    video = tmp_path / "P" / "rotate" / "3" / "00000.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # an mp4 signature, nothing behind it
    message = cli(digits_suite(checkpoint, tmp_path / "out", p_member(tmp_path / "P", "imagenet_p")), capsys)
    assert message.startswith(f"{video} does not decode as an mp4 video (") and message.endswith("; re-download or regenerate it")


def test_an_unfinished_p_set_is_refused(tmp_path, checkpoint, capsys):
    root = tmp_path / "P"
    root.mkdir()
    (root / IN_PROGRESS_NAME).write_text(json.dumps({"regenerated": True}))
    message = cli(digits_suite(checkpoint, tmp_path / "out", p_member(root)), capsys)
    assert message.startswith(f"{root} holds a -P set that make_perturbed.py has not finished writing")


def test_a_10_class_checkpoint_is_refused_for_a_1000_class_member(tmp_path, checkpoint, capsys):
    members = {"imagenet_r": {"name": "imagenet_r", "format": "imagenet_r", "root": str(tmp_path)}}
    message = cli(digits_suite(checkpoint, tmp_path / "out", members), capsys)
    assert message == (
        f"suite member imagenet_r (imagenet_r) needs a model of 1000 classes but {checkpoint} is evaluated with data "
        "digits of 10; choose the suite of the checkpoint's dataset or leave the member out (suite.members.imagenet_r=null)"
    )


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> tuple[Path, Path]:
    """A 1000-way plain state_dict and an ImageNet val split of the 1000 wnids."""
    tmp = tmp_path_factory.mktemp("imagenet")
    return bias_model(tmp / "model.pth", {0: 1.0}), write_png_folders(tmp / "imagenet" / "val", imagenet_wnids()).parent


def shift_member(name: str, root: Path) -> dict:
    return {name: {"name": name, "format": name, "root": str(root)}}


def test_an_imagenet_r_folder_outside_its_200_classes_is_refused(tmp_path, imagenet, capsys):
    outsider = imagenet_wnids()[0]
    assert outsider not in IMAGENET_R_WNIDS
    root = write_png_folders(tmp_path / "imagenet-r", [IMAGENET_R_WNIDS[0], outsider])
    cfg = with_members(imagenet_config(*imagenet, tmp_path / "out", ["suite=imagenet", "suite.progress=false"]),
                       shift_member("imagenet_r", root))
    assert cli(cfg, capsys) == (
        f"{root / outsider} is not one of ImageNet-R's 200 classes (imagenet_r_wnids of github.com/hendrycks/imagenet-r "
        f"eval.py); {root} must hold only imagenet_r's class folders"
    )


@pytest.mark.parametrize("folder", ["ten", "1000", "010"])
def test_an_imagenet_v2_folder_that_is_not_a_class_index_is_refused(tmp_path, imagenet, capsys, folder):
    root = write_png_folders(tmp_path / "v2", ["0", folder])
    cfg = with_members(imagenet_config(*imagenet, tmp_path / "out", ["suite=imagenet", "suite.progress=false"]),
                       shift_member("imagenet_v2", root))
    assert cli(cfg, capsys) == (
        f"{root / folder} is not an ImageNet-V2 class folder: ImageNet-V2 names its folders by class index, a plain "
        f"integer in 0..999; check that {root} holds the ImageNet-V2 release"
    )


def test_cifar10_2_without_labels_or_in_the_old_pickled_format_is_refused(tmp_path, checkpoint, capsys):
    images, labels = digits_test(N)
    root = tmp_path / "CIFAR-10.2"
    root.mkdir()
    np.savez(root / "cifar102_test.npz", images=images)
    members = shift_member("cifar10_2", root)
    message = cli(digits_suite(checkpoint, tmp_path / "out", members), capsys)
    assert message == f"{root / 'cifar102_test.npz'} has no 'labels' array (it has ['images']); expected CIFAR-10.2's images and labels"
    with open(root / "cifar102_test.npz", "wb") as handle:  # the earlier release: a pickled dict in an .npy
        np.save(handle, np.array({"images": images, "labels": labels}, dtype=object), allow_pickle=True)
    message = cli(digits_suite(checkpoint, tmp_path / "out", members), capsys)
    assert message == (f"{root / 'cifar102_test.npz'} is not a readable .npz archive of arrays (Object arrays cannot be "
                       "loaded when allow_pickle=False); re-download it")
    write_cifar10_2(root, images, labels)  # the released format passes
    assert cli_passes(digits_suite(checkpoint, tmp_path / "out", members))


def cli_passes(cfg) -> bool:
    """Everything checked: the run reached the evaluation loop (which ``no_compute`` stops)."""
    from augmix.evaluation import evaluate

    with pytest.raises(AssertionError, match="the evaluation loop started"):
        evaluate(cfg, data_overrides=([], False))
    return True


def test_cifar10_1_labels_outside_the_classes_are_refused(tmp_path, checkpoint, capsys):
    images, labels = digits_test(N)
    root = write_cifar10_1(tmp_path / "CIFAR-10.1", images, labels + 9)
    message = cli(digits_suite(checkpoint, tmp_path / "out", shift_member("cifar10_1", root)), capsys)
    assert message == (f"{root / 'cifar10.1_v6_data.npy'} / cifar10.1_v6_labels.npy has labels in "
                       f"{labels.min() + 9}..{labels.max() + 9}; expected CIFAR-10's classes 0..9")


def test_a_misspelt_member_key_and_benchmark_keys_next_to_a_suite_are_one_line(tmp_path, checkpoint, capsys, monkeypatch):
    cfg = evaluate_config(checkpoint, tmp_path / "out", ["suite=digits", "+suite.members.digitsp.rooot=x"])
    assert cli(cfg, capsys).startswith(
        "unknown config key suite.members.digitsp.rooot (did you mean suite.members.digitsp.root?); check the spelling"
    )
    # as evaluate.py sees `suite=digits benchmark.root=x` on its command line
    monkeypatch.setattr(commands, "command_line_choices", lambda group: ["benchmark.root=x"] if group == "benchmark" else [])
    message = cli(evaluate_config(checkpoint, tmp_path / "out", ["suite=digits", "benchmark.root=x"]), capsys)
    assert message.startswith("benchmark=... / benchmark.KEY=... do nothing with suite=...")
