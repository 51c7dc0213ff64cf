"""Builds each requested artifact under the publisher's stage and says how to call it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from export import serving, tflite, tpu
from export.evaluate import Artifact


def raw_feed(source):
    """Raw inputs -> {input name: batch} for the model's own input (`image` or `text`)."""
    name = serving.raw_input_spec(source.model).name
    return lambda x: {name: x}


def keras(source) -> Artifact:
    """The trained Keras model itself: the reference every artifact is compared with."""
    predict = lambda feed: source.model(next(iter(feed.values())), training=False).numpy()
    return Artifact("keras", "keras", "float32", None, predict, raw_feed(source))


def signature_artifact(name, fmt, path: Path, feed, batch_size=64) -> Artifact:
    """An artifact called through a SavedModel's `serving_default` signature."""
    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    predict = lambda f: function(**{k: tf.constant(v) for k, v in f.items()})[
        "probabilities"].numpy()
    _, inputs = function.structured_input_signature
    specs = {"inputs": {k: _spec(v) for k, v in inputs.items()},
             "outputs": {k: _spec(v) for k, v in function.structured_outputs.items()}}
    return Artifact(name, fmt, "float32", path, predict, feed, batch_size, specs)


def _spec(spec) -> dict:
    return {"dtype": spec.dtype.name, "shape": [d if d is not None else -1 for d in spec.shape]}


def tflite_artifact(name, fmt, quantization, path: Path, source, tokens: bool) -> Artifact:
    """An artifact run by LiteRT one example at a time."""
    runner = tflite.Runner(path, custom_ops=source.is_text and not tokens)
    feed = (lambda x: serving.token_inputs(source, x)) if tokens else raw_feed(source)
    details = lambda ds: {k: {
        "dtype": np.dtype(d["dtype"]).name, "shape": d["shape_signature"].tolist(),
        "quantization": list(d["quantization"])} for k, d in ds.items()}
    specs = {"inputs": details(runner.inputs),
             "outputs": details(runner.signature.get_output_details())}
    return Artifact(name, fmt, quantization, path, runner, feed, 1, specs)


def ship_assets(source, directory: Path):
    """labels.txt and the model's other assets (vocabularies) beside the .tflite files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "labels.txt").write_text("\n".join(source.labels) + "\n")
    for asset in source.assets:
        shutil.copy2(asset, directory / asset.name)


def calibration_feed(source, calibration: np.ndarray, tokens: bool) -> dict:
    """Calibration inputs as the converted graph takes them."""
    return serving.token_inputs(source, calibration) if tokens else raw_feed(source)(calibration)


def build(source, publisher, options, calibration: np.ndarray, eval_inputs) -> list[Artifact]:
    """Writes every requested format into the stage; returns them ready to evaluate."""
    built = []
    stage = publisher.path("artifacts")
    if "saved_model" in options.formats:
        path = publisher.path("serving")
        serving.write_saved_model(source, path, eval_inputs[:options.warmup_examples])
        feed = lambda x: {("text" if source.is_text else "image_bytes"):
                          serving.client_inputs(source, x)}
        built.append(signature_artifact("saved_model", "saved_model", path, feed))
    if "tflite" in options.formats:
        ship_assets(source, stage / "tflite")
        for stem, quantization, tokens in tflite.variants(source, options.quantize):
            path = stage / "tflite" / f"{stem}.tflite"
            path.write_bytes(tflite.convert(source, quantization,
                                            calibration_feed(source, calibration, tokens), tokens))
            built.append(tflite_artifact(f"tflite/{stem}", "tflite", quantization, path, source,
                                         tokens))
    if "tpu" in options.formats:
        path = stage / "tpu"
        tpu.write_tpu_saved_model(source, path, options.tpu_batch_size)
        built.append(signature_artifact("tpu", "tpu", path, raw_feed(source),
                                        options.tpu_batch_size))
    if "edgetpu" in options.formats:
        directory = stage / "edgetpu"
        ship_assets(source, directory)
        path = directory / f"{source.name}_edgetpu.tflite"
        path.write_bytes(tpu.edgetpu_tflite(
            source, calibration_feed(source, calibration, source.is_text)))
        (directory / "edgetpu_ops.json").write_text(json.dumps(tpu.audit(path), indent=2) + "\n")
        built.append(tflite_artifact("edgetpu", "edgetpu", "int8", path, source, source.is_text))
    return built
