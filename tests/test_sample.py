"""The packaged sample data (`--dataset=sample`), seed 003's MLP on it, and quiet run logs."""
import gzip
import re

import numpy as np
import pytest

from conftest import run_cli
from zoo import registry
from zoo.config import load_config
from zoo.data import SAMPLE_DIR, DataError, load
from zoo.data.images import read_idx
from zoo.train import run

MLP = ["model.conv_filters=[]", "model.dense_units=[256,128]", "model.dropout=0",
       "model.batch_norm=false", "model.augment=false"]


def test_every_model_defaults_to_the_sample():
    assert {load_config(name).data.dataset for name in registry.names()} == {"sample"}


def test_sample_digits_are_mnist_test_set_split_8000_2000():
    train, evaluation, info = load(load_config("mnist_cnn"), "image_classification")
    assert (info.train_examples, info.eval_examples, info.num_classes) == (8000, 2000, 10)
    labels = read_idx(SAMPLE_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert len(labels) == 10_000
    train_labels = np.concatenate([y for _, y in train.batch(4000)])
    eval_labels = np.concatenate([y for _, y in evaluation.batch(4000)])
    assert np.array_equal(train_labels, labels[:8000])
    assert np.array_equal(eval_labels, labels[8000:])
    # slices apply within the sample's splits
    cfg = load_config("mnist_cnn", overrides=["data.train_split=train[-10:]",
                                              "data.eval_split=validation[:5]"])
    train, evaluation, info = load(cfg, "image_classification")
    assert (info.train_examples, info.eval_examples) == (10, 5)
    assert np.array_equal(next(iter(evaluation.batch(5)))[1], labels[8000:8005])
    with pytest.raises(DataError, match=r"sample: no split 'extra'; the sample has train"):
        load(load_config("mnist_cnn", overrides=["data.train_split=extra"]),
             "image_classification")


def test_sample_for_a_two_class_image_model_is_rgb_zeros_and_ones():
    train, _, info = load(load_config("imgcls"), "image_classification")
    assert (info.train_examples, info.eval_examples, info.class_names) == (1678, 437, ["0", "1"])
    images, labels = next(iter(train.batch(6)))
    assert images.shape == (6, 150, 150, 3) and set(labels.numpy()) <= {0, 1}


def test_sample_sentences_are_sst2_train_and_dev():
    for model in ("textcls", "bert"):  # eval_split test / validation: both dev.tsv
        train, evaluation, info = load(load_config(model), "text_classification")
        assert (info.train_examples, info.eval_examples, info.num_classes) == (67_349, 872, 2)
    first, label = next(iter(train))
    assert first.numpy() == b"hide new secretions from the parental units" and label == 0


def test_seed_003_mlp_is_784_256_128_10():
    cfg = load_config("mnist_cnn", overrides=MLP)
    model = registry.get("mnist_cnn").build(cfg.model)
    dense = [layer.units for layer in model.layers if type(layer).__name__ == "Dense"]
    assert dense == [256, 128, 10]
    assert model.count_params() == 235_146 == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    # an integer is still one layer, as in the YAML
    assert load_config("mnist_cnn", overrides=["model.dense_units=128"]).model.dense_units == 128


def test_seed_003_mlp_learns_the_sample_digits(tmp_path):
    cfg = load_config("mnist_cnn", overrides=MLP + [
        "train.epochs=6", "train.mixed_precision=none", "train.steps_per_execution=8"])
    metrics = run(cfg, tmp_path)
    assert metrics["train_examples"] == 8000 and metrics["eval_examples"] == 2000
    assert metrics["accuracy"] >= 0.95, metrics


# absl's Python INFO lines; TensorFlow's C++ library writes its own (`port.cc`, ...) at import
PYTHON_INFO = re.compile(r"^I\d{4} [\d:.]+ +\d+ (\S+\.py):\d+\] ", re.M)


def test_a_run_logs_progress_and_summary_but_not_tensorflow_info(tmp_path):
    args = ["zoo.train", "--model=mnist_cnn", "--epochs=1", "--batch_size=32",
            "--set=data.max_examples=256", "--set=data.max_eval_examples=64",
            "--set=train.checkpoint_every_steps=2", "--set=train.log_every_steps=2",
            "--set=train.steps_per_execution=1"]
    quiet = run_cli(*args, f"--model_dir={tmp_path / 'quiet'}")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    log = quiet.stderr
    assert "Sharding callback" not in log and "functional_saver" not in log
    zoo_files = {p.name for p in (SAMPLE_DIR.parent.parent).rglob("*.py")}
    assert set(PYTHON_INFO.findall(log)) <= zoo_files, log[-3000:]
    assert "data: sample: the MNIST test set" in log
    assert re.search(r"epoch 1/1 step 2/8 loss=", log)
    assert "epoch 1/1 done: loss=" in log
    assert re.search(r"accuracy [\d.]+, \d+ examples/s, [\d.]+ s; wrote ", log)
    verbose = run_cli(*args, f"--model_dir={tmp_path / 'verbose'}", "--verbose")
    assert verbose.returncode == 0 and "Sharding callback duration" in verbose.stderr


def test_tsv_files_may_be_gzip_compressed(tmp_path):
    for name, rows in (("train", "good\t1\nbad\t0\nfine\t1\n"), ("dev", "awful\t0\n")):
        text = f"sentence\tlabel\n{rows}"
        (tmp_path / f"{name}.tsv.gz").write_bytes(gzip.compress(text.encode()))
    cfg = load_config("textcls", overrides=[f"data.dataset=tsv:{tmp_path}"])
    train, evaluation, info = load(cfg, "text_classification")
    assert (info.train_examples, info.eval_examples) == (3, 1)
    assert [s.numpy() for s, _ in evaluation] == [b"awful"]
    (tmp_path / "dev.tsv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"dev.tsv.gz: can't read"):
        load(cfg, "text_classification")
