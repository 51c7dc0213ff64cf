"""The export: build every requested artifact, evaluate it, gate on accuracy, publish."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from export.source import ExportError
from zoo import files
from zoo.schema import FORMATS, QUANTIZATIONS, canonical_formats


class AccuracyGateError(RuntimeError):
    """An artifact lost more accuracy than allowed; nothing was published."""


@dataclasses.dataclass
class Options:
    formats: list[str]
    quantize: list[str]
    max_accuracy_drop: float = 0.01
    calibration_examples: int = 200
    xla_batch_size: int = 8
    eval_examples: int = 1000
    version: int | None = None
    overwrite: bool = False
    warmup_examples: int = 8
    serving_base_path: str = "/models"

    def check(self):
        """Unknown formats or quantizations fail with one line; a format's name before 0.2
        is replaced by today's."""
        self.formats = canonical_formats(self.formats)
        for kind, given, known in (("format", self.formats, FORMATS),
                                   ("quantization", self.quantize, QUANTIZATIONS)):
            bad = sorted(set(given) - set(known))
            if bad:
                raise ExportError(f"unknown {kind} {', '.join(bad)}; accepted: {', '.join(known)}")
        if self.eval_examples < 1:
            raise ExportError("--eval_examples must be at least 1")


def take_arrays(ds, n: int, shuffle_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of the first `n` examples (after a seeded shuffle if given)."""
    if shuffle_seed is not None:
        ds = ds.shuffle(10_000, seed=shuffle_seed)
    inputs, labels = [], []
    for x, y in ds.take(n).as_numpy_iterator():
        inputs.append(x)
        labels.append(y)
    if not inputs:
        raise ExportError("the dataset yielded no examples")
    return np.stack(inputs), np.array(labels)


def write_json(path: str | Path, value):
    """Writes JSON through a temporary file and a rename."""
    files.write_atomic(path, json.dumps(value, indent=2) + "\n")


def run(source, out: str | Path, options: Options, calibration: np.ndarray | None = None,
        log=print) -> dict:
    """Exports `source` into `out` (a directory or a URL such as gs://bucket/models); returns
    the manifest. `calibration` (raw inputs) replaces the sample of the training split used
    to calibrate integer quantization."""
    from export import publish, serving

    options.check()
    if files.is_url(out):  # built in a local folder, then copied up (see publish.into_url)
        manifest = publish.into_url(
            os.fspath(out), source.name, options.version, options.overwrite,
            lambda local, version: build_and_publish(
                source, local, dataclasses.replace(options, version=version), calibration, log))
    else:
        manifest = build_and_publish(source, out, options, calibration, log)
    serving_root = files.join(out, "serving")
    if files.isdir(serving_root):
        files.write_atomic(files.join(serving_root, "models.config"),
                           serving.models_config(serving_root, options.serving_base_path))
    write_json(files.join(out, "manifest.json"), manifest)
    return manifest


def build_and_publish(source, out: str | Path, options: Options, calibration: np.ndarray | None,
                      log) -> dict:
    """Builds, evaluates and gates every artifact, then publishes the version into the local
    directory `out`; returns the manifest."""
    from export import artifacts, evaluate
    from export.publish import Publisher

    out = Path(out)
    publisher = Publisher(out, source.name, options.version, options.overwrite)
    eval_inputs, eval_labels = take_arrays(source.eval_ds, options.eval_examples)
    if calibration is None:
        calibration, _ = take_arrays(source.train_ds, options.calibration_examples, 0)
    with publisher:
        built = artifacts.build(source, publisher, options, calibration, eval_inputs)
        try:
            reference = evaluate.evaluate(artifacts.keras(source), eval_inputs, eval_labels)
            entries = [evaluate.evaluate(a, eval_inputs, eval_labels, reference) | {
                "path": publisher.final_path(a.path)} for a in built]
        finally:
            evaluate.close_all(built)
        rows = [{k: v for k, v in e.items() if k != "probabilities"}
                for e in [reference, *entries]]
        manifest = {"model": source.name, "version": publisher.version,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "eval_examples": len(eval_labels), "calibration_examples": len(calibration),
                    "max_accuracy_drop": options.max_accuracy_drop,
                    "keras_accuracy": reference["accuracy"], "artifacts": rows}
        log(evaluate.table(rows))
        failed = [e for e in entries if -e["accuracy_delta"] > options.max_accuracy_drop]
        if failed:
            worst = min(failed, key=lambda e: e["accuracy_delta"])
            raise AccuracyGateError(
                f"{worst['name']} lost {-worst['accuracy_delta']:.4f} accuracy "
                f"({worst['accuracy']:.4f} vs Keras {reference['accuracy']:.4f}), more than "
                f"--max_accuracy_drop={options.max_accuracy_drop}; nothing was published")
        write_json(publisher.path("artifacts") / "manifest.json", manifest)
        publisher.publish()
    return manifest
