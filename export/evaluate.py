"""Runs every artifact on the evaluation split: accuracy, drift from Keras, size, latency."""
from __future__ import annotations

import dataclasses
import hashlib
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

LATENCY_EXAMPLES = 50


RUNTIMES = ("tensorflow", "litert", "mediapipe_tasks")


@dataclasses.dataclass
class Artifact:
    """One exported file or directory and how to call it on a batch of examples, in the
    runtime its users run it in (`runtime`, one of RUNTIMES); `also` calls the same file in
    other runtimes, measured beside it and not gated."""
    name: str
    format: str
    quantization: str
    path: Path | None
    predict: Callable[[dict], np.ndarray]  # {input name: batch} -> probabilities
    inputs: Callable[[np.ndarray], dict]    # raw eval inputs -> what `predict` takes
    batch_size: int = 64
    specs: dict = dataclasses.field(default_factory=dict)
    runtime: str = "tensorflow"
    also: list["Artifact"] = dataclasses.field(default_factory=list)
    close: Callable[[], None] = lambda: None  # frees the runtime's resources once measured


def close_all(artifacts: list[Artifact]):
    """Frees every artifact's runtimes (closing twice is harmless)."""
    for artifact in artifacts:
        for opened in (artifact, *artifact.also):
            opened.close()


def two_class(probabilities: np.ndarray) -> np.ndarray:
    """Class probabilities [N, C]; a single sigmoid unit [N, 1] becomes [1 - p, p]."""
    if probabilities.shape[-1] == 1:
        return np.concatenate([1 - probabilities, probabilities], axis=-1)
    return probabilities


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy; a single output unit is a sigmoid (class 1 above 0.5)."""
    if probabilities.shape[-1] == 1:
        predicted = (probabilities[:, 0] > 0.5).astype(np.int64)
    else:
        predicted = probabilities.argmax(-1)
    return float((predicted == labels).mean())


def sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's relative paths and contents in sorted order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def size_bytes(path: Path) -> int:
    """Bytes of a file or of everything under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def predict_all(artifact: Artifact, raw_inputs: np.ndarray) -> np.ndarray:
    """Probabilities for all `raw_inputs`, in the artifact's batch size."""
    feed = artifact.inputs(raw_inputs)
    n, step = len(raw_inputs), artifact.batch_size
    return np.concatenate([artifact.predict({k: v[i:i + step] for k, v in feed.items()})
                           for i in range(0, n, step)])


def median_latency_us(artifact: Artifact, raw_inputs: np.ndarray) -> float:
    """Median wall time of one batch-1 call over the first examples (after one warm call)."""
    feed = artifact.inputs(raw_inputs[:LATENCY_EXAMPLES])
    one = lambda i: {k: v[i:i + 1] for k, v in feed.items()}
    artifact.predict(one(0))
    times = []
    for i in range(len(raw_inputs[:LATENCY_EXAMPLES])):
        start = time.perf_counter()
        artifact.predict(one(i))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def measure(artifact: Artifact, raw_inputs, labels, reference: dict | None) -> dict:
    """Accuracy, drift from the Keras `reference` and batch-1 latency in one runtime."""
    probabilities = predict_all(artifact, raw_inputs)
    acc = accuracy(probabilities, labels)
    drift = 0.0
    if reference:  # a sigmoid model's app files answer two classes
        keras = reference["probabilities"]
        keras = two_class(keras) if probabilities.shape[-1] != keras.shape[-1] else keras
        drift = float(np.abs(probabilities - keras).max())
    return {"runtime": artifact.runtime, "accuracy": acc,
            "accuracy_delta": acc - reference["accuracy"] if reference else 0.0,
            "max_abs_diff": drift,
            "median_latency_us": round(median_latency_us(artifact, raw_inputs), 1),
            "probabilities": probabilities}


def evaluate(artifact: Artifact, raw_inputs, labels, reference: dict | None = None) -> dict:
    """The manifest entry of one artifact: measured in its runtime (and in `also`'s, under
    their runtime's name), compared with the Keras `reference` entry, with its size and
    digest when it is a file or directory; closes the artifact's runtimes afterwards."""
    try:
        entry = {"name": artifact.name, "format": artifact.format,
                 "quantization": artifact.quantization,
                 **measure(artifact, raw_inputs, labels, reference), **artifact.specs}
        for other in artifact.also:
            checked = measure(other, raw_inputs, labels, reference)
            entry[other.runtime] = {k: v for k, v in checked.items()
                                    if k not in ("runtime", "probabilities")}
    finally:
        close_all([artifact])
    if artifact.path:
        entry.update(bytes=size_bytes(artifact.path), sha256=sha256(artifact.path))
    return entry


def table(entries: list[dict]) -> str:
    """The manifest as a fixed-width text table."""
    header = f"{'artifact':34} {'runtime':15} {'bytes':>10} {'accuracy':>9} {'delta':>8} " \
             f"{'max|diff|':>10} {'latency_us':>11}  sha256"
    rows = [header]
    for e in entries:
        checks = [e, *(e[r] | {"runtime": r} for r in RUNTIMES if r in e)]
        for i, check in enumerate(checks):
            rows.append(f"{e['name'] if i == 0 else '':34} {check['runtime']:15} "
                        f"{e.get('bytes', '-') if i == 0 else '':>10} {check['accuracy']:>9.4f} "
                        f"{check['accuracy_delta']:>+8.4f} {check['max_abs_diff']:>10.2e} "
                        f"{check['median_latency_us']:>11.1f}  "
                        f"{e.get('sha256', '')[:12] if i == 0 else ''}")
    return "\n".join(rows)
