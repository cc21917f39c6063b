"""data=photos: crops of the sample photographs bundled with scikit-image and scikit-learn."""

from __future__ import annotations

import itertools

import pytest
import torch

from augmix.data import photos
from augmix.data.photos import CLASSES, MARGIN, PHOTOS, SPLITS, Crop, crop_plan, load_photos, read_photo
from augmix.errors import DataError
from augmix.training import train
from tests.conftest import compose_train


def test_splits_have_fixed_sizes_shapes_dtypes_and_balanced_classes():
    assert len(CLASSES) >= 10
    for split, total in (("train", 1200), ("val", 300), ("test", 300)):
        source = load_photos(split)
        assert source.images.shape == (total, 3, 32, 32) and source.images.dtype == torch.uint8
        assert source.targets.dtype == torch.int64 and source.classes == list(CLASSES)
        assert torch.bincount(source.targets, minlength=len(CLASSES)).tolist() == [SPLITS[split]] * len(CLASSES)


def test_building_twice_gives_identical_images():
    first, second = photos._build.__wrapped__(32), photos._build.__wrapped__(32)
    for split in SPLITS:
        assert torch.equal(first[split][0], second[split][0]) and torch.equal(first[split][1], second[split][1])


def test_other_image_sizes_resize_the_same_crops():
    small = load_photos("test", image_size=16)
    assert small.images.shape == (300, 3, 16, 16)
    assert torch.equal(small.targets, load_photos("test").targets)


def test_grayscale_photographs_become_three_equal_channels_and_colour_ones_stay_colour():
    train_split = load_photos("train")
    camera = train_split.images[train_split.targets == CLASSES.index("camera")]
    assert torch.equal(camera[:, 0], camera[:, 1]) and torch.equal(camera[:, 1], camera[:, 2])
    chelsea = train_split.images[train_split.targets == CLASSES.index("chelsea")]
    assert not torch.equal(chelsea[:, 0], chelsea[:, 2])


def test_train_val_and_test_crops_never_share_a_pixel_and_stay_inside_their_photograph():
    sizes = [tuple(read_photo(index).shape[-2:]) for index in range(len(PHOTOS))]
    plan = crop_plan(sizes)
    assert {split: len(crops) for split, crops in plan.items()} == {s: n * len(PHOTOS) for s, n in SPLITS.items()}
    for crops in plan.values():
        for c in crops:
            height, width = sizes[c.photo]
            assert 0 <= c.top and c.top + c.side <= height and 0 <= c.left and c.left + c.side <= width
    for a, b in itertools.combinations(SPLITS, 2):
        for photo in range(len(PHOTOS)):
            mine = [c for c in plan[a] if c.photo == photo]
            theirs = [c for c in plan[b] if c.photo == photo]
            clashes = [(x, y) for x in mine for y in theirs if x.overlaps(y, gap=2 * MARGIN)]
            assert not clashes, f"{a} and {b} crops of {PHOTOS[photo][0]} overlap: {clashes[:2]}"


def test_overlap_check_itself_sees_shared_pixels_and_the_gap():
    a = Crop(0, 10, 10, 20)
    assert a.overlaps(Crop(0, 29, 29, 5)) and not a.overlaps(Crop(0, 30, 10, 5))
    assert a.overlaps(Crop(0, 33, 10, 5), gap=4) and not a.overlaps(Crop(1, 10, 10, 20))


def test_classes_are_not_separable_by_mean_colour():
    """A nearest-class-mean classifier on each image's mean RGB gets 38% (chance: 8%); a CNN has to
    use texture and shape to do much better."""
    train_split, test_split = load_photos("train"), load_photos("test")
    features = train_split.images.float().mean((2, 3))
    means = torch.stack([features[train_split.targets == c].mean(0) for c in range(len(CLASSES))])
    predicted = torch.cdist(test_split.images.float().mean((2, 3)), means).argmin(1)
    accuracy = (predicted == test_split.targets).float().mean().item()
    assert 1 / len(CLASSES) < accuracy < 0.5


def test_unknown_split_and_missing_photograph_are_one_line(monkeypatch):
    with pytest.raises(DataError, match="photos has splits"):
        load_photos("holdout")
    monkeypatch.setattr(photos, "PHOTOS", (("lost", "skimage", "data/no_such_photo.png"),))
    with pytest.raises(DataError, match="no_such_photo.png, which this skimage installation lacks"):
        read_photo(0)


def test_photos_experiment_trains_a_step(tmp_path):
    cfg = compose_train(
        "experiment=quickstart_photos", "evaluate_after_fit=null", "logger=none", f"paths.output_dir={tmp_path}",
        "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1", "trainer.max_epochs=1",
        "data.batch_size=8", "data.eval_batch_size=16", "+trainer.num_sanity_val_steps=0",
    )
    assert cfg.data.name == "photos" and cfg.data.num_classes == len(CLASSES)
    metrics = train(cfg)
    assert metrics["global_step"] == 1 and metrics["train/loss_epoch"] > 0
