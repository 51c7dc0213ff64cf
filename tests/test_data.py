"""Data sources: IDX files, class folders, TFDS offline failure, synthetic data."""
import gzip
import time

import numpy as np
import pytest

from conftest import write_png
from zoo.config import load_config
from zoo.data import DataError, load


def write_idx(path, array, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def idx_dir(tmp_path, n=40, compress=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}",
                  rng.integers(0, 255, (n, 28, 28)), compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10, compress)
    return tmp_path


def cfg_for(model, dataset, *overrides):
    return load_config(model, overrides=[f"data.dataset={dataset}", *overrides])


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reads_gzip_and_raw_files_with_split_slices(tmp_path, compress):
    directory = idx_dir(tmp_path, compress=compress)
    cfg = cfg_for("mnist_cnn", f"idx:{directory}", "data.train_split=train[:30]",
                  "data.eval_split=test[30:]")
    train, evaluation, info = load(cfg, "image_classification")
    images, labels = next(iter(train.batch(100)))
    assert images.shape == (30, 28, 28, 1) and images.dtype.name == "uint8"
    assert labels.numpy().tolist() == [k % 10 for k in range(30)]
    assert info.train_examples == 30 and info.eval_examples == 10 and info.num_classes == 10
    assert len(list(evaluation)) == 10


def test_idx_errors_name_the_file(tmp_path):
    directory = idx_dir(tmp_path)
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: truncated"):
        load(cfg_for("mnist_cnn", f"idx:{directory}"), "image_classification")
    with pytest.raises(DataError, match=r"no nope-images-idx3-ubyte\[.gz\] \(found: "):
        load(cfg_for("mnist_cnn", f"idx:{directory}", "data.train_split=nope"),
             "image_classification")


def image_folder(root, sizes=((20, 30), (40, 28), (28, 28)), classes=("cat", "dog")):
    rng = np.random.default_rng(1)
    for split in ("train", "validation"):
        for label in classes:
            for k, (h, w) in enumerate(sizes):
                write_png(root / split / label / f"{k}.png",
                          rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return root


def test_folder_resizes_images_of_any_size(tmp_path):
    root = image_folder(tmp_path)
    cfg = cfg_for("imgcls", f"folder:{root}", "model.image_size=32", "model.conv_filters=[8]")
    train, evaluation, info = load(cfg, "image_classification")
    images, labels = next(iter(train.batch(10)))
    assert images.shape == (6, 32, 32, 3) and images.dtype.name == "uint8"
    assert sorted(labels.numpy().tolist()) == [0, 0, 0, 1, 1, 1]
    assert info.class_names == ["cat", "dog"] and info.eval_examples == 6


def test_folder_errors_name_the_bad_path(tmp_path):
    root = image_folder(tmp_path / "a")
    (root / "train" / "dog" / "1.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"train/dog/1.png: not a JPEG, PNG, BMP or GIF image"):
        load(cfg_for("imgcls", f"folder:{root}"), "image_classification")

    root = image_folder(tmp_path / "b")
    for f in (root / "validation" / "cat").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"validation/cat: empty class folder"):
        load(cfg_for("imgcls", f"folder:{root}"), "image_classification")

    root = image_folder(tmp_path / "c")
    write_png(root / "validation" / "bird" / "0.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"class folders \['bird'\] are not among the training"):
        load(cfg_for("imgcls", f"folder:{root}"), "image_classification")

    with pytest.raises(DataError, match="folder: directory not found"):
        load(cfg_for("imgcls", f"folder:{tmp_path / 'missing'}"), "image_classification")


def test_tfds_fails_fast_offline_naming_local_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    cfg = cfg_for("mnist_cnn", "tfds:mnist", f"data.data_dir={tmp_path}")
    started = time.monotonic()
    with pytest.raises(DataError) as err:
        load(cfg, "image_classification")
    assert time.monotonic() - started < 30
    message = str(err.value)
    assert "tfds:mnist is not in" in message and "network is unreachable" in message
    assert "idx:DIR" in message and "folder:DIR" in message and "synthetic" in message


def test_synthetic_images_are_deterministic_and_balanced():
    cfg = cfg_for("mnist_cnn", "synthetic", "data.synthetic_examples=400")
    first = next(iter(load(cfg, "image_classification")[0].batch(400)))
    again = next(iter(load(cfg, "image_classification")[0].batch(400)))
    assert np.array_equal(first[0], again[0])
    counts = np.bincount(first[1].numpy(), minlength=10)
    assert counts.min() > 20


def test_text_dataset_for_an_image_model_is_refused():
    from zoo.config import ConfigError
    with pytest.raises(ConfigError, match="is text; mnist_cnn takes images"):
        load(cfg_for("mnist_cnn", "tsv:/tmp"), "image_classification")
