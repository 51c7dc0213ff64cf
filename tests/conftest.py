"""Shared test helpers: the real-data folder beside the repo, CLI runs, small data writers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo  # before any test module imports TensorFlow: the tests get zoo's oneDNN choice

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
    env = dict(os.environ, PYTHONPATH=str(REPO), ZOO_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    if zoo.ONEDNN_SET_BY_ZOO:  # a CLI run starts from the caller's environment
        env.pop(zoo.ONEDNN_VARIABLE)
    env.update(extra)
    return env


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


@pytest.fixture(scope="session")
def real_mnist_run(tmp_path_factory):
    """(model_dir, metrics) of the default mnist_cnn trained once on the real digits: the
    first 8,000 of the 10k test set to train, the last 2,000 to evaluate."""
    from zoo.config import load_config
    from zoo.train import run
    directory = shared_path("data", "mnist")
    cfg = load_config("mnist_cnn", overrides=[
        f"data.dataset=idx:{directory}", "data.train_split=t10k[:8000]",
        "data.eval_split=t10k[8000:]"])
    model_dir = tmp_path_factory.mktemp("real_mnist")
    return model_dir, run(cfg, model_dir)
