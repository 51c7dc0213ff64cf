"""The TensorFlow settings zoo's CLIs choose for their process and its children.

TensorFlow reads them from the environment once, when it is imported, so they are set before
that and only by the CLIs (`python -m zoo.train`, `python -m export`, `python -m tools.bench`'s
zoo runs) or by a library user who calls `use_cli_settings()`; importing zoo sets nothing.

- TF_ENABLE_ONEDNN_OPTS=1 on x86: TensorFlow enables its oneDNN CPU kernels by itself only on
  CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX; on a 2-core AVX2 CPU they trained
  mnist_cnn 1.6x and imgcls and bert 1.16x faster (docs/benchmarks.md).
- TF_USE_LEGACY_KERAS=1: zoo builds its models with `import tf_keras` and needs nothing from
  `tf.keras`; with it TensorFlow's import no longer loads Keras 3 (1.5 s of every CLI start on
  a 2-core AVX2 CPU), and `tf.keras` objects mix with zoo's models.

A variable already in the environment wins (TF_ENABLE_ONEDNN_OPTS=0 keeps oneDNN off).
"""
from __future__ import annotations

import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"


def cli_settings(environ=None, machine: str | None = None) -> dict:
    """The variables the CLIs set in `environ` (default os.environ) on `machine` (default
    this one's): each choice the environment does not make already."""
    environ = os.environ if environ is None else environ
    machine = (machine or platform.machine()).lower()
    chosen = {LEGACY_KERAS_VARIABLE: "1"}
    if machine in ("x86_64", "amd64"):
        chosen[ONEDNN_VARIABLE] = "1"
    return {key: value for key, value in chosen.items() if key not in environ}


def use_cli_settings() -> dict:
    """Sets `cli_settings()` in os.environ for this process and its children; returns what it
    set. Too late once TensorFlow is imported: then it sets nothing and returns {}."""
    if "tensorflow" in sys.modules:
        return {}
    chosen = cli_settings()
    os.environ.update(chosen)
    return chosen
