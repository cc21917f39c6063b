"""evaluate.py suite=...: every kind of set in its released format, on tiny fixtures built here.

One digits suite run (shared by most tests below) holds synthetic -C, CIFAR-10-C-bar files, -P in both
released formats (the same sequences), CIFAR-10.1 and CIFAR-10.2 files holding the clean images, and a
member whose root is missing; a second run on a tiny ImageNet val split with a 1000-way model whose
logits are a fixed bias checks the ImageNet-R/A class restriction, ImageNet-V2's numeric folders and
ImageNet-Sketch's wnid folders.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from augmix.corruptions.names import CIFAR10_C_BAR, IMAGENET_C_BAR
from augmix.evaluation import run as run_module
from augmix.evaluation.inputs.imagenet_c import severity_folder
from augmix.evaluation.inputs.imagenet_classes import IMAGENET_A_WNIDS, IMAGENET_R_WNIDS
from augmix.evaluation.inputs.perturbed import PerturbationSet
from augmix.evaluation.inputs.spec import benchmark_spec
from augmix.evaluation.run import ResultStore
from augmix.perturbations import flip_probability, ranking_distance
from tests.evaluation_fixtures import digits_test, evaluate_config, lightning_checkpoint, write_cifar_c_fixture
from tests.suite_fixtures import (
    bias_model,
    imagenet_config,
    imagenet_wnids,
    run,
    with_members,
    write_cifar10_1,
    write_cifar10_2,
    write_digits_p,
    write_png_folders,
)

N = 4  # images (videos) per set
PERTURBATIONS = ["rotate", "gaussian_noise"]


def strict(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds bare {constant}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def digits_inputs(tmp_path_factory) -> dict[str, Path]:
    """A genuine train.py checkpoint and every digits-suite fixture."""
    tmp = tmp_path_factory.mktemp("digits_suite")
    images, labels = digits_test(N)
    stacked = {name: np.tile(images, (5, 1, 1, 1)) for name in ("ripple", "lines")}
    return {
        "checkpoint": lightning_checkpoint(tmp / "run" / "last.ckpt"),
        "cifar_p": write_digits_p(tmp / "digits-P", "cifar_p", PERTURBATIONS, N),
        "imagenet_p": write_digits_p(tmp / "digits-P-video", "imagenet_p", PERTURBATIONS, N),
        "cbar": write_cifar_c_fixture(tmp / "digits-C-bar", stacked, labels),
        "cifar10_1": write_cifar10_1(tmp / "CIFAR-10.1", images, labels),
        "cifar10_2": write_cifar10_2(tmp / "CIFAR-10.2", images, labels),
        "tmp": tmp,
    }


def digits_suite(inputs: dict[str, Path], out: Path, overrides: list[str] = ()) -> dict:
    cfg = evaluate_config(inputs["checkpoint"], out, [
        "suite=digits", f"suite.limit_per_set={N}", "suite.progress=false", "suite.members.digitsc.corruptions=[fog]",
        "suite.members.digitsc.severities=[1]", f"suite.members.digitsp.root={inputs['cifar_p']}",
        f"suite.members.digitsp.perturbations=[{','.join(PERTURBATIONS)}]", "data.eval_batch_size=40", *overrides,
    ])
    cfg = with_members(cfg, {
        "digitsp_video": {"name": "digitsp_video", "format": "imagenet_p", "root": str(inputs["imagenet_p"]),
                          "perturbations": PERTURBATIONS},
        "digitscbar": {"name": "digitscbar", "format": "cifar_c", "root": str(inputs["cbar"]),
                       "corruption_set": "cifar10_c_bar", "corruptions": ["ripple", "lines"], "severities": [1, 5]},
        "cifar10_1": {"name": "cifar10_1", "format": "cifar10_1", "root": str(inputs["cifar10_1"])},
        "cifar10_2": {"name": "cifar10_2", "format": "cifar10_2", "root": str(inputs["cifar10_2"])},
        "elsewhere": {"name": "elsewhere", "format": "cifar10_1", "root": str(inputs["tmp"] / "absent")},
    })
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = run(cfg, ["eval_batch_size"])
    summary["printed"] = printed.getvalue()
    return summary


@pytest.fixture(scope="module")
def digits_run(digits_inputs) -> tuple[dict, Path]:
    out = digits_inputs["tmp"] / "out"
    return digits_suite(digits_inputs, out), out


def test_a_suite_runs_every_member_found_and_lists_the_missing_one(digits_run):
    summary, out = digits_run
    assert list(summary["benchmarks"]) == ["digitsc", "digitsp", "digitsp_video", "digitscbar", "cifar10_1", "cifar10_2"]
    assert summary["not_found"]["elsewhere"].startswith(f"not found at {out.parent / 'absent'}")
    assert {s["kind"] for s in summary["benchmarks"].values()} == {"corruption", "perturbation", "shift"}
    assert summary["sets"]["clean"]["n"] == N and summary["complete"] is False and summary["regenerated"] is True
    assert strict(out / "robustness.json")["headline"] == summary["headline"]
    for name in ("robustness.png", "robustness_digitscbar.png", "robustness_p.png", "robustness.csv"):
        assert (out / name).stat().st_size > 0, name
    rows = (out / "robustness.csv").read_text().splitlines()
    assert rows[0].startswith("benchmark,set,n,error") and len(rows) == 1 + 1 + 1 + 2 + 2 + 2 * 2 + 1 + 1


def test_sets_holding_the_clean_images_give_the_clean_error(digits_run):
    """CIFAR-10.1 / 10.2 files holding the first N clean images: same figures, gap 0; so do -C-bar
    files whose severity blocks hold them."""
    summary, _ = digits_run
    clean = summary["sets"]["clean"]
    for name in ("cifar10_1", "cifar10_2"):
        section = summary["benchmarks"][name]
        assert section["sets"]["images"] == clean and section["gap"] == 0 and section["reference"] == "the clean test set"
    cbar = summary["benchmarks"]["digitscbar"]
    assert cbar["corruption_set"] == "cifar10_c_bar" and cbar["mean_corruption_error"] == clean["error"]
    assert cbar["mCE"] is None and cbar["complete"] is False


def test_p_figures_are_the_benchmark_metrics_of_the_models_predictions(digits_run, digits_inputs):
    """The loop's per-video rows (videos batched whole, 40 images: one 31-frame video a batch) equal
    ImageNet-P/test.py's metrics on the model's logits computed here frame by frame."""
    summary, _ = digits_run
    from augmix.evaluation.checkpoints import create_backbone, load_weights, read_checkpoint

    checkpoint = read_checkpoint(digits_inputs["checkpoint"])
    model = load_weights(create_backbone("cifar_wrn16_1", 10), checkpoint, "cifar_wrn16_1").eval()
    for name, noise in (("rotate", False), ("gaussian_noise", True)):
        frames = np.load(digits_inputs["cifar_p"] / f"{name}.npy")  # (N, frames, 32, 32, 3)
        pixels = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float().div(255).sub(0.5).div(0.5)
        with torch.no_grad():
            logits = torch.stack([model(video) for video in pixels]).numpy()
        found = summary["benchmarks"]["digitsp"]["sets"][name]
        assert found["n"] == N
        assert found["flip_probability"] == pytest.approx(100 * flip_probability(logits.argmax(-1), noise), abs=1e-9)
        assert found["top5_distance"] == pytest.approx(ranking_distance(logits, noise), rel=1e-6)


def test_both_p_formats_of_the_same_sequences_give_the_same_figures(digits_run):
    """Lossless mp4 videos decode to the .npy frames; the means over videos do not depend on their order."""
    summary, _ = digits_run
    arrays, videos = summary["benchmarks"]["digitsp"], summary["benchmarks"]["digitsp_video"]
    for name in PERTURBATIONS:
        for figure in ("flip_probability", "top5_distance", "zipf_distance"):
            assert videos["sets"][name][figure] == pytest.approx(arrays["sets"][name][figure], rel=1e-9, abs=1e-12)
    assert arrays["regenerated"] and arrays["mFP"] is not None and arrays["mFR"] is None and arrays["mT5D"] is None


def test_reports_start_with_the_summary_table_and_say_mfr_is_not_reported(digits_run):
    summary, out = digits_run
    text = (out / "robustness.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# Robustness suite: digits" and lines[5] == "| benchmark | figure | value | labels |"
    assert "| digitsp | mFP (%) |" in text and "| cifar10_1 | top-1 error (%) |" in text
    assert "| digitscbar | -C-bar mean corruption error (%) |" in text and "| elsewhere | not found |" in text
    assert "not reported (AlexNet baseline unverified)" in text and "## Corruption robustness: digitsc" in text
    assert "## Perturbation stability: digitsp" in text and "REGENERATED" in text
    assert "robustness suite digits" in summary["printed"]


def count_computed_sets(monkeypatch) -> list[int]:
    """Every set whose figures are computed (per-image or per-video) appends to the list returned."""
    computed: list[int] = []
    real_metrics, real_figures = run_module.metrics_from_outcomes, PerturbationSet.figures
    monkeypatch.setattr(run_module, "metrics_from_outcomes", lambda table, top5: computed.append(1) or real_metrics(table, top5))
    monkeypatch.setattr(PerturbationSet, "figures", lambda self, table: computed.append(1) or real_figures(self, table))
    return computed


def test_a_second_run_recomputes_nothing(digits_run, digits_inputs, monkeypatch):
    summary, out = digits_run
    computed = count_computed_sets(monkeypatch)
    again = digits_suite(digits_inputs, out)
    assert computed == [] and again["benchmarks"] == summary["benchmarks"]


@pytest.mark.slow
def test_a_killed_suite_recomputes_only_what_was_left(digits_run, digits_inputs, monkeypatch):
    summary, _ = digits_run
    computed = count_computed_sets(monkeypatch)
    real_write, written = ResultStore.write, []

    def killed_on_the_fifth(self, key, metrics):
        if len(written) == 4:
            raise KeyboardInterrupt  # killed while the fifth set was being saved
        written.append(key)
        real_write(self, key, metrics)

    fresh = digits_inputs["tmp"] / "killed"
    monkeypatch.setattr(ResultStore, "write", killed_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        digits_suite(digits_inputs, fresh)
    monkeypatch.setattr(ResultStore, "write", real_write)
    computed.clear()
    resumed = digits_suite(digits_inputs, fresh)
    total = 1 + 1 + 2 + 2 + 2 * 2 + 1 + 1  # clean, fog-1, 2 + 2 perturbations, C-bar 2 x 2, CIFAR-10.1, -10.2
    assert len(computed) == total - 4
    assert resumed["benchmarks"] == summary["benchmarks"]


def test_imagenet_shift_sets_restrict_map_and_read_numbers(tmp_path):
    """ImageNet-R and -A: the 1000-way argmax (index 0, in neither list) is always wrong, the argmax
    over each set's own 200 classes is right; each list picks a different class. ImageNet-V2: folder
    "10" is class 10 (sorted as strings it would be class 0); ImageNet-Sketch: wnid folders by the
    clean split's order."""
    wnids = imagenet_wnids()
    r_first, a_first = wnids.index(IMAGENET_R_WNIDS[0]), wnids.index(IMAGENET_A_WNIDS[0])
    assert r_first != a_first and wnids[0] not in IMAGENET_R_WNIDS + IMAGENET_A_WNIDS
    checkpoint = bias_model(tmp_path / "bias.pth", {0: 3.0, 10: 2.5, r_first: 2.0, a_first: 1.0, 999: 0.5})  # no ties in the top 5
    root = write_png_folders(tmp_path / "imagenet" / "val", wnids)
    write_png_folders(tmp_path / "imagenet-r", [IMAGENET_R_WNIDS[0]], per_folder=2)
    write_png_folders(tmp_path / "imagenet-a", [IMAGENET_A_WNIDS[0]], per_folder=2)
    write_png_folders(tmp_path / "v2", ["10", "2"])
    write_png_folders(tmp_path / "sketch", [wnids[0], wnids[5]])
    cfg = imagenet_config(checkpoint, root.parent, tmp_path / "out", ["suite=imagenet", "suite.limit_per_set=4", "suite.progress=false"])
    cfg = with_members(cfg, {
        "imagenet_r": {**cfg.suite.members.imagenet_r, "root": str(tmp_path / "imagenet-r")},
        "imagenet_a": {**cfg.suite.members.imagenet_a, "root": str(tmp_path / "imagenet-a")},
        "imagenet_v2": {**cfg.suite.members.imagenet_v2, "root": str(tmp_path / "v2")},
        "imagenet_sketch": {**cfg.suite.members.imagenet_sketch, "root": str(tmp_path / "sketch")},
    })
    summary = run(cfg)
    assert set(summary["not_found"]) == {"imagenetc", "imagenetcbar", "imagenetp"}
    assert summary["clean_error"] == 75.0  # the first 4 val images, classes 0..3: the bias always says 0
    for name in ("imagenet_r", "imagenet_a"):
        section = summary["benchmarks"][name]
        assert section["error"] == 0.0 and section["outputs"] == 200 and section["sets"]["images"]["n"] == 2
        assert section["sets"]["reference"]["n"] == 4 and "ImageNet-200" in section["reference"]
    v2, sketch = summary["benchmarks"]["imagenet_v2"], summary["benchmarks"]["imagenet_sketch"]
    # class 10 is in the top 5, class 2 is not; read as strings ("10" = 0, "2" = 1) it would be 50 and 0
    assert v2["error"] == 100.0 and v2["top5_error"] == 50.0
    assert sketch["error"] == 50.0 and sketch["reference"] == "the clean test set"


def test_the_r_and_a_lists_are_the_published_ones():
    """200 sorted wnids each, 86 shared, at the indices the authors' eval.py scripts publish."""
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    for subset, first, last in ((IMAGENET_R_WNIDS, [1, 2, 4, 6, 8, 9], [981, 983, 988]),
                                (IMAGENET_A_WNIDS, [6, 11, 13, 15, 17, 22], [986, 987, 988])):
        indices = [wnids.index(w) for w in subset]
        assert len(set(subset)) == 200 and list(subset) == sorted(subset)
        assert indices[:6] == first and indices[-3:] == last
    assert len(set(IMAGENET_R_WNIDS) & set(IMAGENET_A_WNIDS)) == 86


def test_c_bar_names_and_severity_folders_are_the_releases(tmp_path):
    assert list(CIFAR10_C_BAR)[-1] == "transverse_chromatic_abberation" and len(CIFAR10_C_BAR) == len(IMAGENET_C_BAR) == 10
    assert set(CIFAR10_C_BAR) ^ set(IMAGENET_C_BAR) == {
        "pinch_and_twirl", "ripple", "circular_motion_blur", "lines", "transverse_chromatic_abberation",
        "caustic_refraction", "perlin_noise", "plasma_noise", "cocentric_sine_waves", "single_frequency_greyscale",
    }
    spec = benchmark_spec({"name": "imagenetcbar", "format": "imagenet_c", "root": str(tmp_path), "corruption_set": "imagenet_c_bar"})
    assert spec.corruptions == tuple(IMAGENET_C_BAR) and spec.complete
    (tmp_path / "caustic_refraction" / "2.35").mkdir(parents=True)  # as make_imagenet_c_bar.py names it
    (tmp_path / "caustic_refraction" / "2").mkdir()  # as the preprocessed download does
    assert severity_folder(spec, "caustic_refraction", 1).name == "2.35"
    assert severity_folder(spec, "caustic_refraction", 2).name == "2"


def test_a_single_shift_benchmark_runs_as_a_suite_of_one(digits_inputs, tmp_path):
    cfg = evaluate_config(digits_inputs["checkpoint"], tmp_path / "out", [
        "benchmark=cifar10_1", f"benchmark.root={digits_inputs['cifar10_1']}", "benchmark.progress=false", f"benchmark.limit_per_set={N}",
    ])
    with contextlib.redirect_stdout(io.StringIO()):
        summary = run(cfg)
    assert summary["suite"] == "cifar10_1" and list(summary["benchmarks"]) == ["cifar10_1"]
    assert summary["benchmarks"]["cifar10_1"]["gap"] == 0


def test_image_of_another_size_in_an_image_folder_set_is_resized_like_the_clean_set(tmp_path):
    """ImageNet-R/A/Sketch/V2 images come in every size: the eval transform resizes them (no size check)."""
    folder = tmp_path / "a" / IMAGENET_A_WNIDS[0]
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((50, 70, 3), dtype=np.uint8)).save(folder / "wide.png")
    from augmix.data import ResizeCenterCrop
    from augmix.data.sources import TensorSource
    from augmix.evaluation.inputs.shift import ShiftSpec, shift_sets

    wnids = imagenet_wnids()
    clean = TensorSource(torch.zeros((1, 3, 8, 8), dtype=torch.uint8), torch.zeros(1), wnids)
    sets = shift_sets(ShiftSpec("imagenet_a", "imagenet_a", tmp_path / "a"), clean, ResizeCenterCrop(36, 32))
    images, targets = sets[0].load(0, 1)
    assert tuple(images.shape) == (1, 3, 32, 32) and targets.tolist() == [0]
    assert sets[0].class_indices.tolist()[0] == wnids.index(IMAGENET_A_WNIDS[0])


def test_p_and_restricted_sets_give_the_same_figures_on_any_number_of_ranks(digits_inputs, tmp_path):
    """Ranks take contiguous blocks of whole videos (3 ranks, 4 videos: one rank holds one video, a
    batch holds one video of 31 frames); the gathered rows are the single-process ones."""
    from torch import nn

    from augmix.data.sources import TensorSource
    from augmix.evaluation.inputs.perturbed import perturbation_spec, perturbed_sets
    from augmix.evaluation.inputs.shift import ShiftSet
    from augmix.evaluation.run import run_sets
    from tests.test_evaluation_distributed import ThreadRanks

    spec = perturbation_spec({"name": "p", "format": "cifar_p", "root": str(digits_inputs["cifar_p"]), "perturbations": PERTURBATIONS}, "p.")
    images, labels = digits_test(N)
    source = TensorSource(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels), [str(d) for d in range(10)])
    restricted = ShiftSet("images", source, lambda image: image, None, torch.tensor([3, 1, 4, 0, 5, 9, 2, 6, 8, 7]))
    restricted.member = "r"
    sets = [*perturbed_sets(spec, [str(d) for d in range(10)], 300, 32), restricted]
    for evalset in sets[:-1]:
        evalset.member = "p"
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

    def evaluate(world: int) -> dict:
        store = run_module.StoreGroup(tmp_path / str(world), {name: ResultStore(tmp_path / str(world) / name, {}) for name in "pr"})
        store.open()
        return ThreadRanks(world).run(lambda fabric: run_sets(fabric, model, lambda x: x.float() / 255, sets, store, 40, 0, 10, False))[0]

    alone, sharded = evaluate(1), evaluate(3)
    assert set(alone) == {"p.rotate", "p.gaussian_noise", "r.images"} and alone["p.rotate"]["n"] == N
    for key, metrics in alone.items():
        for figure, value in metrics.items():
            assert sharded[key][figure] == pytest.approx(value, rel=1e-6), (key, figure)


def small_suite(inputs: dict[str, Path], out: Path, overrides: list[str] = ()) -> dict:
    """The digits suite with its own two members only: synthetic fog-1 and 2 perturbations."""
    cfg = evaluate_config(inputs["checkpoint"], out, [
        "suite=digits", f"suite.limit_per_set={N}", "suite.progress=false", "suite.members.digitsc.corruptions=[fog]",
        "suite.members.digitsc.severities=[1]", f"suite.members.digitsp.root={inputs['cifar_p']}",
        f"suite.members.digitsp.perturbations=[{','.join(PERTURBATIONS)}]", *overrides,
    ])
    with contextlib.redirect_stdout(io.StringIO()):
        return run(cfg)


def test_wandb_gets_every_summary_number_both_figures_and_the_tables(digits_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    logged = {}
    from pytorch_lightning.loggers import WandbLogger

    real = WandbLogger.log_metrics
    monkeypatch.setattr(WandbLogger, "log_metrics", lambda self, metrics, step=None: logged.update(metrics) or real(self, metrics, step))
    summary = small_suite(digits_inputs, tmp_path / "out", ["logger=wandb"])
    expected = {f"robustness/{key}" for key, value in summary["headline"].items() if value is not None}
    assert expected <= set(logged) and "robustness/digitsp/mFP" in expected and "robustness/digitsc/mean_corruption_error" in expected
    assert logged["robustness/regenerated"] == 1.0 and logged["robustness/digitsp/flip_probability/rotate"] >= 0
    files = [str(p.relative_to(tmp_path)) for p in (tmp_path / "out" / "wandb").rglob("*") if p.is_file()]
    for media in ("images/robustness/digitsc/figure", "images/robustness/perturbation/figure", "table/robustness/summary",
                  "table/robustness/digitsc/table", "table/robustness/digitsp/table"):
        assert any(f"media/{media}" in path for path in files), (media, files)


def test_a_stop_signal_keeps_the_finished_sets_of_a_suite(digits_inputs, tmp_path, monkeypatch, capsys):
    """SIGTERM arriving while the third set is being computed: two sets are kept, exit status 0."""
    import signal

    from augmix import interrupts

    real_write, written = ResultStore.write, []

    def write_then_signal(self, key, metrics):
        real_write(self, key, metrics)
        written.append(key)
        if len(written) == 2:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(ResultStore, "write", write_then_signal)
    with pytest.raises(interrupts.Stopped) as stopped:
        small_suite(digits_inputs, tmp_path / "out")
    assert stopped.value.code == 0 and written == ["clean", "fog-1"]
    assert capsys.readouterr().err.strip() == (
        f"SIGTERM: stopped evaluation after 2 of 4 sets; the finished sets are kept in {tmp_path / 'out' / 'robustness_sets'}; "
        "run the same command again to continue."
    )
    assert sorted(p.name for p in (tmp_path / "out" / "robustness_sets" / "digitsc").iterdir()) == ["fog-1.json", "run.json"]


@pytest.mark.parametrize(("suite", "data", "members"), [
    ("cifar10", "cifar10", ["cifar10c", "cifar10cbar", "cifar10p", "cifar10_1", "cifar10_2"]),
    ("cifar100", "cifar100", ["cifar100c", "cifar100p"]),
    ("tinyimagenet", "tinyimagenet", ["tinyimagenetc", "tinyimagenetp"]),
    ("imagenet", "imagenet", ["imagenetc", "imagenetcbar", "imagenetp", "imagenet_r", "imagenet_a", "imagenet_sketch", "imagenet_v2"]),
    ("digits", "digits", ["digitsc", "digitsp"]),
])
def test_every_suite_composes_with_its_data_config_and_overridable_members(tmp_path, suite, data, members):
    from augmix.evaluation.commands import evaluation_spec

    first = members[0]
    cfg = evaluate_config(tmp_path / "x.ckpt", tmp_path, [f"suite={suite}", f"suite.members.{members[-1]}=null",
                                                         f"suite.members.{first}.limit_per_set=7"])
    spec = evaluation_spec(cfg)
    assert cfg.data.name == data and list(spec.members) == members[:-1]
    root = spec.members[first].root  # under ${paths.data_dir}; none for synthetic -C
    assert spec.members[first].limit_per_set == 7 and (root is None or root.parent.name == "data")
