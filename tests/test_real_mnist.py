"""The default mnist_cnn recipe on the real digits in ../shared, trained once for the module:
its accuracy, and its int8 LiteRT file's size and accuracy. Skips without ../shared."""
import json

import pytest

from conftest import shared_path
from export import pipeline, source as export_source
from export.pipeline import Options


@pytest.fixture(scope="module")
def real_mnist_run(tmp_path_factory):
    """(model_dir, metrics) of the default mnist_cnn trained on the real digits: the first
    8,000 of the 10k test set to train, the last 2,000 to evaluate."""
    from zoo.config import load_config
    from zoo.train import run
    directory = shared_path("data", "mnist")
    cfg = load_config("mnist_cnn", overrides=[
        f"data.dataset=idx:{directory}", "data.train_split=t10k[:8000]",
        "data.eval_split=t10k[8000:]"])
    model_dir = tmp_path_factory.mktemp("real_mnist")
    return model_dir, run(cfg, model_dir)


@pytest.mark.slow
def test_default_mnist_cnn_beats_the_classic_convnet_on_real_digits(real_mnist_run):
    _, metrics = real_mnist_run
    print(f"mnist_cnn default on real digits: accuracy {metrics['accuracy']:.4f}, "
          f"{metrics['wall_time_s']:.1f} s, {metrics['examples_per_sec']:.0f} examples/s")
    assert metrics["eval_examples"] == 2000 and metrics["train_examples"] == 8000
    assert metrics["accuracy"] >= 0.990


@pytest.mark.slow
def test_real_mnist_int8_is_small_and_accurate(real_mnist_run, tmp_path):
    """float32 and int8 LiteRT files only: every format and quantization is exported by
    test_export's runs of small models."""
    model_dir, _ = real_mnist_run
    src = export_source.load(model_dir)
    manifest = pipeline.run(src, tmp_path / "export",
                            Options(["tflite"], ["float32", "int8"], max_accuracy_drop=0.005,
                                    eval_examples=2000), log=print)
    entries = {e["name"]: e for e in manifest["artifacts"]}
    float32, int8 = entries["tflite/mnist_cnn_float32"], entries["tflite/mnist_cnn_int8"]
    print(json.dumps({k: v for k, v in int8.items() if k in ("bytes", "accuracy_delta")}))
    assert int8["bytes"] <= 0.27 * float32["bytes"]
    assert int8["accuracy_delta"] >= -0.005
    assert entries["keras"]["accuracy"] > 0.95
