"""End-to-end training: learning, artifacts, strategies, real data (kills: test_reliability)."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import (REPO, cli_env, free_port, read_mnist, run_cli, train_mirrored_on_two_cpus,
                      write_png)
from zoo import registry
from zoo.config import ConfigError, load_config
from zoo.train import run

TINY_MNIST = ["data.dataset=synthetic", "data.synthetic_examples=1024", "train.batch_size=32",
              "train.epochs=3", "model.conv_filters=[16, 32]", "model.dense_units=32",
              "train.learning_rate=0.003", "model.batch_norm=false"]


def test_classic_overrides_build_exactly_the_tutorial_network():
    model = registry.create_model("mnist_cnn", conv_filters=[32], convs_per_block=1,
                                  dense_units=128, dropout=0, batch_norm=False, augment=False)
    kinds = [(type(layer).__name__, tuple(layer.output.shape[1:])) for layer in model.layers]
    assert kinds == [("InputLayer", (28, 28, 1)), ("Rescaling", (28, 28, 1)),
                     ("Conv2D", (26, 26, 32)), ("MaxPooling2D", (13, 13, 32)),
                     ("ReLU", (13, 13, 32)), ("Flatten", (5408,)), ("Dense", (128,)),
                     ("Dense", (10,)), ("Activation", (10,))]
    assert model.inputs[0].dtype.name == "uint8"
    assert model.count_params() == 320 + 5408 * 128 + 128 + 1290
    # the ReLU after the pooling (cheaper) computes the tutorial's conv-ReLU-pool exactly
    import tf_keras as keras
    from tf_keras import layers
    tutorial = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Rescaling(1 / 255.0),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
    tutorial.set_weights(model.get_weights())
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1)).astype(np.uint8)
    np.testing.assert_allclose(model(images), tutorial(images.astype(np.float32)), atol=1e-6)


def test_cli_settings_are_each_choice_the_environment_leaves_open():
    from zoo.environment import LEGACY_KERAS_VARIABLE as KERAS, ONEDNN_VARIABLE as ONEDNN
    from zoo.environment import cli_settings
    assert cli_settings({}, "x86_64") == {ONEDNN: "1", KERAS: "1"}
    assert cli_settings({ONEDNN: "0"}, "AMD64") == {KERAS: "1"}  # the caller's choice wins
    assert cli_settings({}, "aarch64") == {KERAS: "1"}  # oneDNN: TensorFlow's own choice there


@pytest.mark.parametrize("module, args", [("zoo.train", ["--model=resnet"]), ("export", [])])
def test_the_clis_choose_their_settings_before_tensorflow_loads(module, args):
    code = ("import os, runpy, sys\n"
            f"sys.argv = [{module!r}, *{args!r}]\n"
            "try:\n"
            f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n"
            "    print(e.code, os.environ.get('TF_USE_LEGACY_KERAS'),\n"
            "          'tensorflow' in sys.modules)\n")
    env = cli_env()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)
    assert done.stdout.split() == ["2", "1", "False"], done.stdout + done.stderr[-2000:]


def test_mnist_cnn_learns_synthetic_data_and_writes_its_run(tmp_path):
    cfg = load_config("mnist_cnn", overrides=TINY_MNIST)
    metrics = run(cfg, tmp_path)
    assert metrics["accuracy"] > 0.6  # 10 classes: chance is 0.1
    assert metrics["examples_per_sec"] > 0 and metrics["strategy"] == "OneDevice(CPU)"
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["accuracy"] == metrics["accuracy"] and on_disk["wall_time_s"] > 0
    assert (tmp_path / "checkpoints" / "ckpt-0003.index").is_file()
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert list((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))
    assert (tmp_path / "config.yaml").is_file()
    assert (tmp_path / "assets" / "labels.txt").read_text().split() == [str(k) for k in range(10)]


def test_reported_accuracy_is_the_final_weights_on_the_capped_eval_split(tmp_path, monkeypatch):
    import tempfile
    from export.source import load
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    overrides = [*TINY_MNIST, "train.epochs=2", "data.max_eval_examples=100"]
    again = lambda: run(load_config("mnist_cnn", overrides=overrides), tmp_path)
    metrics = again()  # from the last epoch's validation, not a second pass
    assert metrics["eval_examples"] == 100
    source = load(tmp_path)
    images, labels = next(iter(source.eval_ds.take(100).batch(100)))
    predicted = source.model.predict(images, verbose=0).argmax(-1)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == labels.numpy()), abs=1e-6)
    # the same command again: the finished run's final weights, evaluated again; its record
    # of training kept, and rebuilt (but for throughput) when metrics.json is lost
    rerun = again()
    for key in ("accuracy", "weights_sha256", "examples_per_sec", "wall_time_s"):
        assert rerun[key] == metrics[key], key
    (tmp_path / "metrics.json").unlink()
    rebuilt = again()
    assert rebuilt["accuracy"] == metrics["accuracy"]
    assert rebuilt["weights_sha256"] == metrics["weights_sha256"]
    assert not list(scratch.glob("zoo-assets-*"))  # the reruns' scratch folders are gone


def test_throughput_leaves_out_the_backup_at_an_epochs_last_step(tmp_path, monkeypatch):
    import time
    from zoo.callbacks import StepBackup
    save = StepBackup._backup
    monkeypatch.setattr(StepBackup, "_backup",
                        lambda self, **kw: (save(self, **kw), time.sleep(1.0)))
    cfg = load_config("mnist_cnn", overrides=[  # epochs of one execution of 4 steps of 32,
        *TINY_MNIST, "data.synthetic_examples=128", "train.steps_per_execution=4",  # a backup
        "train.checkpoint_every_steps=4"])
    metrics = run(cfg, tmp_path)
    # after each; counted, that 1 s would hold every timed window below 128 examples/s
    assert metrics["examples_per_sec"] > 500 and not metrics["throughput_includes_warmup"]
    assert metrics["wall_time_s"] > 3  # the backups did run


def test_imgcls_learns_synthetic_images(tmp_path):
    cfg = load_config("imgcls", overrides=[
        "data.dataset=synthetic", "data.synthetic_examples=1024", "model.image_size=48",
        "model.conv_filters=[16, 32]", "model.dense_units=32", "train.batch_size=32",
        "train.epochs=6", "train.learning_rate=0.005", "model.dropout=0", "model.augment=false",
        "model.batch_norm=false"])
    metrics = run(cfg, tmp_path)
    assert metrics["accuracy"] > 0.8  # binary: chance is 0.5


def test_model_dir_of_another_run_is_refused(tmp_path):
    cfg = load_config("mnist_cnn", overrides=TINY_MNIST + ["train.epochs=1"])
    run(cfg, tmp_path)
    other = load_config("imgcls", overrides=["data.dataset=synthetic"])
    with pytest.raises(ConfigError, match="holds a run of model 'mnist_cnn', not 'imgcls'"):
        run(other, tmp_path)
    wider = load_config("mnist_cnn", overrides=TINY_MNIST + ["model.dense_units=64"])
    with pytest.raises(ConfigError, match="holds a run with model.dense_units=32, not 64"):
        run(wider, tmp_path)


def test_batch_size_must_split_over_replicas(tmp_path):
    result = run_cli("zoo.train", "--model=mnist_cnn", "--dataset=synthetic", "--batch_size=33",
                     "--strategy=mirrored", "--set", "train.cpu_devices=2",
                     f"--model_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: train.batch_size=33 is not divisible by the 2 replicas of MirroredStrategy")


def test_run_dir_names_every_path_of_a_model_dir_and_keeps_a_url_whole():
    from pathlib import Path

    from zoo.run_dir import RunDir
    url = RunDir("gs://bucket/run/")
    assert (url.backup, url.chief_backup, url.labels, url.metrics) == (
        "gs://bucket/run/backup", "gs://bucket/run/backup/chief",
        "gs://bucket/run/assets/labels.txt", "gs://bucket/run/metrics.json")
    local = RunDir(Path("runs") / "mnist")
    assert (str(local), local.config, local.checkpoint_state) == (
        "runs/mnist", "runs/mnist/config.yaml", "runs/mnist/checkpoints/checkpoint")
    assert local.epoch_checkpoint_pattern.format(epoch=3) == "runs/mnist/checkpoints/ckpt-0003"
    assert Path(RunDir("runs/mnist/")) / "logs" == Path(local.logs)  # path-like, normalized



def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    metrics = train_mirrored_on_two_cpus("mnist_cnn", tmp_path, TINY_MNIST)
    assert metrics["accuracy"] > 0.6


def test_two_worker_multi_worker_mirrored_ends_with_identical_weights(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "zoo.train", "--model=mnist_cnn",
             f"--model_dir={tmp_path / 'run'}", *[f"--set={s}" for s in TINY_MNIST]],
            stderr=subprocess.PIPE, text=True, env=cli_env(TF_CONFIG=tf_config), cwd=REPO))
    logs = [p.communicate(timeout=300)[1] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log
        assert "strategy: MultiWorkerMirroredStrategy with 2 replica(s), because TF_CONFIG " \
               "names 2 workers" in log
    digests = [re.search(r"final weights digest (\w+)", log)[1] for log in logs]
    assert digests[0] == digests[1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["weights_sha256"] == digests[0] and metrics["accuracy"] > 0.6


def write_digit_folders(root, images, labels, keep=(3, 8)):
    """3s and 8s as RGB PNGs of different sizes in train/ and validation/ class folders."""
    rng = np.random.default_rng(0)
    import tensorflow as tf
    chosen = [i for i in range(len(labels)) if labels[i] in keep]
    split_at = int(len(chosen) * 0.8)
    for n, i in enumerate(chosen):
        size = int(rng.integers(28, 64))
        image = tf.image.resize(images[i][..., None], (size, size)).numpy()
        rgb = np.repeat(np.clip(image, 0, 255).astype(np.uint8), 3, axis=-1)
        split = "train" if n < split_at else "validation"
        write_png(root / split / f"digit{labels[i]}" / f"{i}.png", rgb)


def test_imgcls_on_real_digit_images_from_class_folders(tmp_path):
    images, labels = read_mnist()
    write_digit_folders(tmp_path / "digits", images, labels)
    cfg = load_config("imgcls", overrides=[
        f"data.dataset=folder:{tmp_path / 'digits'}", "model.image_size=48",
        "model.conv_filters=[16, 32, 64]", "model.dense_units=64", "train.epochs=5",
        "train.batch_size=32"])
    metrics = run(cfg, tmp_path / "run")
    assert metrics["train_examples"] > 200
    assert metrics["accuracy"] >= 0.95
    assert (tmp_path / "run" / "assets" / "labels.txt").read_text().split() == ["digit3",
                                                                                  "digit8"]
