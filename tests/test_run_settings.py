"""zoo.train.run leaves the process as it found it, and refuses to resume a run with another
training setup."""
from __future__ import annotations

import pytest
import tf_keras as keras
from tensorflow.python.framework import config as tf_config

from zoo.config import ConfigError, load_config
from zoo.train import run

TINY = ["data.dataset=synthetic", "data.synthetic_examples=128", "train.batch_size=32",
        "train.epochs=1", "model.conv_filters=[4]", "model.dense_units=8",
        "model.augment=false", "train.strategy=cpu"]


def test_a_failed_run_restores_the_precision_policy_and_op_determinism(tmp_path):
    assert keras.mixed_precision.global_policy().name == "float32"
    assert not tf_config.is_op_determinism_enabled()
    cfg = load_config("mnist_cnn", overrides=[
        *TINY, "train.mixed_precision=mixed_bfloat16", "train.deterministic=true",
        "train.batch_size=256"])  # more than the 128 examples: fails after both are set
    with pytest.raises(ConfigError, match="larger than the 128 training examples"):
        run(cfg, tmp_path)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert not tf_config.is_op_determinism_enabled()


def test_a_run_restores_the_callers_settings(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        run(load_config("mnist_cnn", overrides=[*TINY, "train.deterministic=true"]), tmp_path)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert not tf_config.is_op_determinism_enabled()
    finally:
        keras.mixed_precision.set_global_policy("float32")
        tf_config.disable_op_determinism()


@pytest.mark.parametrize("change", [
    "train.batch_size=16", "train.batch_scaling_examples=32", "train.steps_per_epoch=2",
    "data.synthetic_examples=256",
    "data.dataset=sample", "data.train_split=train[:50%]", "data.eval_split=train"])
def test_resuming_with_another_training_setup_is_refused(tmp_path_factory, change, first_run):
    model_dir = tmp_path_factory.mktemp("resume")
    for path in first_run.iterdir():  # a copy of the finished one-epoch run
        import shutil
        (shutil.copytree if path.is_dir() else shutil.copy)(path, model_dir / path.name)
    key, value = change.split("=", 1)
    with pytest.raises(ConfigError, match=rf"^{model_dir} holds a run with {key}=.*, not "
                                          rf"'?{value.split('[')[0]}.*; resume it as it was"):
        run(load_config("mnist_cnn", overrides=[*TINY, change]), model_dir)


def test_resuming_with_more_epochs_continues(first_run):
    metrics = run(load_config("mnist_cnn", overrides=[*TINY, "train.epochs=2"]), first_run)
    assert metrics["resumed_from"] == {"epoch": 2, "step": 0}


def test_the_batch_scales_with_the_square_root_of_the_training_examples(tmp_path):
    from zoo.train import scaled_batch_size
    textcls = load_config("textcls").train  # 32 at 8,000 examples
    assert [scaled_batch_size(textcls, n) for n in (100, 2000, 8000, 30000, 67349)] == \
        [8, 16, 32, 64, 96]
    metrics = run(load_config("mnist_cnn", overrides=[
        *TINY, "train.batch_scaling_examples=32"]), tmp_path)  # 128 examples: 32 * sqrt(4)
    assert metrics["global_batch_size"] == 64 and metrics["steps_per_epoch"] == 2


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("first")
    run(load_config("mnist_cnn", overrides=TINY), model_dir)
    return model_dir
