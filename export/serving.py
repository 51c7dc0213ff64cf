"""TF Serving SavedModel: raw-input and tensor signatures, warmup records, models.config."""
from __future__ import annotations

import posixpath
from pathlib import Path

import numpy as np
import tensorflow as tf

from export import serving_ops

WARMUP_FILE = "tf_serving_warmup_requests"


def named_outputs(probabilities, labels: list[str]) -> dict:
    """{'probabilities', 'class_ids', 'class_names'}; one sigmoid unit means binary."""
    if probabilities.shape[-1] == 1:
        class_ids = tf.cast(probabilities[:, 0] > 0.5, tf.int64)
    else:
        class_ids = tf.argmax(probabilities, axis=-1)
    return {"probabilities": probabilities, "class_ids": class_ids,
            "class_names": tf.gather(tf.constant(labels), class_ids)}


def raw_input_spec(model) -> tf.TensorSpec:
    """The model's input as a client sends it: `image` uint8 pixels or `text` strings."""
    spec = model.inputs[0]
    name = "text" if spec.dtype == tf.string else "image"
    return tf.TensorSpec([None, *spec.shape[1:]], spec.dtype, name=name)


def core_input_specs(core, batch_size: int | None = None) -> list[tf.TensorSpec]:
    """TensorSpecs of a text core's token-id inputs, with a fixed or free batch dimension."""
    return [tf.TensorSpec([batch_size, *t.shape[1:]], t.dtype, name=t.name.split(":")[0])
            for t in core.inputs]


def call_core(core, flat_inputs):
    """Calls a text core on its inputs given flat, in the order of `core_input_specs`."""
    return core(tf.nest.pack_sequence_as(core.input, list(flat_inputs)), training=False)


def token_inputs(source, texts) -> dict:
    """{input name: token ids} for a batch of strings, as the text core takes them."""
    preprocessor, core = source.parts()
    flat = tf.nest.flatten(preprocessor(tf.constant(texts)))
    return {spec.name: np.asarray(t) for spec, t in zip(core_input_specs(core), flat)}


def checked_images(images, shape):
    """`images` with a readable InvalidArgumentError unless they are uint8[batch, *shape]."""
    height, width, channels = shape
    images = tf.ensure_shape(images, [None, None, None, None])  # the rank, before the sizes
    check = tf.debugging.assert_equal(
        tf.shape(images)[1:], tf.constant(shape, tf.int32),
        message=f"image must be uint8[batch, {height}, {width}, {channels}]")
    with tf.control_dependencies([check]):
        return tf.ensure_shape(images, [None, *shape])


def checked_batch(tensor):
    """`tensor` with a readable InvalidArgumentError unless it is 1-D: a loaded signature
    checks dtypes, not shapes, and the tokenizer crashes the process on a scalar string and
    answers once for a [1, n] matrix."""
    return tf.ensure_shape(tensor, [None])


def decode_images(image_bytes, shape):
    """JPEG/PNG/GIF/BMP bytes -> uint8[batch, *shape], resized when their size differs."""
    height, width, channels = shape

    def decode(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        resized = tf.image.resize(image, (height, width))  # exact when the size already fits
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    return tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(shape, tf.uint8))


def serving_module(source) -> tf.Module:
    """tf.Module with `serving_default` (what a client has) and `serving_tensor` functions."""
    module = tf.Module()
    module.model = source.model
    labels = source.labels
    spec = raw_input_spec(source.model)
    if source.is_text:
        _, core = source.parts()

        @tf.function(input_signature=[spec])
        def serve_default(text):
            return named_outputs(source.model(checked_batch(text), training=False), labels)

        token_specs = core_input_specs(core)

        @tf.function(input_signature=token_specs)
        def serve_tensor(*token_ids):
            token_ids = [tf.ensure_shape(t, s.shape) for t, s in zip(token_ids, token_specs)]
            return named_outputs(call_core(core, token_ids), labels)
    else:
        shape = tuple(spec.shape[1:])
        output = source.model.outputs[0]

        def predict(images):  # TF's CPU convolutions fail on an empty batch: answer it empty
            return tf.cond(tf.shape(images)[0] > 0,
                           lambda: source.model(images, training=False),
                           lambda: tf.zeros([0, output.shape[-1]], output.dtype))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_default(image_bytes):
            return named_outputs(predict(decode_images(checked_batch(image_bytes), shape)),
                                 labels)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8,
                                                    name="image")])
        def serve_tensor(image):
            return named_outputs(predict(checked_images(image, shape)), labels)
    module.serve_default, module.serve_tensor = serve_default, serve_tensor
    return module


def client_inputs(source, inputs: np.ndarray) -> np.ndarray:
    """What a client sends to `serving_default`: PNG bytes for images, strings for text."""
    if source.is_text:
        return inputs
    return np.array([tf.io.encode_png(image).numpy() for image in inputs], dtype=object)


def write_saved_model(source, path: Path, warmup_inputs: np.ndarray):
    """Writes the SavedModel with its labels asset and warmup requests to `path`."""
    module = serving_module(source)
    labels_file = path.parent / "labels.txt"  # beside `path`: saving copies it into assets/
    labels_file.write_text("\n".join(source.labels) + "\n")
    module.labels = tf.saved_model.Asset(str(labels_file))
    signatures = {"serving_default": module.serve_default, "serving_tensor": module.serve_tensor}
    tf.saved_model.save(module, str(path), signatures=signatures)
    labels_file.unlink()
    serving_ops.check(path)
    write_warmup(path / "assets.extra" / WARMUP_FILE, source.name,
                 "text" if source.is_text else "image_bytes", client_inputs(source, warmup_inputs))


def write_warmup(path: Path, model_name: str, input_name: str, inputs: np.ndarray):
    """One `PredictionLog` record per example, for TF Serving's model warmup."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in inputs:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = "serving_default"
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto([example]))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup(path: Path) -> list:
    """The `PredictionLog` records of a warmup file."""
    from tensorflow_serving.apis import prediction_log_pb2

    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]


def models_config(serving_root: str | Path, base_path: str = "/models") -> str:
    """Text-format ModelServerConfig listing every model under `serving_root` (a directory or
    a URL), each at `base_path/<name>`: where the serving root is mounted in the
    tensorflow/serving container."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from zoo import files
    config = model_server_config_pb2.ModelServerConfig()
    for name in files.listdir(serving_root):
        if name.startswith(".") or not files.isdir(files.join(serving_root, name)):
            continue
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = posixpath.join(base_path, name)
        entry.model_platform = "tensorflow"
    return text_format.MessageToString(config)
