"""Sources in their real formats, base transforms, keyed sampling and the triplet DataModule."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from augmix.data import AugMixDataModule, RandomCropFlip, RandomResizedCropFlip, ResizeCenterCrop, sources
from augmix.data.batches import KeyedBatchSampler
from augmix.errors import DataError
from augmix.streams import keyed_generator
from augmix.training import build_datamodule
from tests.conftest import compose_train, write_cifar100

# ------------------------------------------------------------------------------------------ sources


def test_cifar10_pickles_load_as_uint8_chw(cifar10_root):
    train = sources.load_cifar(cifar10_root, "cifar10", "train")
    test = sources.load_cifar(cifar10_root, "cifar10", "test")
    assert len(train) == 60 and len(test) == 20
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (3, 32, 32)
    assert train.classes[0] == "airplane" and train.num_classes == 10
    # rows are stored channel-major (1024 R, then G, then B)
    with open(cifar10_root / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        row = pickle.load(handle)["data"][0]
    assert torch.equal(train.image(0)[1].flatten(), torch.from_numpy(row[1024:2048].copy()))


def test_cifar100_uses_fine_labels(tmp_path):
    root = write_cifar100(tmp_path)
    train = sources.load_cifar(root, "cifar100", "train")
    assert train.num_classes == 100 and train.target(37) == 37


def test_missing_cifar_lists_files_and_says_how_to_fix(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError) as error:
        sources.load_cifar(tmp_path, "cifar10", "train")
    message = str(error.value)
    assert "data_batch_1" in message and "cifar-10-python.tar.gz" in message and "experiment=quickstart" in message


def test_malformed_cifar_pickle_is_reported(cifar10_root):
    (cifar10_root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3"):
        sources.load_cifar(cifar10_root, "cifar10", "train")


def test_image_folder_sorted_classes_and_decoding(image_folder_root):
    train = sources.FolderSource(image_folder_root / "train")
    assert train.classes == ["n01", "n02", "n03"] and len(train) == 12
    image = train.image(5)
    assert image.dtype == torch.uint8 and image.shape == (3, 40, 48)
    assert train.target(5) == 1


def test_unreadable_jpeg_is_named(image_folder_root):
    broken = image_folder_root / "train" / "n02" / "n02_1.JPEG"
    broken.write_bytes(b"\xff\xd8garbage")
    source = sources.FolderSource(image_folder_root / "train")
    index = [path for path, _ in source.samples].index(str(broken))
    with pytest.raises(DataError, match="n02_1.JPEG"):
        source.image(index)


def test_empty_class_folder_and_missing_split_are_reported(image_folder_root, tmp_path):
    (image_folder_root / "train" / "n04").mkdir()
    with pytest.raises(DataError, match="n04"):
        sources.FolderSource(image_folder_root / "train")
    with pytest.raises(DataError, match="does not exist"):
        sources.FolderSource(tmp_path / "nowhere")


def test_tiny_imagenet_raw_val_layout(tmp_path):
    from PIL import Image

    val = tmp_path / "val"
    (val / "images").mkdir(parents=True)
    rows = []
    for i, wnid in enumerate(["n02", "n01", "n02"]):
        Image.new("RGB", (64, 64), (i * 50, 0, 0)).save(val / "images" / f"val_{i}.JPEG")
        rows.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (val / "val_annotations.txt").write_text("\n".join(rows))
    source = sources.FolderSource(val, class_names=["n01", "n02"])
    assert [source.target(i) for i in range(3)] == [1, 0, 1]
    assert source.image(1).shape == (3, 64, 64)


def test_digits_splits_are_fixed_disjoint_and_upsampled():
    splits = {name: sources.load_digits(name) for name in ("train", "val", "test")}
    assert {name: len(s) for name, s in splits.items()} == {"train": 1197, "val": 300, "test": 300}
    assert splits["train"].images.shape[1:] == (3, 32, 32)
    flat = {name: {tuple(img.flatten().tolist()) for img in s.images[:, 0, ::4, ::4]} for name, s in splits.items()}
    assert len(flat["val"] & flat["test"]) < 5  # a few digits are pixel-identical after downsampling
    assert torch.equal(sources.load_digits("val").images, splits["val"].images)


# --------------------------------------------------------------------------------------- transforms


def test_random_crop_flip_is_a_function_of_the_generator():
    image = torch.arange(3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, 32, 32)
    crop = RandomCropFlip(32, 4, hflip=True)
    a, b = crop(image, keyed_generator(1)), crop(image, keyed_generator(1))
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    outs = {tuple(crop(image, keyed_generator(i)).flatten()[:50].tolist()) for i in range(20)}
    assert len(outs) > 10


def test_random_resized_crop_and_eval_resize_sizes():
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    assert RandomResizedCropFlip(224)(image, keyed_generator(0)).shape == (3, 224, 224)
    assert ResizeCenterCrop(256, 224)(image).shape == (3, 224, 224)
    box = RandomResizedCropFlip(224).crop_box(300, 400, keyed_generator(3))
    top, left, h, w = box
    assert 0 <= top and top + h <= 300 and 0 <= left and left + w <= 400


# ------------------------------------------------------------------------------------------ sampler


def test_sampler_visits_every_sample_once_per_epoch_in_a_new_order():
    sampler = KeyedBatchSampler(103, 10, shuffle=True, drop_last=False, seed=0)
    epoch0 = [i for key in sampler for i in key.samples]
    sampler.set_epoch(1)
    epoch1 = [i for key in sampler for i in key.samples]
    assert sorted(epoch0) == sorted(epoch1) == list(range(103))
    assert epoch0 != epoch1 and len(sampler) == 11
    sampler.set_epoch(0)
    assert [i for key in sampler for i in key.samples] == epoch0


def test_sampler_shards_across_ranks():
    train = [KeyedBatchSampler(103, 8, True, False, seed=0, rank=r, world_size=2) for r in range(2)]
    shards = [[i for key in s for i in key.samples] for s in train]
    assert len(shards[0]) == len(shards[1]) == 52  # padded so both ranks take the same steps
    assert set(shards[0]) | set(shards[1]) == set(range(103))
    evaluation = [KeyedBatchSampler(103, 8, False, False, seed=0, rank=r, world_size=2, pad_shards=False) for r in range(2)]
    shards = [[i for key in s for i in key.samples] for s in evaluation]
    assert sorted(shards[0] + shards[1]) == list(range(103))  # every sample exactly once
    assert [len(s) for s in evaluation] == [7, 7]


# --------------------------------------------------------------------------------------- DataModule


def digits_module(**augmix) -> AugMixDataModule:
    cfg = compose_train("experiment=quickstart", *(f"augmix.{k}={v}" for k, v in augmix.items()))
    module: AugMixDataModule = build_datamodule(cfg)
    module.setup("fit")
    return module


def first_batch(module: AugMixDataModule) -> dict:
    return next(iter(module.train_dataloader()))


def test_triplets_have_the_right_shapes_dtypes_and_normalisation():
    module = digits_module()
    raw = first_batch(module)
    assert raw["image"].dtype == torch.uint8 and raw["image"].shape == (64, 3, 32, 32)
    assert [v.dtype for v in raw["views"]] == [torch.float32, torch.float32]
    batch = module.finish_batch(raw, training=True)
    clean, aug1, aug2 = batch["views"]
    assert clean.shape == aug1.shape == aug2.shape == (64, 3, 32, 32)
    assert batch["target"].dtype == torch.long and batch["target"].shape == (64,)
    assert torch.allclose(clean, raw["image"].float() / 255 * 2 - 1, atol=1e-6)  # mean 0.5, std 0.5
    assert aug1.min() >= -1 and aug1.max() <= 1
    assert not torch.equal(aug1, aug2)


def test_all_views_share_one_crop():
    module = digits_module()
    raw = first_batch(module)
    views = module.augmix_views(0)(raw["image"], *raw["key"])
    assert all(torch.equal(a, b) for a, b in zip(views, raw["views"]))


def test_without_jsd_one_view_and_without_augmix_the_clean_view():
    single = digits_module(jsd="false")
    batch = single.finish_batch(first_batch(single), training=True)
    assert len(batch["views"]) == 1 and not torch.equal(batch["views"][0], single.normalize(first_batch(single)["image"]))
    baseline = digits_module(enabled="false")
    raw = first_batch(baseline)
    assert "views" not in raw
    assert len(baseline.finish_batch(raw, training=True)["views"]) == 1


def test_device_and_worker_placements_give_identical_triplets():
    workers = digits_module(placement="workers")
    device = digits_module(placement="device")
    device.train_dataloader()
    raw_workers, raw_device = first_batch(workers), first_batch(device)
    assert "views" not in raw_device
    finished = [m.finish_batch(r, training=True)["views"] for m, r in ((workers, raw_workers), (device, raw_device))]
    assert all(torch.equal(a, b) for a, b in zip(*finished))


def test_batches_do_not_depend_on_the_number_of_workers_and_differ_by_epoch():
    module = digits_module()
    single = [b["views"][0] for _, b in zip(range(3), module.train_dataloader())]
    module.num_workers = 2
    loader = module.train_dataloader()
    parallel = [b["views"][0] for _, b in zip(range(3), loader)]
    assert all(torch.equal(a, b) for a, b in zip(single, parallel))
    assert not torch.equal(parallel[0], parallel[1])
    loader.sampler.set_epoch(1)
    next_epoch = next(iter(loader))["views"][0]
    assert not torch.equal(next_epoch, parallel[0])


def test_eval_batches_are_clean_and_unshuffled():
    module = digits_module()
    batch = next(iter(module.val_dataloader()))
    assert "views" not in batch
    finished = module.finish_batch(batch, training=False)
    assert len(finished["views"]) == 1
    assert torch.equal(batch["target"], module.source("val").targets[: len(batch["target"])])


def test_preview_shows_exactly_the_first_training_batch():
    module = digits_module()
    clean, views = module.preview(8)
    batch = first_batch(module)
    assert torch.equal(clean, batch["image"][:8])
    assert all(v.min() >= 0 and v.max() <= 1 for v in views)  # in [0, 1], for looking at
    # training's views, normalised while mixed (float32 rounding apart)
    assert all(torch.allclose(module.normalize(v), w[:8], rtol=0, atol=2e-6) for v, w in zip(views, batch["views"]))


def test_cifar_datamodule_reads_the_fixture_and_checks_class_count(cifar10_root):
    cfg_overrides = (f"data.root={cifar10_root}", "data.download=false", "data.num_workers=0", "data.batch_size=16")
    module = build_datamodule(compose_train(*cfg_overrides))
    module.setup("fit")
    batch = module.finish_batch(first_batch(module), training=True)
    assert [v.shape for v in batch["views"]] == [(16, 3, 32, 32)] * 3
    wrong = build_datamodule(compose_train(*cfg_overrides, "data.num_classes=100"))
    with pytest.raises(DataError, match="num_classes"):
        wrong.setup("fit")


def test_val_fraction_holds_out_a_fixed_part_of_training(cifar10_root):
    cfg = compose_train(f"data.root={cifar10_root}", "data.download=false", "data.val_fraction=0.25")
    module = build_datamodule(cfg)
    module.setup("fit")
    train, val = module.source("train"), module.source("val")
    assert len(train) == 45 and len(val) == 15
    assert not set(train.indices) & set(val.indices)


def test_imagenet_layout_datamodule(image_folder_root):
    cfg = compose_train(
        "experiment=imagenet_resnet50", f"data.root={image_folder_root}", "data.num_workers=0", "data.batch_size=4",
        "data.num_classes=3",
    )
    module = build_datamodule(cfg)
    module.setup("fit")
    batch = module.finish_batch(first_batch(module), training=True)
    assert [tuple(v.shape) for v in batch["views"]] == [(4, 3, 224, 224)] * 3
    val = module.finish_batch(next(iter(module.val_dataloader())), training=False)
    assert val["views"][0].shape[-2:] == (224, 224)


def test_missing_image_folder_gives_a_clear_error(tmp_path: Path):
    cfg = compose_train("experiment=imagenet_resnet50", f"data.root={tmp_path}")
    module = build_datamodule(cfg)
    with pytest.raises(DataError, match="train"):
        module.prepare_data()
