"""On-disk "-C" writers (augmix.corruptions.writer): formats, resume, atomicity."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augmix.corruptions import corrupt, corrupt_batch, image_rng, write_cifar_c, write_imagenet_c, writer
from augmix.regenerated import IN_PROGRESS_NAME

NAMES = ["gaussian_noise", "contrast"]


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(30, 220, size=(4, 1, 1, 3))
    ramp = np.linspace(-25, 25, 32)[None, :, None, None] + np.linspace(-25, 25, 32)[None, None, :, None]
    return np.clip(base + ramp + rng.normal(0, 8, (4, 32, 32, 3)), 0, 255).astype(np.uint8)


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_cifar_c_format(tmp_path, images):
    labels = np.array([3, 1, 4, 1])
    out = write_cifar_c(images, labels, tmp_path / "c", corruptions=NAMES, seed=5)
    assert sorted(p.name for p in out.iterdir()) == ["contrast.npy", "gaussian_noise.npy",
                                                     "labels.npy", "regenerated.json"]
    for name in NAMES:
        stacked = np.load(out / f"{name}.npy")
        assert stacked.dtype == np.uint8 and stacked.shape == (20, 32, 32, 3)
        for k in range(5):
            block = stacked[4 * k:4 * (k + 1)]
            assert np.array_equal(block, corrupt_batch(images, name, k + 1, seed=5)), (name, k)
    saved_labels = np.load(out / "labels.npy")
    assert np.array_equal(saved_labels, np.tile(labels, 5)) and saved_labels.shape == (20,)
    assert json.loads((out / "regenerated.json").read_text()) == {
        "regenerated": True, "generator": "augmix.corruptions", "format": "cifar-c",
        "table": 32, "seed": 5}


def test_cifar_c_is_corrupted_in_chunks_with_the_same_bytes(tmp_path, images, monkeypatch):
    labels = np.arange(4)
    whole = write_cifar_c(images, labels, tmp_path / "whole", corruptions=NAMES, seed=7)
    sizes, real = [], writer.corrupt_batch

    def recording(chunk, *args, **kwargs):
        sizes.append(len(chunk))
        return real(chunk, *args, **kwargs)

    monkeypatch.setattr(writer, "corrupt_batch", recording)
    monkeypatch.setattr(writer, "CHUNK", 3)
    chunked = write_cifar_c(images, labels, tmp_path / "chunked", corruptions=NAMES, seed=7)
    assert sizes == [3, 1] * 5 * len(NAMES)  # never the whole split at once
    for name in NAMES:
        reference = io.BytesIO()  # what np.save writes for the split corrupted in one call
        np.save(reference, np.concatenate([real(images, name, s, seed=7) for s in range(1, 6)]))
        assert (whole / f"{name}.npy").read_bytes() == reference.getvalue()
        assert (chunked / f"{name}.npy").read_bytes() == reference.getvalue()


def test_cifar_c_resume_skips_finished_files(tmp_path, images, monkeypatch):
    labels = np.arange(4)
    write_cifar_c(images, labels, tmp_path, corruptions=["contrast"], seed=1)
    before = _files(tmp_path)
    calls = []
    real = writer.corrupt_batch
    monkeypatch.setattr(writer, "corrupt_batch", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    write_cifar_c(images, labels, tmp_path, corruptions=["contrast", "fog"], seed=1)
    assert calls == ["fog"] * 5  # only the new corruption is generated
    after = _files(tmp_path)
    assert {k: after[k] for k in before} == before  # nothing rewritten
    assert "fog.npy" in after


def test_cifar_c_failure_leaves_no_partial_file_and_resumes(tmp_path, images, monkeypatch):
    labels = np.arange(4)
    real = writer.corrupt_batch

    def failing(images, name, severity, seed, **kwargs):
        if severity == 3:
            raise RuntimeError("disk full")
        return real(images, name, severity, seed, **kwargs)

    monkeypatch.setattr(writer, "corrupt_batch", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_cifar_c(images, labels, tmp_path, corruptions=["gaussian_noise"], seed=2)
    # not marked regenerated: only in progress, which a rerun with the same settings resumes
    assert sorted(p.name for p in tmp_path.iterdir()) == [IN_PROGRESS_NAME, "labels.npy"]

    monkeypatch.setattr(writer, "corrupt_batch", real)
    write_cifar_c(images, labels, tmp_path, corruptions=["gaussian_noise"], seed=2)
    fresh = write_cifar_c(images, labels, tmp_path / "fresh", corruptions=["gaussian_noise"], seed=2)
    assert np.load(tmp_path / "gaussian_noise.npy").tobytes() == np.load(fresh / "gaussian_noise.npy").tobytes()


def test_cifar_c_refuses_to_mix_runs(tmp_path, images):
    write_cifar_c(images, np.arange(4), tmp_path, corruptions=["contrast"], seed=1)
    with pytest.raises(ValueError, match="already holds a set made with"):
        write_cifar_c(images, np.arange(4), tmp_path, corruptions=["contrast"], seed=2)
    with pytest.raises(ValueError, match="different labels"):
        write_cifar_c(images, np.arange(4)[::-1], tmp_path, corruptions=["contrast"], seed=1)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))  # same labels, other size
    with pytest.raises(ValueError, match=r"expected uint8 \(20, 36, 36, 3\)"):
        write_cifar_c(padded, np.arange(4), tmp_path, corruptions=["contrast"], seed=1)


def _jpeg85(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def test_imagenet_c_layout_and_bytes(tmp_path, images):
    labels = np.array([0, 1, 0, 1])
    out = write_imagenet_c(images, labels, ["n01440764", "n01443537"], tmp_path, corruptions=["fog"], seed=9,
                           file_names=["a.JPEG", "b.JPEG", "c.JPEG", "d.JPEG"])
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = sorted([f"fog/{s}/n01440764/{f}" for s in range(1, 6) for f in ("a.JPEG", "c.JPEG")]
                      + [f"fog/{s}/n01443537/{f}" for s in range(1, 6) for f in ("b.JPEG", "d.JPEG")]
                      + ["regenerated.json"])
    assert files == expected
    for severity in (1, 5):
        for i, name in enumerate("abcd"):
            path = out / "fog" / str(severity) / ["n01440764", "n01443537"][labels[i]] / f"{name}.JPEG"
            pixels = corrupt(images[i], "fog", severity, rng=image_rng(9, i))
            assert path.read_bytes() == _jpeg85(pixels)  # quality 85, optimize=True
            with Image.open(path) as decoded:
                assert decoded.format == "JPEG" and decoded.size == (32, 32)
    marker = json.loads((out / "regenerated.json").read_text())
    assert marker["format"] == "imagenet-c" and marker["seed"] == 9 and marker["table"] == 32


def test_imagenet_c_default_names_resume_and_atomicity(tmp_path, images, monkeypatch):
    labels = np.array([1, 0, 1, 0])
    real_save = Image.Image.save
    saved = []

    def flaky_save(self, fp, *args, **kwargs):
        if len(saved) == 3:
            fp.write(b"\xff\xd8 partial")  # half-written JPEG, then crash
            raise OSError("killed")
        saved.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    with pytest.raises(OSError, match="killed"):
        write_imagenet_c(images, labels, ["cat", "dog"], tmp_path, corruptions=["contrast"], seed=0)
    files = _files(tmp_path)
    assert sorted(files) == [IN_PROGRESS_NAME, "contrast/1/cat/00000001.JPEG",
                             "contrast/1/dog/00000000.JPEG", "contrast/1/dog/00000002.JPEG"]
    assert not list(tmp_path.rglob("*.tmp"))

    monkeypatch.setattr(Image.Image, "save", real_save)
    write_imagenet_c(images, labels, ["cat", "dog"], tmp_path, corruptions=["contrast"], seed=0)
    after = _files(tmp_path)
    assert len(after) == 1 + 5 * 4 and "regenerated.json" in after and IN_PROGRESS_NAME not in after
    images_before = {k: v for k, v in files.items() if k != IN_PROGRESS_NAME}
    assert {k: after[k] for k in images_before} == images_before  # finished files were not rewritten
    fourth = tmp_path / "contrast/1/cat/00000003.JPEG"  # the one that crashed mid-write
    assert fourth.read_bytes() == _jpeg85(corrupt(images[3], "contrast", 1))

    monkeypatch.setattr(writer, "corrupt", lambda *a, **k: pytest.fail("resume recomputed an image"))
    write_imagenet_c(images, labels, ["cat", "dog"], tmp_path, corruptions=["contrast"], seed=0)
    assert _files(tmp_path) == after


@pytest.mark.parametrize("kwargs, message", [
    (dict(labels=np.array([0, 2, 0, 1])), "labels must index class_names"),
    (dict(labels=np.array([0, 1])), "labels must be 4 integers"),
    (dict(class_names=["a/b", "c"]), "cannot be used as a folder name"),
    (dict(file_names=["x.JPEG"] * 4), "unique names"),
    (dict(file_names=["../x", "b", "c", "d"]), "plain, non-hidden file name"),
    (dict(corruptions="fog"), "corruptions='fog' is invalid: must be a non-empty list drawn from"),
    (dict(corruptions=["fogg"]), r"corruptions=\['fogg'\] is invalid: unknown name\(s\) \['fogg'\]"),
    (dict(seed=-3), "seed must be a non-negative integer"),
])
def test_imagenet_c_bad_inputs(tmp_path, images, kwargs, message):
    args = dict(images=images, labels=np.array([0, 1, 0, 1]), class_names=["a", "b"],
                out_dir=tmp_path, corruptions=["contrast"], seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        write_imagenet_c(**args)
    assert not (tmp_path / "contrast").exists()
