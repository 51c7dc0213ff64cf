"""TFLite conversion in five quantizations, and running the results in LiteRT."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from export.serving import call_core, core_input_specs, raw_input_spec

QUANTIZATIONS = ("float32", "dynamic", "float16", "int8", "int16x8")
INTEGER = ("int8", "int16x8")


def float_image_model(model):
    """A copy of an image model taking float32 pixels (0..255), so that integer quantization
    covers the whole graph instead of starting with a float Cast from uint8."""
    import tf_keras as keras

    spec = model.inputs[0]
    inputs = keras.Input(spec.shape[1:], dtype="float32", name="image")
    clone = keras.models.clone_model(model, input_tensors=inputs)
    clone.set_weights(model.get_weights())
    return clone


def graph(source, quantization: str, tokens: bool, batch_size: int | None = None):
    """(concrete function to convert, the Keras model it calls, its input specs)."""
    if tokens:
        _, model = source.parts()
        specs = core_input_specs(model, batch_size)
    else:
        model = source.model
        spec = raw_input_spec(model)
        if quantization in INTEGER and not source.is_text:
            model = float_image_model(model)
            spec = tf.TensorSpec(spec.shape, tf.float32, name=spec.name)
        specs = [tf.TensorSpec([batch_size, *spec.shape[1:]], spec.dtype, name=spec.name)]

    @tf.function(input_signature=specs)
    def classify(*inputs):
        if tokens:
            return {"probabilities": call_core(model, inputs)}
        return {"probabilities": model(inputs[0], training=False)}

    return classify.get_concrete_function(), model, specs


def convert(source, quantization: str, calibration: dict, tokens: bool = False,
            batch_size: int | None = None) -> bytes:
    """One .tflite flatbuffer. `calibration` ({input name: examples}) calibrates the integer
    quantizations; image int8 models take and return uint8."""
    function, model, specs = graph(source, quantization, tokens, batch_size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    if source.is_text and not tokens:
        converter.allow_custom_ops = True  # tensorflow-text tokenizers run as custom ops
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in INTEGER:
        def representative():
            for i in range(len(calibration[specs[0].name])):
                yield [calibration[spec.name][i:i + 1].astype(spec.dtype.as_numpy_dtype)
                       for spec in specs]

        converter.representative_dataset = representative
    if quantization == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Per-tensor weight scales: per-channel ones cost a float scale and an int64 zero
        # point per output channel (8.8 KB, 7% of MNIST's int8 file) for no accuracy gained
        # there; the accuracy gate catches a model that needs them. The converter has no
        # public switch for this.
        converter._experimental_disable_per_channel = True
        if not tokens and not source.is_text:
            converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    if quantization == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter.convert()


def variants(source, quantizations: list[str]) -> list[tuple[str, str, bool]]:
    """(file stem, quantization, tokens) for every TFLite file to write.

    Text models get a tokenizer-in-graph file (float quantizations: string ops can't be
    calibrated) and a token-ids file for every quantization."""
    out = []
    for q in quantizations:
        if not source.is_text:
            out.append((f"{source.name}_{q}", q, False))
            continue
        if q not in INTEGER:
            out.append((f"{source.name}_{q}", q, False))
        out.append((f"{source.name}_tokens_{q}", q, True))
    return out


def interpreter(path_or_bytes, custom_ops: bool = False):
    """A LiteRT interpreter; `custom_ops` registers the tensorflow-text kernels."""
    from ai_edge_litert.interpreter import Interpreter, InterpreterWithCustomOps

    source = ({"model_content": path_or_bytes} if isinstance(path_or_bytes, bytes)
              else {"model_path": str(path_or_bytes)})
    if custom_ops:
        from tensorflow_text.core.pybinds import tflite_registrar
        return InterpreterWithCustomOps(
            custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS, **source)
    return Interpreter(**source)


def _to_input(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if scale:
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
    return x.astype(detail["dtype"]) if detail["dtype"] != np.object_ else x


def _from_output(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale if scale else y


class Runner:
    """Calls a .tflite model's `serving_default` signature one example at a time."""

    def __init__(self, path, custom_ops: bool = False):
        self.interpreter = interpreter(path, custom_ops)
        self.signature = self.interpreter.get_signature_runner("serving_default")
        self.inputs = self.signature.get_input_details()
        self.output = self.signature.get_output_details()["probabilities"]

    def __call__(self, inputs: dict) -> np.ndarray:
        """Probabilities for a batch given as {input name: array}."""
        rows = []
        for i in range(len(next(iter(inputs.values())))):
            feed = {name: _to_input(inputs[name][i:i + 1], detail)
                    for name, detail in self.inputs.items()}
            rows.append(_from_output(self.signature(**feed)["probabilities"], self.output))
        return np.concatenate(rows)
