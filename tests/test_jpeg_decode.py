"""data.decode=draft: the same crop boxes, flips and keyed streams as a full decode, outputs that
differ only by resampling error (bounded on photo-like JPEGs), and bad files handled alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from augmix.config import validate
from augmix.data.batches import BatchAssembler, BatchKey
from augmix.data.decoding import draft_scale, jpeg_size
from augmix.data.photo_jpegs import write_photo_jpegs
from augmix.data.sources import FolderSource, decode_file
from augmix.data.transforms import RandomResizedCropFlip
from augmix.errors import ConfigError
from tests.conftest import compose_train

SIZES = ((1024, 768), (768, 1024), (500, 375), (375, 500))  # large enough to draft at 224, and ImageNet's usual


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jpegs")
    write_photo_jpegs(root / "train", 8, sizes=SIZES, classes=2)
    return root / "train"


def crops(path: str, seeds: range, crop: RandomResizedCropFlip, draft: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each seed's crop of ``path`` and the generator's state after it."""
    out = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        image = crop.from_file(path, generator) if draft else crop(decode_file(path), generator)
        out.append((image, generator.get_state()))
    return out


def test_draft_crops_differ_from_full_decodes_only_by_resampling_error(folder):
    crop = RandomResizedCropFlip(224)
    drafted = exact = 0
    for path in sorted(str(p) for p in folder.rglob("*.JPEG")):
        height, width = jpeg_size(Path(path).read_bytes())
        assert (height, width) == tuple(decode_file(path).shape[-2:])
        for (full, full_state), (draft, draft_state) in zip(crops(path, range(8), crop, False), crops(path, range(8), crop, True)):
            assert torch.equal(full_state, draft_state), "the draft path draws exactly what the full one does"
            assert draft.shape == full.shape == (3, 224, 224) and draft.dtype == torch.uint8
            difference = (draft.float() - full.float()).abs()
            if torch.equal(draft, full):
                exact += 1
                continue
            drafted += 1
            assert max(height, width) >= 1024, "only crops at least twice the output are decoded in draft"
            # measured on these images: mean 0.2-0.7, max 3-16 grey levels (DCT scaling vs antialiased resize)
            assert difference.mean() < 1.0 and difference.max() <= 32, (path, difference.mean(), difference.max())
    assert drafted >= 16 and exact >= 32, (drafted, exact)  # every 500x375 crop (never twice 224 px on both sides) is exact


def test_the_scale_is_the_largest_that_keeps_the_box_at_least_the_output_size():
    assert [draft_scale(side, side, 224) for side in (447, 448, 895, 896, 1791, 1792, 4000)] == [1, 2, 2, 4, 4, 8, 8]
    assert draft_scale(2000, 447, 224) == 1  # the shorter side decides


def test_batches_have_the_same_boxes_targets_and_keys_in_both_modes(folder, monkeypatch):
    boxes: list[tuple] = []
    original = RandomResizedCropFlip.crop_box

    def recorded(self, height, width, generator):
        boxes.append(original(self, height, width, generator))
        return boxes[-1]

    monkeypatch.setattr(RandomResizedCropFlip, "crop_box", recorded)
    source, key = FolderSource(folder), BatchKey(epoch=3, index=5, samples=tuple(range(8)))
    batches = {}
    for decode in ("full", "draft"):
        boxes.clear()
        batch = BatchAssembler(source, RandomResizedCropFlip(224), seed=7, rank=1, decode=decode)[key]
        batches[decode] = (list(boxes), batch)
    (full_boxes, full), (draft_boxes, draft) = batches["full"], batches["draft"]
    assert full_boxes == draft_boxes and len(full_boxes) == 8
    assert torch.equal(full["target"], draft["target"]) and full["key"] == draft["key"]
    assert (full["image"].float() - draft["image"].float()).abs().mean() < 1.0


def test_a_bad_file_is_skipped_with_the_same_draws_in_both_modes(folder, tmp_path):
    damaged = tmp_path / "train"
    for path in sorted(folder.rglob("*.JPEG")):
        target = damaged / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    first = sorted(damaged.rglob("*.JPEG"))[0]
    first.write_bytes(first.read_bytes()[:-3000])  # the header is intact: the box is drawn, then decoding fails
    source, key = FolderSource(damaged), BatchKey(epoch=0, index=0, samples=tuple(range(8)))
    batch = {
        decode: BatchAssembler(source, RandomResizedCropFlip(224), seed=0, on_bad_image="skip", decode=decode)[key]
        for decode in ("full", "draft")
    }
    assert [path for path, _ in batch["draft"]["skipped"]] == [path for path, _ in batch["full"]["skipped"]] == [str(first)]
    assert torch.equal(batch["full"]["target"], batch["draft"]["target"])
    assert (batch["full"]["image"].float() - batch["draft"]["image"].float()).abs().mean() < 1.0
    error = BatchAssembler(source, RandomResizedCropFlip(224), seed=0, decode="draft")[key]["error"]
    assert error.startswith(f"cannot decode image {first}: image file is truncated")


def test_draft_is_refused_where_nothing_would_use_it():
    validate(compose_train("experiment=imagenet_resnet50", "data.decode=draft"))
    with pytest.raises(ConfigError, match=r"^data.decode='draft' is invalid: has nothing to act on: only RandomResizedCropFlip"):
        validate(compose_train("data=tinyimagenet", "+data.decode=draft"))
