"""Dataset files that are hostile or damaged: refused before they run code or cost compute, each
named in one line.

| Case | Before | After |
|------|--------|-------|
| CIFAR pickle (``batches.meta``, a data batch) holding an object with ``__reduce__`` | ``pickle.load`` ran it (the marker file was written) on ``train.py data=cifar10`` and in evaluation | refused by an allowlist unpickler: "<file> contains a Python object of type os.system, which is not loaded for safety: CIFAR files hold only dicts, lists, strings, numbers and numpy arrays; re-download the dataset" |
| CIFAR batch holding a list, or without ``labels`` / ``data`` | ``TypeError`` / ``KeyError`` traceback | "<file> holds a list, not the dict a CIFAR batch holds; re-download the dataset" / "<file> has no 'labels' entry (it has [...]); is it a file of this CIFAR variant? Re-download the dataset" |
| The official archives' own pickling (Python 2 cPickle, protocol 2, ``numpy.core.multiarray``) and Python 3 re-saves (protocols 2 and 5) | loaded (a copy with byte-string keys: ``KeyError``) | still loaded, under numpy 1's and 2's module names, byte-string keys too; ``_codecs.encode`` for latin-1 only |
| Symlink loop in an image folder | followed: each image counted dozens of times | every real folder walked once; links to folders elsewhere still followed; a file reached twice warns once |
| 1x1 or 200x150 image inside a -C set | padded or cropped without a word (only the first image per set was checked) | every image checked as it is decoded: "<file> is 1x1 but the images of set fog-1 must be 32x32 (...); a -C set holds images of one size, so replace the file from the released archive", on every rank |
| Truncated JPEG in a -C set | found after clean and earlier sets were computed | found by the file check before any compute: "1 unreadable image file(s) in <root>, e.g. <file> is truncated or damaged (...)" |
| ``make_corrupted.py`` into a folder of released files | failed, but left ``regenerated.json`` behind, so evaluations labelled the released data REGENERATED | refused before writing anything: "cannot write <dir>: <dir> already holds files this generator did not write (...); write the set into a new or empty folder"; a failed run leaves only a hidden in-progress marker, which evaluation refuses |
| ``make_corrupted.py out=<an existing file>`` | ``FileExistsError`` traceback | "out=<file> is a file, not a folder; give a new or empty folder for the -C set" |
| Empty, truncated, undecodable or too small training image | stopped the run when its batch came up ("cannot crop 64px from a 9x9 image" named no file) | every file checked before training (``data.verify_files``): "4 bad image file(s) in <root>: <file> is empty; ..."; ``data.on_bad_image=skip`` leaves them out, logged once each with a count at the end, the same batches whether found before or during training |
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from augmix.config import validate_data
from augmix.corruptions.make import write_corrupted
from augmix.data import sources
from augmix.data.verify import find_bad_images
from augmix.errors import ConfigError, DataError
from augmix.evaluation import commands as commands_module
from augmix.evaluation import evaluate
from augmix.evaluation.inputs import benchmark_spec
from augmix.evaluation.inputs.imagenet_c import imagenet_c_sets
from augmix.evaluation.run import ResultStore, run_sets
from augmix.files import StorageFullError
from augmix.regenerated import IN_PROGRESS_NAME, MARKER_NAME
from augmix.training import build_datamodule, train
from tests.conftest import compose_train, write_cifar10, write_cifar100, write_image_folder
from tests.evaluation_fixtures import (
    compose_config,
    digits_test,
    evaluate_config,
    write_cifar_c_fixture,
    write_imagenet_c_fixture,
)
from tests.test_evaluation_distributed import ThreadRanks

CLASSES = [str(d) for d in range(10)]


# ------------------------------------------------------------------------------- CIFAR pickles


class Payload:
    """What a hostile pickle carries: unpickling it calls ``function(*args)``."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _python2_pickle(value) -> bytes:
    """``value`` as Python 2's cPickle (protocol 2) wrote the official CIFAR archives: str as
    (SHORT_)BINSTRING, small ints as BININT1/BININT2, arrays through ``numpy.core.multiarray._reconstruct``
    with a ``numpy.dtype('u1', 0, 1)`` and the raw bytes as a string."""
    out = bytearray(b"\x80\x02")

    def put(item) -> None:
        if item is None:
            out.extend(b"N")
        elif isinstance(item, int):
            if 0 <= item < 256:
                out.extend(b"K" + bytes([item]))
            elif 0 <= item < 65536:
                out.extend(b"M" + item.to_bytes(2, "little"))
            else:
                out.extend(b"J" + item.to_bytes(4, "little", signed=True))
        elif isinstance(item, (str, bytes)):
            raw = item.encode("latin-1") if isinstance(item, str) else item
            out.extend((b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + len(raw).to_bytes(4, "little")) + raw)
        elif isinstance(item, tuple):  # MARK ... TUPLE
            out.extend(b"(")
            for element in item:
                put(element)
            out.extend(b"t")
        elif isinstance(item, list):
            out.extend(b"](")
            for element in item:
                put(element)
            out.extend(b"e")
        elif isinstance(item, dict):
            out.extend(b"}(")
            for key, element in item.items():
                put(key)
                put(element)
            out.extend(b"u")
        elif isinstance(item, np.ndarray):  # a 2-D uint8 array, as the data batches hold
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R")
            out.extend(b"(K\x01")  # state: (version, shape, dtype, fortran order, raw bytes)
            put(item.shape[0])
            put(item.shape[1])
            out.extend(b"\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R")
            out.extend(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            put(item.astype(np.uint8).tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(item))

    put(value)
    return bytes(out + b".")


def _write_python2_cifar10(root: Path, per_batch: int = 6) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            "batch_label": f"{name} of 5",
            "filenames": [f"img_{i}.png" for i in range(per_batch)],
        }
        (folder / name).write_bytes(_python2_pickle(entry))
    meta = {"num_cases_per_batch": per_batch, "label_names": names, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(_python2_pickle(meta))
    return root


def test_the_official_archives_python2_pickles_load(tmp_path):
    root = _write_python2_cifar10(tmp_path)
    raw = (root / "cifar-10-batches-py" / "data_batch_2").read_bytes()
    # the archive's opcodes, less its memo puts
    assert raw.startswith(b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\n")
    entry = pickle.loads(raw, encoding="latin1")  # what the loader used to do, for reference
    train = sources.load_cifar(root, "cifar10", "train")
    assert len(train) == 30 and train.classes[9] == "truck"
    assert torch.equal(train.images[6].flatten(), torch.from_numpy(entry["data"][0]))
    assert train.target(7) == entry["labels"][1]


@pytest.mark.parametrize("protocol", [2, 5])
def test_python3_resaved_pickles_load(tmp_path, protocol):
    root = write_cifar100(tmp_path)  # the authors' layout, re-pickled by Python 3
    folder = root / "cifar-100-python"
    for name in ("train", "test", "meta"):
        entry = pickle.loads((folder / name).read_bytes())
        if name == "train":  # bytes keys, as a copy once loaded with encoding="bytes" holds them
            entry = {key.encode(): value for key, value in entry.items()}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=protocol))
    train = sources.load_cifar(root, "cifar100", "train")
    assert len(train) == 40 and train.target(37) == 37


@pytest.mark.parametrize("file", ["batches.meta", "data_batch_1", "test_batch"])
@pytest.mark.parametrize("payload", ["pickled", "handwritten"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, file, payload):
    root = write_cifar10(tmp_path / "data")
    marker = tmp_path / "PWNED"
    path = root / "cifar-10-batches-py" / file
    if payload == "pickled":  # an object whose __reduce__ calls a function of this project
        from augmix.files import write_text

        entry = pickle.loads(path.read_bytes())
        entry["labels" if "batch" in file else "label_names"] = Payload(write_text, str(marker), "pwned")
        path.write_bytes(pickle.dumps(entry))
        refused = "augmix.files.write_text"
    else:  # os.system, named in the file as an attacker writes it (protocol 0)
        path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
        refused = "os.system"
    split = "test" if file == "test_batch" else "train"
    message = (
        f"{path} contains a Python object of type {refused}, which is not loaded for safety: CIFAR files hold only "
        "dicts, lists, strings, numbers and numpy arrays; re-download the dataset"
    )
    with pytest.raises(DataError) as error:
        sources.load_cifar(root, "cifar10", split)
    assert str(error.value) == message
    assert not marker.exists()


def test_train_py_data_cifar10_refuses_it_before_anything_runs(tmp_path):
    root = write_cifar10(tmp_path / "data")
    marker = tmp_path / "PWNED"
    meta = root / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({"label_names": Payload(os.system, f"touch {marker}")}))
    cfg = compose_train("data=cifar10", f"data.root={root}", "data.download=false", "data.num_workers=0")
    module = build_datamodule(cfg)
    with pytest.raises(DataError, match=r"batches.meta contains a Python object of type posix.system, which is not"):
        module.setup("fit")
    assert not marker.exists()


def test_codecs_encode_is_allowed_for_latin1_only(tmp_path):
    root = write_cifar10(tmp_path / "data")
    meta = root / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00rot_13\x86R.")
    with pytest.raises(DataError, match=r"type _codecs.encode \(encoding 'rot_13'\), which is not loaded"):
        sources.load_cifar(root, "cifar10", "test")


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2, 3], "holds a list, not the dict a CIFAR batch holds; re-download the dataset"),
        ({"data": np.zeros((2, 3072), np.uint8)}, r"has no 'labels' entry \(it has \['data'\]\); is it a file of"),
        ({"labels": [0, 1]}, r"has no 'data' entry \(it has \['labels'\]\)"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": ["a", "b"]}, r"holds labels <U1 \(2,\) for 2 images"),
        ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, r"holds data uint8 \(2, 100\); expected"),
    ],
)
def test_a_batch_of_the_wrong_shape_is_named_in_one_line(tmp_path, content, message):
    root = write_cifar10(tmp_path / "data")
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(DataError, match=re.escape(str(path)) + " " + message):
        sources.load_cifar(root, "cifar10", "test")


def test_cifar100_meta_without_its_label_names_and_an_empty_file(tmp_path):
    root = write_cifar100(tmp_path)
    meta = root / "cifar-100-python" / "meta"
    meta.write_bytes(pickle.dumps({"label_names": ["a"]}))  # CIFAR-10's key in CIFAR-100's file
    with pytest.raises(DataError, match=r"meta has no 'fine_label_names' entry"):
        sources.load_cifar(root, "cifar100", "test")
    meta.write_bytes(b"")
    with pytest.raises(DataError, match=r"meta is not a readable CIFAR pickle \(the file is empty\)"):
        sources.load_cifar(root, "cifar100", "test")


# ----------------------------------------------------------------------------- image folders


def test_a_symlink_loop_is_walked_once_and_links_elsewhere_are_followed(tmp_path):
    root = write_image_folder(tmp_path / "imagenet", per_class=2)
    train = root / "train"
    (train / "n01" / "loop").symlink_to(train / "n01")  # back into its own class
    (train / "n02" / "up").symlink_to(train)  # back to the whole split
    elsewhere = tmp_path / "extra"
    elsewhere.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40)).save(elsewhere / f"extra_{i}.JPEG")
    (train / "n03" / "more").symlink_to(elsewhere)  # a dataset assembled from links: kept
    source = sources.FolderSource(train)
    counts = [sum(1 for _, label in source.samples if label == k) for k in range(3)]
    assert counts == [2, 2, 5]
    assert len({os.path.realpath(path) for path in source.files()}) == 9


def test_a_file_reached_twice_warns_once(tmp_path):
    root = write_image_folder(tmp_path / "imagenet", per_class=2)
    train = root / "train"
    (train / "n02" / "copy_a.JPEG").symlink_to(train / "n01" / "n01_0.JPEG")
    (train / "n03" / "copy_b.JPEG").symlink_to(train / "n01" / "n01_1.JPEG")
    with pytest.warns(UserWarning, match=r"2 image file\(s\) are reached more than once") as warned:
        source = sources.FolderSource(train)
    assert len(warned) == 1 and len(source) == 8


# ------------------------------------------------------------------------------------ -C sets


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _imagenet_c(tmp_path: Path, sets=(("fog", 1),)) -> tuple[Path, list[str]]:
    images, labels = digits_test(40)  # every digit appears; 32x32 like the model's input
    root = write_imagenet_c_fixture(tmp_path / "c", {key: images for key in sets}, labels, CLASSES, ext="JPEG")
    overrides = [
        "benchmark=imagenetc",
        f"benchmark.root={root}",
        "benchmark.num_classes=10",
        f"benchmark.corruptions=[{','.join(sorted({name for name, _ in sets}))}]",
        f"benchmark.severities=[{','.join(str(s) for s in sorted({s for _, s in sets}))}]",
        "benchmark.limit_per_set=40",
    ]
    return root, overrides


@pytest.mark.parametrize("size, protocol", [((1, 1), "benchmark"), ((200, 150), "augmix_official")])
def test_an_odd_sized_image_inside_a_c_set_is_named_when_decoded(tmp_path, checkpoint, size, protocol):
    root, overrides = _imagenet_c(tmp_path)
    odd = sorted((root / "fog" / "1" / "7").iterdir())[-1]  # not the first image of the set
    odd.write_bytes(_jpeg(np.zeros((size[1], size[0], 3), np.uint8)))
    cfg = evaluate_config(checkpoint, tmp_path / "out", [*overrides, f"benchmark.protocol={protocol}"])
    with pytest.raises(DataError) as error:
        evaluate(cfg)
    reason = (
        "data.image_size, since benchmark.protocol=benchmark does not resize"
        if protocol == "benchmark"
        else f"the size of {sorted((root / 'fog' / '1' / '0').iterdir())[0]}"
    )
    assert str(error.value) == (
        f"{odd} is {size[0]}x{size[1]} but the images of set fog-1 must be 32x32 ({reason}); a -C set holds images "
        "of one size, so replace the file from the released archive"
    )
    assert json.loads((tmp_path / "out" / "robustness_sets" / "clean.json").read_text())  # the clean set is kept


def test_an_odd_sized_image_on_one_rank_stops_every_rank(tmp_path):
    root, overrides = _imagenet_c(tmp_path, sets=(("fog", 1), ("snow", 1)))
    odd = sorted((root / "fog" / "1" / "9").iterdir())[-1]  # the end of the second set: rank 1's half
    odd.write_bytes(_jpeg(np.zeros((9, 9, 3), np.uint8)))
    spec = benchmark_spec({"name": "c", "format": "imagenet_c", "root": str(root), "corruptions": ["fog", "snow"],
                           "severities": [1]})
    sets = imagenet_c_sets(spec, CLASSES, lambda image: image, 32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    store = ResultStore(tmp_path / "sets", {})

    def run(fabric) -> dict:
        return run_sets(fabric, model, lambda x: x.float(), sets, store, 8, 0, num_classes=10, show_progress=False)

    outcomes = ThreadRanks(2).run(run)
    assert [type(outcome) for outcome in outcomes] == [DataError, DataError], outcomes
    assert str(outcomes[0]) == str(outcomes[1]) and str(outcomes[0]).startswith(f"{odd} is 9x9 but the images")
    assert store.read("snow-1") is not None and store.read("fog-1") is None  # canonical order: snow first


@pytest.fixture
def no_compute(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the evaluation loop started before the bad input was reported")

    monkeypatch.setattr(commands_module, "run_sets", fail)


def test_a_truncated_jpeg_in_a_c_set_is_found_before_any_compute(tmp_path, checkpoint, no_compute):
    root, overrides = _imagenet_c(tmp_path, sets=(("fog", 1), ("fog", 2)))
    truncated = sorted((root / "fog" / "2" / "3").iterdir())[-1]
    truncated.write_bytes(truncated.read_bytes()[:-40])  # a download cut short: the header is intact
    with pytest.raises(DataError) as error:
        evaluate(evaluate_config(checkpoint, tmp_path / "out", overrides))
    assert str(error.value) == (
        f"1 unreadable image file(s) in {root}, e.g. {truncated} is truncated or damaged (a JPEG file that does not "
        "decode: Image is incomplete or truncated). Replace them from the released archive (or set "
        "benchmark.verify_files=false to skip this check)."
    )


def test_a_jpeg_with_a_trailer_after_its_end_marker_still_passes(tmp_path):
    """Cameras append data after the JPEG end marker; the decoder reads such files, so must the check."""
    path = tmp_path / "trailer.JPEG"
    path.write_bytes(_jpeg(np.zeros((32, 32, 3), np.uint8)) + b"SEFH" + bytes(4000))
    assert find_bad_images([str(path)], min_size=1) == []


# ------------------------------------------------------------------------------ make_corrupted


def _run_make_corrupted(tmp_path: Path, capsys, *overrides: str) -> str:
    import make_corrupted

    cfg = compose_config("make_corrupted", ["data=digits", "corruptions=[contrast]", "limit=8", *overrides])
    with pytest.raises(SystemExit) as exit_code:
        make_corrupted.main(cfg)
    assert exit_code.value.code == 2
    return capsys.readouterr().err.strip()


def test_make_corrupted_refuses_a_folder_of_released_files(tmp_path, capsys):
    images, labels = digits_test(8)
    released = write_cifar_c_fixture(tmp_path / "CIFAR-10-C", {"contrast": np.tile(images, (5, 1, 1, 1))}, labels[::-1])
    before = {path.name: path.read_bytes() for path in released.iterdir()}
    line = _run_make_corrupted(tmp_path, capsys, f"out={released}")
    assert line == (
        f"Error: cannot write {released}: {released} already holds files this generator did not write (contrast.npy, "
        "labels.npy); write the set into a new or empty folder"
    )
    assert {path.name: path.read_bytes() for path in released.iterdir()} == before  # nothing added, nothing changed
    from augmix.evaluation.inputs import regeneration_info

    spec = benchmark_spec({"name": "cifar10c", "format": "cifar_c", "root": str(released)})
    assert regeneration_info(spec, 32) is None  # evaluations still call it released


def test_a_failed_run_is_not_marked_regenerated_and_resumes(tmp_path, monkeypatch):
    from augmix.corruptions import writer

    out = tmp_path / "digits-c"
    data = compose_config("make_corrupted", ["data=digits"]).data
    real = writer.corrupt_batch

    def failing(images, name, severity, seed, **kwargs):
        if name == "fog":
            raise OSError(28, "No space left on device")
        return real(images, name, severity, seed, **kwargs)

    monkeypatch.setattr(writer, "corrupt_batch", failing)
    with pytest.raises(StorageFullError, match="no space left on device"):
        write_corrupted(data, "cifar_c", out, ["contrast", "fog"], limit=8)
    assert not (out / MARKER_NAME).exists() and (out / IN_PROGRESS_NAME).is_file()
    spec = benchmark_spec({"name": "c", "format": "cifar_c", "root": str(out), "corruptions": ["contrast"]})
    from augmix.evaluation.inputs import corrupted_sets

    with pytest.raises(DataError, match="holds a -C set that make_corrupted.py has not finished writing; run the same"):
        corrupted_sets(spec, sources.load_digits("test"), lambda image: image, 32, 10)
    monkeypatch.setattr(writer, "corrupt_batch", real)
    write_corrupted(data, "cifar_c", out, ["contrast", "fog"], limit=8)
    assert json.loads((out / MARKER_NAME).read_text())["format"] == "cifar-c" and not (out / IN_PROGRESS_NAME).exists()


def test_make_corrupted_out_an_existing_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    line = _run_make_corrupted(tmp_path, capsys, f"out={target}")
    assert line == f"Error: out={target} is a file, not a folder; give a new or empty folder for the -C set"
    assert target.read_text() == "mine"


# ---------------------------------------------------------------------------- training images


def _damage(root: Path) -> dict[str, Path]:
    """Four kinds of bad training image, none of them first in its class."""
    train = root / "train"
    bad = {
        "empty": train / "n01" / "n01_2.JPEG",
        "truncated": train / "n02" / "n02_1.JPEG",
        "undecodable": train / "n02" / "n02_3.JPEG",
        "small": train / "n03" / "n03_2.JPEG",
    }
    bad["empty"].write_bytes(b"")
    bad["truncated"].write_bytes(bad["truncated"].read_bytes()[:300])
    bad["undecodable"].write_bytes(b"<html>403 Forbidden</html>")
    Image.new("RGB", (9, 9)).save(bad["small"])
    return bad


def _folder_config(root: Path, out: Path, *overrides: str):
    """Tiny-ImageNet's data config, its crop scaled to 32px (from 4px padding: images need 24px), on a
    3-class folder, a small model and no AugMix (these tests are about which images arrive)."""
    return compose_train(
        "data=tinyimagenet", "data.image_size=32", "data.train_transform.size=32", "data.eval_transform.size=32",
        f"data.root={root}", "data.num_classes=3", "data.num_workers=0", "data.batch_size=4",
        "data.eval_batch_size=4", "augmix.enabled=false", "model.backbone=cifar_wrn16_1", "trainer=cpu",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
        "+trainer.num_sanity_val_steps=0", "evaluate_after_fit=null", "logger=csv", f"paths.output_dir={out}",
        *overrides,
    )


def _datamodule(cfg):
    return build_datamodule(cfg)


@pytest.fixture
def damaged(tmp_path) -> tuple[Path, dict[str, Path]]:
    root = write_image_folder(tmp_path / "tiny", per_class=4, size=32)
    return root, _damage(root)


def test_bad_training_images_are_all_named_before_training(tmp_path, damaged):
    root, bad = damaged
    with pytest.raises(DataError) as error:
        train(_folder_config(root, tmp_path / "run"))
    assert str(error.value) == (
        f"4 bad image file(s) in {root}: {bad['empty']} is empty; {bad['truncated']} is truncated or damaged (a JPEG "
        f"file that does not decode: Image is incomplete or truncated); {bad['undecodable']} is not a JPEG, PNG, BMP "
        f"or WebP file (it starts with b'<html>403 Fo'); {bad['small']} is 9x9, smaller than the 24x24 the training "
        "crop needs. Replace or remove them, or set data.on_bad_image=skip to leave them out (data.verify_files=false "
        "skips this check)"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()  # not one batch trained


@pytest.mark.parametrize("kind", ["truncated", "small"])
def test_without_the_check_a_bad_image_is_named_in_one_line_when_its_batch_comes(tmp_path, damaged, kind):
    root, bad = damaged
    cfg = _folder_config(root, tmp_path / "run", "data.verify_files=false", "data.num_workers=1",
                         "data.persistent_workers=false", "data.batch_size=16")
    module = _datamodule(cfg)
    module.setup("fit")
    for path in set(bad.values()) - {bad[kind]}:  # leave one bad file, so its message is the one raised
        path.write_bytes(_jpeg(np.zeros((32, 32, 3), np.uint8)))
    batch = next(iter(module.train_dataloader()))  # built in a loader worker process
    with pytest.raises(DataError) as error:
        module.on_after_batch_transfer(batch, 0)
    message = str(error.value)
    expected = {
        "truncated": f"cannot decode image {bad['truncated']}: Image is incomplete or truncated. "
        "Remove or replace the file.",
        "small": f"{bad['small']}: a 9x9 image is smaller than the 24x24 this crop needs "
        "(a 32px crop after padding by 4); remove or replace the file",
    }[kind]
    assert message == expected + " (or set data.on_bad_image=skip to leave such files out)"


def _epoch(module, epoch: int) -> list[dict]:
    loader = module.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [module.finish_batch(batch, training=False) for batch in loader]


def test_skip_gives_the_same_batches_whether_bad_files_are_found_before_or_during_training(tmp_path, damaged, caplog):
    root, bad = damaged
    checked = _datamodule(_folder_config(root, tmp_path / "a", "data.on_bad_image=skip"))
    unchecked = _datamodule(_folder_config(root, tmp_path / "b", "data.on_bad_image=skip", "data.verify_files=false"))
    with caplog.at_level(logging.WARNING, logger="augmix.data.datamodule"):
        checked.setup("fit")
        unchecked.setup("fit")
        first, second = _epoch(checked, 0), _epoch(unchecked, 0)
        again = _epoch(unchecked, 0)
    for a, b, c in zip(first, second, again):
        assert torch.equal(a["views"][0], b["views"][0]) and torch.equal(a["target"], b["target"])
        assert torch.equal(b["views"][0], c["views"][0])
    assert sum(len(batch["target"]) for batch in first) == 12  # every slot filled by a readable image
    assert set(checked.bad_files) == set(unchecked.bad_files) == {str(path) for path in bad.values()}
    skipped = [record.getMessage() for record in caplog.records if "skipping bad image" in record.getMessage()]
    assert len(skipped) == 8  # each file once per module, though the unchecked one met them twice


def test_skip_trains_and_reports_the_count_at_the_end(tmp_path, damaged, caplog):
    root, bad = damaged
    with caplog.at_level(logging.WARNING, logger="augmix.data.datamodule"):
        metrics = train(_folder_config(root, tmp_path / "run", "data.on_bad_image=skip"))
    assert metrics["finished"] and (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    messages = [record.getMessage() for record in caplog.records if record.name == "augmix.data.datamodule"]
    assert sum("skipping bad image" in message for message in messages) == 4
    assert messages[-1] == (
        "4 bad image file(s) were left out of this run (data.on_bad_image=skip), each replaced by the next readable "
        "image of its split; each is named above"
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.on_bad_image=ignore", "data.on_bad_image='ignore' is invalid: must be 'error'"),
        ("data.verify_files=sometimes", "data.verify_files='sometimes' is invalid: must be true or false"),
    ],
)
def test_the_new_data_settings_are_validated(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_data(compose_train("data=tinyimagenet", override).data)
