"""Builds each requested artifact under the publisher's stage and says how to call it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from export import edgetpu_audit, serving, tflite, xla
from export.evaluate import Artifact, close_all
from export.source import ExportError
from zoo import files


def raw_feed(source):
    """Raw inputs -> {input name: batch} for the model's own input (`image` or `text`)."""
    name = serving.raw_input_spec(source.model).name
    return lambda x: {name: x}


def app_feed(source):
    """Raw inputs -> what an app hands MediaPipe Tasks: the texts, or RGB frames."""
    if source.is_text:
        return lambda x: {"text": x}
    return lambda x: {"image": tflite.rgb(x)}


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
    feed = (lambda x: serving.token_inputs(source, x)) if tokens else app_feed(source)
    details = lambda ds: {k: {
        "dtype": np.dtype(d["dtype"]).name, "shape": d["shape_signature"].tolist(),
        "quantization": list(d["quantization"])} for k, d in ds.items()}
    specs = {"inputs": details(runner.inputs),
             "outputs": details(runner.signature.get_output_details())}
    return Artifact(name, fmt, quantization, path, runner, feed, 1, specs, runtime="litert")


def mediapipe_artifact(name, quantization, path: Path, source, tokens: bool) -> Artifact:
    """An app file run as apps run it: MediaPipe Tasks' classifier, on raw texts or RGB
    frames, reading the file's metadata; measured in LiteRT too."""
    from export import mediapipe_tasks

    classifier = (mediapipe_tasks.TextClassifierRunner if source.is_text
                  else mediapipe_tasks.ImageClassifierRunner)(path)
    litert = tflite_artifact(name, "tflite", quantization, path, source, tokens)
    predict = lambda feed: classifier(next(iter(feed.values())))
    return Artifact(name, "tflite", quantization, path, predict, app_feed(source), 1,
                    litert.specs, runtime="mediapipe_tasks", also=[litert],
                    close=classifier.close)


def with_metadata(source, flatbuffer: bytes, quantization: str) -> bytes:
    """The app file with the TFLite Metadata MediaPipe Tasks reads: labels, and the image
    input or the WordPiece tokenizer with its vocabulary."""
    from export import metadata

    name = f"{source.name} ({quantization})"
    if not source.is_text:
        return metadata.image_classifier(flatbuffer, source.labels, name)
    vocab = next((a for a in source.assets if files.name(a) == "vocab.txt"), None)
    if vocab is None:
        raise ExportError(f"{source.name} has no vocab.txt among its assets; the MediaPipe "
                          "file needs it for its tokenizer")
    return metadata.bert_text_classifier(flatbuffer, source.labels, vocab, name)


def ship_assets(source, directory: Path):
    """labels.txt and the model's other assets (vocabularies) beside the .tflite files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "labels.txt").write_text("\n".join(source.labels) + "\n")
    for asset in source.assets:
        files.copy(asset, directory / files.name(asset))


def calibration_feed(source, calibration: np.ndarray, tokens: bool) -> dict:
    """Calibration inputs as the converted graph takes them."""
    return serving.token_inputs(source, calibration) if tokens else app_feed(source)(calibration)


def build(source, publisher, options, calibration: np.ndarray, eval_inputs) -> list[Artifact]:
    """Writes every requested format into the stage; returns them ready to evaluate. A format
    that fails closes the runtimes of those built before it."""
    built = []
    try:
        add_formats(built, source, publisher, options, calibration, eval_inputs)
    except BaseException:
        close_all(built)
        raise
    return built


def add_formats(built: list, source, publisher, options, calibration, eval_inputs):
    """Appends each requested format's artifact to `built` as it is written."""
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
            flatbuffer = tflite.convert(source, quantization,
                                        calibration_feed(source, calibration, tokens), tokens)
            name = f"tflite/{stem}"
            if tokens or not source.is_text:  # an app file
                path.write_bytes(with_metadata(source, flatbuffer, quantization))
                built.append(mediapipe_artifact(name, quantization, path, source, tokens))
            else:
                path.write_bytes(flatbuffer)
                built.append(tflite_artifact(name, "tflite", quantization, path, source, tokens))
    if "xla" in options.formats:
        path = stage / "xla"
        xla.write_xla_saved_model(source, path, options.xla_batch_size)
        built.append(signature_artifact("xla", "xla", path, raw_feed(source),
                                        options.xla_batch_size))
    if "edgetpu_audit" in options.formats:
        directory = stage / "edgetpu_audit"
        ship_assets(source, directory)
        path = directory / f"{source.name}_edgetpu.tflite"
        path.write_bytes(edgetpu_audit.edgetpu_tflite(
            source, calibration_feed(source, calibration, source.is_text)))
        (directory / "edgetpu_ops.json").write_text(
            json.dumps(edgetpu_audit.audit(path), indent=2) + "\n")
        built.append(tflite_artifact("edgetpu_audit", "edgetpu_audit", "int8", path, source,
                                     source.is_text))
