"""Shared test helpers: the real-data folder beside the repo, CLI runs, small data writers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# pytest-xdist workers share the cores: each worker's TensorFlow, and the CLI runs it starts
# (they inherit the environment), gets its share of them instead of thread pools as wide as
# the machine in every process (two workers on 2 cores: 3-13% less suite time, README).
# Set before TensorFlow loads; TensorFlow reads these variables when it makes its pools.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _SHARE = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _SHARE)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _SHARE)

from zoo import environment

# before any test module imports TensorFlow: in-process runs get the CLIs' settings
CLI_SETTINGS = environment.use_cli_settings()

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts) -> Path:
    """A path under ../shared, or a clean skip when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def cli_env(**extra) -> dict:
    """Environment for a `python -m ...` subprocess: the repo importable, offline, quiet."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "ZOO_OFFLINE": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "TF_CONFIG": None,
           **dict.fromkeys(CLI_SETTINGS),  # a CLI run makes its own choices, as in a shell
           **extra}
    return {key: value for key, value in env.items() if value is not None}


def run_cli(*args, timeout=300, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Runs `python -m <args>` and returns the completed process (text output)."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or cli_env(), cwd=cwd or REPO)


def train_mirrored_on_two_cpus(model: str, model_dir: Path, overrides: list[str]) -> dict:
    """Trains `model` with `python -m zoo.train` under MirroredStrategy on two logical CPUs;
    returns its metrics after checking the strategy it logged."""
    import json
    result = run_cli("zoo.train", f"--model={model}", f"--model_dir={model_dir}",
                     "--strategy=mirrored", *[f"--set={s}" for s in overrides],
                     "--set=train.cpu_devices=2")
    assert result.returncode == 0, result.stderr
    assert "strategy: MirroredStrategy with 2 replica(s)" in result.stderr
    metrics = json.loads((Path(model_dir) / "metrics.json").read_text())
    assert metrics["replicas"] == 2
    return metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_mnist(count: int | None = None):
    """(images uint8 [N,28,28], labels) of the real MNIST test set in ../shared."""
    from zoo.data.images import read_idx
    directory = shared_path("data", "mnist")
    images = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(directory / "t10k-labels-idx1-ubyte.gz")
    return images[:count], labels[:count]


def write_png(path: Path, image: np.ndarray):
    """Writes an HxWxC uint8 array as a PNG file."""
    import tensorflow as tf
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image).numpy())


def pytest_collection_modifyitems(items):
    """The real-MNIST tests, the suite's longest, run first: pytest-xdist (`--dist worksteal`,
    pytest.ini) hands each worker a contiguous share of the tests and steals only from the end
    of a share, so they run on one worker, which trains their model once, beside the rest."""
    items.sort(key=lambda item: item.path.name != "test_real_mnist.py")


def check_in_mediapipe(path: Path, inputs, keras_probs: np.ndarray, labels: list[str],
                       truth: np.ndarray, exact: bool, max_drop: float = 0.01) -> np.ndarray:
    """Runs the app file `path` in MediaPipe Tasks as an app does (RGB uint8 frames or raw
    texts, labels and tokenizer from its metadata) and checks it against Keras: the category
    names are `labels`; a float32 file (`exact`) has Keras' top-1 on every example and its
    probabilities within 1e-5, a quantized one loses at most `max_drop` accuracy. Returns
    MediaPipe's probabilities."""
    from export import mediapipe_tasks
    from export.evaluate import two_class

    is_text = np.asarray(inputs).dtype.kind in "OSU"  # objects, bytes or str
    runner = (mediapipe_tasks.TextClassifierRunner if is_text
              else mediapipe_tasks.ImageClassifierRunner)
    with runner(path) as classify:
        assert classify.categories == labels
        phone = classify(inputs)
    keras_probs = two_class(keras_probs)
    if exact:
        disagree = np.flatnonzero(phone.argmax(-1) != keras_probs.argmax(-1))
        assert not disagree.size, f"top-1 differs from Keras on examples {disagree[:10]}"
        np.testing.assert_allclose(phone, keras_probs, atol=1e-5)
    else:
        drop = (keras_probs.argmax(-1) == truth).mean() - (phone.argmax(-1) == truth).mean()
        assert drop <= max_drop, f"{path.name} loses {drop:.4f} accuracy in MediaPipe"
    return phone


def litert_token_ids(tokenizer, texts: list[str]) -> np.ndarray:
    """A BertTokenizer's input_word_ids as LiteRT computes them: converted to TFLite and run
    with tensorflow-text's op registrar, one text at a time."""
    import tensorflow as tf
    from export import tflite

    call = tf.function(lambda text: tokenizer(text)["input_word_ids"],
                       input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([call.get_concrete_function()],
                                                                tokenizer)
    converter.allow_custom_ops = True
    run = tflite.interpreter(converter.convert(), custom_ops=True).get_signature_runner()
    return np.concatenate([next(iter(run(text=tflite.utf8([t])).values())) for t in texts])
