"""-P benchmarks (augmix.perturbations): metrics against hand-computed values, sequence generation,
writers and strict readers of the released formats, and make_perturbed.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augmix.errors import DataError
from augmix.perturbations import (
    ALL_PERTURBATIONS,
    CifarPSequences,
    StabilityMeter,
    VideoSequences,
    flip_probability,
    frame_count,
    mean_over_perturbations,
    normalised_mean,
    open_cifar_p,
    perturb_batch,
    perturb_sequence,
    ranking_distance,
    read_video,
    sequence_rng,
    write_cifar_p,
    write_imagenet_p,
    writer,
)
from augmix.perturbations.metrics import pair_distance, ranks
from augmix.perturbations.sequences import _drip
from augmix.perturbations.video import encode_mp4
from augmix.regenerated import IN_PROGRESS_NAME
from tests.evaluation_fixtures import compose_config, digits_test

# ---- metrics: flip probability ------------------------------------------------------------------


def test_noise_compares_every_frame_with_the_first_the_others_consecutive_frames():
    video = [0, 1, 1, 1, 1]  # one early flip, then stable
    assert flip_probability([video], noise=True) == 1.0  # frames 1..4 all differ from frame 0
    assert flip_probability([video], noise=False) == 0.25  # only the 0 -> 1 step flips


def test_difficulty_compares_frames_that_many_apart_except_for_noise():
    video = [0, 0, 1, 1, 0, 0]
    assert flip_probability([video], noise=False, difficulty=1) == pytest.approx(2 / 5)  # 0-1 1-2 2-3 3-4 4-5
    assert flip_probability([video], noise=False, difficulty=2) == 1.0  # 0-2 1-3 2-4 3-5 all flip
    assert flip_probability([video], noise=False, difficulty=3) == pytest.approx(2 / 3)  # 0-3 1-4 2-5
    # noise difficulties are separate (harder) sets; the comparison stays against frame 0
    assert flip_probability([video], noise=True, difficulty=2) == pytest.approx(2 / 5)


def test_a_set_averages_per_video_rates_not_pooled_pairs():
    short, long = [3, 4], [0, 0, 0, 0, 1]  # rates 1 and 1/4; pooled pairs would give 2/5
    assert flip_probability([short, long], noise=False) == pytest.approx(0.625)


def test_a_video_without_a_pair_at_the_step_is_an_error():
    with pytest.raises(ValueError, match="no pair of frames 2 apart"):
        flip_probability([[0, 1]], noise=False, difficulty=2)


# ---- metrics: rank distances --------------------------------------------------------------------

DESCENDING = np.arange(8, 0, -1, dtype=float)  # class 0 first, class 7 last


def _with(values: dict[int, float]) -> np.ndarray:
    logits = DESCENDING.copy()
    for cls, value in values.items():
        logits[cls] = value
    return logits


def test_ranks_are_ordinal_with_ties_broken_by_class_index():
    assert ranks(np.array([3.0, 5.0, 5.0, 1.0])).tolist() == [3, 1, 2, 4]  # rankdata(-x, 'ordinal')


def test_top5_distance_on_hand_made_rankings():
    swapped = _with({0: 7, 1: 8})  # the top two classes trade places
    assert pair_distance(DESCENDING, DESCENDING) == 0
    assert pair_distance(DESCENDING, swapped) == 2  # |0 - 1| + |1 - 0|
    sunk = _with({0: 0})  # the top class falls to last: ranks seen by the old top 5 are 8, 1, 2, 3, 4
    assert pair_distance(DESCENDING, sunk) == 9  # |0 - 5| + |1 - 0| + |2 - 1| + |3 - 2| + |4 - 3|
    below = _with({5: 8.5})  # a class from outside the top 5 jumps to first: everyone moves down one
    assert pair_distance(DESCENDING, below) == 5  # 1 + 1 + 1 + 1 + |4 - 5|, ranks past 5 count as 5


def test_zipf_distance_on_hand_made_rankings():
    swapped = _with({0: 7, 1: 8})
    assert pair_distance(DESCENDING, swapped, "zipf") == pytest.approx(0.5 + 0.25)  # |1 - 1/2| + |1/2 - 1| / 2


def test_rank_distance_noise_and_step_semantics():
    swapped = _with({0: 7, 1: 8})
    video = np.stack([DESCENDING, swapped, swapped])
    assert ranking_distance([video], noise=True) == 2.0  # frames 1 and 2 both against frame 0
    assert ranking_distance([video], noise=False) == 1.0  # (0, 1) -> 2, (1, 2) -> 0
    assert ranking_distance([video], noise=False, difficulty=2) == 2.0  # only (0, 2)


def test_meter_streams_sets_and_resumes_from_its_state():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7, 10)).round(1)  # rounding makes ties
    whole = StabilityMeter.for_set("rotate", difficulty=2)
    whole.update(logits)
    first = StabilityMeter.for_set("rotate", difficulty=2)
    first.update(logits[:2])
    resumed = StabilityMeter.from_state(json.loads(json.dumps(first.state())))
    resumed.update(logits[2:])
    assert resumed.result() == pytest.approx(whole.result())
    assert whole.result() == pytest.approx({
        "flip_probability": flip_probability(logits.argmax(-1), noise=False, difficulty=2),
        "top5": ranking_distance(logits, noise=False, difficulty=2),
        "zipf": ranking_distance(logits, noise=False, difficulty=2, mode="zipf"),
    })
    assert StabilityMeter.for_set("shot_noise").noise and StabilityMeter(noise=False).result()["top5"] is None


def test_means_over_perturbations():
    values = {"rotate": 0.2, "tilt": 0.1}
    assert mean_over_perturbations(values) == pytest.approx(0.15)
    mean, ratios = normalised_mean(values, {"rotate": 0.4, "tilt": 0.4})
    assert ratios == pytest.approx({"rotate": 0.5, "tilt": 0.25}) and mean == pytest.approx(0.375)
    with pytest.raises(ValueError, match="no baseline value for tilt"):
        normalised_mean(values, {"rotate": 0.4})


# ---- generation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return digits_test(3)[0]  # uint8 (3, 32, 32, 3)


RELEASED_FRAMES = {  # make_cifar_p.py / make_tinyimagenet_p.py / make_imagenet_p.py loops
    32: {"motion_blur": 21, "translate": 16},
    64: {},
    224: {"translate": 41},
}


@pytest.mark.parametrize("table", [32, 64, 224])
def test_frame_counts_as_released(table):
    for name in ALL_PERTURBATIONS:
        assert frame_count(name, table) == RELEASED_FRAMES[table].get(name, 31), name


def test_every_sequence_has_the_released_shape(images):
    for name in ALL_PERTURBATIONS:
        sequence = perturb_sequence(images[0], name, rng=0)
        assert sequence.dtype == np.uint8 and sequence.shape == (frame_count(name, 32), 32, 32, 3), name
    assert perturb_sequence(np.zeros((224, 224, 3), np.uint8), "translate").shape == (41, 224, 224, 3)


def test_noise_sequences_start_clean_and_difficulties_scale_the_same_draws():
    grey = np.full((32, 32, 3), 128, np.uint8)
    easy, hard = (perturb_sequence(grey, "gaussian_noise", d, rng=sequence_rng(0, 5)) for d in (1, 3))
    assert np.array_equal(easy[0], grey) and np.array_equal(hard[0], grey)
    deviation = [np.abs(s[1:].astype(float) - 128) for s in (easy, hard)]
    assert deviation[1].mean() / deviation[0].mean() == pytest.approx(3.0, rel=0.05)  # 0.06 / 0.02
    assert np.corrcoef(deviation[0].ravel(), deviation[1].ravel())[0, 1] > 0.9  # the same normals


def test_geometric_sequences_pass_through_the_identity_in_the_middle(images):
    image = images[0]
    for name, middle in (("rotate", 15), ("shear", 15), ("scale", 15), ("translate", 7)):
        assert np.array_equal(perturb_sequence(image, name)[middle], image), name
    shifted = perturb_sequence(image, "translate")[8]  # one pixel to the right, black column in
    assert np.array_equal(shifted[:, 1:], image[:, :-1]) and not shifted[:, 0].any()


def test_spatter_drips_like_numpy_convolve_same():
    layer = np.random.default_rng(0).random((7, 5))
    for kernel in ((0.2, 0.8), (0.05, 0.1, 0.15, 0.7)):
        expected = np.apply_along_axis(lambda column: np.convolve(column, kernel, mode="same"), 0, layer)
        assert np.allclose(_drip(layer, kernel), expected)


def test_generation_is_reproducible_per_seed_and_image(images):
    for name in ("shot_noise", "spatter", "snow"):
        whole = perturb_batch(images, name, 1, seed=4)
        assert np.array_equal(whole, perturb_batch(images, name, 1, seed=4)), name
        split = np.concatenate([perturb_batch(images[:1], name, 1, seed=4),
                                perturb_batch(images[1:], name, 1, seed=4, start_index=1)])
        assert np.array_equal(whole, split), name  # image i always uses stream (seed, i)
        assert not np.array_equal(whole, perturb_batch(images, name, 1, seed=5)), name


def test_bad_generation_arguments_are_refused(images):
    with pytest.raises(ValueError, match="unknown perturbation 'fog'"):
        perturb_sequence(images[0], "fog")
    with pytest.raises(ValueError, match="only noise perturbations have difficulty 2"):
        perturb_sequence(images[0], "rotate", difficulty=2)


# ---- CIFAR-P writer and reader ------------------------------------------------------------------


def test_cifar_p_format(tmp_path, images):
    out = write_cifar_p(images, tmp_path / "p", perturbations=["shot_noise", "translate"], difficulties=[1, 3], seed=2)
    assert sorted(p.name for p in out.iterdir()) == [
        "regenerated.json", "shot_noise.npy", "shot_noise_3.npy", "translate.npy"]
    for file, name, difficulty in (("shot_noise", "shot_noise", 1), ("shot_noise_3", "shot_noise", 3),
                                   ("translate", "translate", 1)):
        stored = open_cifar_p(out / f"{file}.npy", count=3, frames=frame_count(name, 32), image_size=32)
        assert np.array_equal(stored, perturb_batch(images, name, difficulty, seed=2)), file
    assert json.loads((out / "regenerated.json").read_text()) == {
        "regenerated": True, "generator": "augmix.perturbations", "format": "cifar-p", "table": 32, "seed": 2,
        "images": 3}
    sequences = CifarPSequences(out / "translate.npy", count=3)
    assert len(sequences) == 3 and sequences.frames == 16 and sequences[2].shape == (16, 32, 32, 3)


def test_cifar_p_is_written_in_chunks_with_the_same_bytes(tmp_path, images, monkeypatch):
    whole = write_cifar_p(images, tmp_path / "whole", perturbations=["rotate"], seed=1)
    monkeypatch.setattr(writer, "CHUNK", 2)
    chunked = write_cifar_p(images, tmp_path / "chunked", perturbations=["rotate"], seed=1)
    assert (whole / "rotate.npy").read_bytes() == (chunked / "rotate.npy").read_bytes()


def test_writing_resumes_and_refuses_other_folders(tmp_path, images, monkeypatch):
    out = write_cifar_p(images, tmp_path / "p", perturbations=["rotate"], seed=1)
    stamp = (out / "rotate.npy").stat().st_mtime_ns
    write_cifar_p(images, out, perturbations=["rotate", "tilt"], seed=1)  # extends, keeps finished files
    assert (out / "rotate.npy").stat().st_mtime_ns == stamp and (out / "tilt.npy").is_file()
    with pytest.raises(ValueError, match="already holds a set made with"):
        write_cifar_p(images, out, perturbations=["rotate"], seed=2)
    foreign = tmp_path / "released"
    foreign.mkdir()
    (foreign / "rotate.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="files this generator did not write"):
        write_cifar_p(images, foreign, perturbations=["rotate"])

    def broken(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(writer, "perturb_batch", broken)
    with pytest.raises(RuntimeError):
        write_cifar_p(images, tmp_path / "failed", perturbations=["rotate"])
    assert not (tmp_path / "failed" / "regenerated.json").exists()  # only a finished set is marked
    assert (tmp_path / "failed" / IN_PROGRESS_NAME).is_file()
    assert not list((tmp_path / "failed").glob("*.npy"))  # and no truncated array was left


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def _one_line_error(call, *fragments: str) -> None:
    with pytest.raises(DataError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_cifar_p_arrays_are_one_line_errors(tmp_path):
    good = np.zeros((4, 31, 32, 32, 3), np.uint8)
    single = _save(tmp_path / "single.npy", good[:, 0])
    _one_line_error(lambda: open_cifar_p(single, count=4), str(single), "single images (4, 32, 32, 3)",
                    "frames along axis 1")
    swapped = _save(tmp_path / "swapped.npy", good.transpose(1, 0, 2, 3, 4))
    _one_line_error(lambda: open_cifar_p(swapped, count=4), str(swapped), "frames are along axis 0")
    _one_line_error(lambda: open_cifar_p(swapped, frames=31), "frames are along axis 0")
    floats = _save(tmp_path / "floats.npy", good.astype(np.float32))
    _one_line_error(lambda: open_cifar_p(floats), str(floats), "float32", "expected uint8")
    grey = _save(tmp_path / "grey.npy", good[..., :1])
    _one_line_error(lambda: open_cifar_p(grey), "1 channels", "expected RGB")
    rank3 = _save(tmp_path / "rank3.npy", good[0, 0])
    _one_line_error(lambda: open_cifar_p(rank3), "rank 3", "expected rank 5")
    ok = _save(tmp_path / "ok.npy", good)
    _one_line_error(lambda: open_cifar_p(ok, count=10), "holds 4 sequences", "clean test split has 10 images")
    _one_line_error(lambda: open_cifar_p(ok, count=4, frames=16), "holds 31 frames per sequence", "expected 16")
    _one_line_error(lambda: open_cifar_p(ok, image_size=64), "32x32 frames", "expected 64x64")
    _one_line_error(lambda: open_cifar_p(tmp_path / "absent.npy"), "absent.npy is missing")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    _one_line_error(lambda: open_cifar_p(garbage), str(garbage), "not a readable .npy")
    assert open_cifar_p(ok, count=4, frames=31, image_size=32).shape == good.shape


# ---- ImageNet-P writer, videos and reader -------------------------------------------------------


def test_imagenet_p_round_trip(tmp_path, images):
    labels = np.array([1, 0, 1])
    out = write_imagenet_p(images, labels, ["n01", "n02"], tmp_path / "p", perturbations=["gaussian_noise", "tilt"],
                           difficulties=[1, 2], seed=3, file_names=["a.JPEG", "b.JPEG", "c.JPEG"])
    assert sorted(p.name for p in out.iterdir()) == ["gaussian_noise", "gaussian_noise_2", "regenerated.json", "tilt"]
    assert sorted(str(p.relative_to(out / "tilt")) for p in (out / "tilt").rglob("*.mp4")) == [
        "n01/b.mp4", "n02/a.mp4", "n02/c.mp4"]
    assert json.loads((out / "regenerated.json").read_text())["codec"] == "lossless"
    for folder, name, difficulty in (("gaussian_noise_2", "gaussian_noise", 2), ("tilt", "tilt", 1)):
        videos = VideoSequences(out / folder, ["n01", "n02"], frames=31, image_size=32)
        assert [(p.name, label) for p, label in videos.videos] == [("b.mp4", 0), ("a.mp4", 1), ("c.mp4", 1)]
        for (path, _), index in zip(videos.videos, (1, 0, 2)):
            frames, _ = videos[videos.videos.index((path, _))]
            expected = perturb_sequence(images[index], name, difficulty, sequence_rng(3, index))
            assert np.array_equal(frames, expected), (folder, path)  # lossless: decode(encode(x)) == x


def test_benchmark_codec_is_lossy_but_keeps_frames_and_size(tmp_path, images):
    frames = perturb_sequence(images[0], "rotate")
    path = tmp_path / "v.mp4"
    with open(path, "wb") as handle:
        encode_mp4(frames, handle, codec="benchmark")
    decoded = read_video(path, frames=31, image_size=32)
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 8


def test_bad_videos_are_one_line_errors(tmp_path):
    folder = tmp_path / "rotate" / "n01"
    folder.mkdir(parents=True)
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    with open(folder / "short.mp4", "wb") as handle:
        encode_mp4(frames, handle)
    short = folder / "short.mp4"
    _one_line_error(lambda: read_video(short, frames=31), str(short), "decodes to 4 frames", "expected 31")
    _one_line_error(lambda: VideoSequences(tmp_path / "rotate", ["n01"], frames=31), str(short), "has 4 frames")
    _one_line_error(lambda: read_video(short, image_size=64), "32x32 frames", "expected 64x64")
    _one_line_error(lambda: VideoSequences(tmp_path / "rotate", ["n01"], image_size=64), "expected 64x64")
    broken = folder / "zz-broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 20)
    _one_line_error(lambda: read_video(broken), str(broken), "does not decode as an mp4 video")
    _one_line_error(lambda: VideoSequences(tmp_path / "rotate", ["n01"]), str(broken), "does not decode")
    broken.unlink()
    assert len(VideoSequences(tmp_path / "rotate", ["n01"], frames=4, image_size=32)) == 1
    (tmp_path / "rotate" / "n99").mkdir()
    _one_line_error(lambda: VideoSequences(tmp_path / "rotate", ["n01"]), "n99 is not one of the 1 classes")
    _one_line_error(lambda: VideoSequences(tmp_path / "tilt", ["n01"]), "tilt is missing", "<class>/<name>.mp4")


# ---- make_perturbed.py --------------------------------------------------------------------------


def test_make_perturbed_writes_the_digits_test_split(tmp_path):
    import make_perturbed

    out = tmp_path / "digits-p"
    make_perturbed.main(compose_config("make_perturbed", [
        "data=digits", "format=cifar_p", f"out={out}", "perturbations=[scale,speckle_noise]",
        "difficulties=[1,2]", "limit=3", "seed=1"]))
    assert sorted(p.name for p in out.iterdir()) == [
        "regenerated.json", "scale.npy", "speckle_noise.npy", "speckle_noise_2.npy"]
    clean = digits_test(3)[0]  # the split in its order, through the digits eval transform (a no-op at 32px)
    assert np.array_equal(np.load(out / "speckle_noise_2.npy"), perturb_batch(clean, "speckle_noise", 2, seed=1))
    assert json.loads((out / "regenerated.json").read_text())["images"] == 3


def test_make_perturbed_writes_a_folder_dataset_as_videos(tmp_path, image_folder_root):
    import make_perturbed

    out = tmp_path / "imagenet-p"
    make_perturbed.main(compose_config("make_perturbed", [
        "data=imagenet", f"data.root={image_folder_root}", "data.num_classes=3", "format=imagenet_p", f"out={out}",
        "perturbations=[translate]", "limit=2"]))
    videos = sorted(str(p.relative_to(out)) for p in out.rglob("*.mp4"))
    assert videos == ["translate/n01/n01_0.mp4", "translate/n01/n01_1.mp4"]  # val names kept, wnid folders
    assert read_video(out / videos[0], frames=41, image_size=224).shape == (41, 224, 224, 3)  # the 224px table


@pytest.mark.parametrize("override, message", [
    ("perturbations=[fog]", "perturbations=['fog'] is invalid: 'fog' is not a perturbation"),
    ("difficulties=[4]", "difficulties=[4] is invalid: must be a non-empty list drawn from [1, 2, 3]"),
    ("format=cifar_c", "format='cifar_c' is invalid: must be one of ['cifar_p', 'imagenet_p']"),
])
def test_make_perturbed_bad_options_are_one_line(tmp_path, capsys, override, message):
    import make_perturbed

    with pytest.raises(SystemExit) as caught:
        make_perturbed.main(compose_config("make_perturbed", ["data=digits", f"out={tmp_path / 'p'}", override]))
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Error: {message}") and "\n" not in err


def test_make_perturbed_knows_exactly_its_keys_and_names_a_typo(tmp_path, capsys):
    import make_perturbed

    assert set(compose_config("make_perturbed", []).keys()) == set(make_perturbed.KEYS) - {"hydra"}
    with pytest.raises(SystemExit) as caught:
        make_perturbed.main(compose_config("make_perturbed", ["+limt=3", f"out={tmp_path / 'p'}"]))
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith("Error: unknown config key limt (did you mean limit?)")
    assert not (tmp_path / "p").exists()
