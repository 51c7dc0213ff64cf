"""TFLite conversion in five quantizations, and running the results in LiteRT."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from export.source import ExportError
from zoo.models.bert.encoder import INPUTS

INTEGER = ("int8", "int16x8")


# ITU-R BT.601 luma: how a grey model sees an RGB camera frame
LUMA = (0.299, 0.587, 0.114)


def float_image_model(model):
    """A copy of an image model taking float32 pixels (0..255), so that integer quantization
    covers the whole graph instead of starting with a float Cast from uint8."""
    import tf_keras as keras

    spec = model.inputs[0]
    inputs = keras.Input(spec.shape[1:], dtype="float32", name="image")
    clone = keras.models.clone_model(model, input_tensors=inputs)
    clone.set_weights(model.get_weights())
    return clone


def rgb(images: np.ndarray) -> np.ndarray:
    """Image batches [N,H,W,C] as RGB frames [N,H,W,3]: grey repeated into three channels."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def app_image_graph(model, quantization: str, batch_size: int | None = 1):
    """(function of RGB frames [batch_size,H,W,3] -> class probabilities, the model it calls,
    its input spec): what an app hands MediaPipe Tasks, one frame at a time. uint8 pixels in;
    float32 0..255 for the integer quantizations, so that quantization covers the whole graph
    (int8's converter then makes the input uint8; int16x8 has no uint8 input); a grey model
    sees the frame's luma; one sigmoid unit becomes two classes."""
    height, width, channels = model.inputs[0].shape[1:]
    dtype = tf.float32 if quantization in INTEGER else tf.uint8
    spec = tf.TensorSpec([batch_size, height, width, 3], dtype, name="image")
    pixels = float_image_model(model)
    luma = tf.constant(LUMA, tf.float32, shape=[1, 1, 3, 1])

    def classify(image):
        x = tf.cast(image, tf.float32)
        if channels == 1:
            x = tf.nn.conv2d(x, luma, strides=1, padding="VALID")
        probabilities = pixels(x, training=False)
        if probabilities.shape[-1] == 1:
            probabilities = tf.concat([1 - probabilities, probabilities], axis=-1)
        return probabilities

    return classify, pixels, spec


def graph(source, quantization: str, tokens: bool, batch_size: int | None = 1):
    """(concrete function to convert, the Keras model it calls, its input specs).

    Images: an app's RGB frames (`app_image_graph`). Text with `tokens`: BERT's three int32
    inputs of fixed length, as MediaPipe Tasks feeds them (any derived inputs, such as
    textcls's hashed n-grams, computed inside). Both take `batch_size` examples (None: any;
    apps take 1). Text without: any batch of raw strings through the tokenizer LiteRT can run
    (`BertTokenizer.for_litert`)."""
    if not source.is_text:
        run, model, spec = app_image_graph(source.model, quantization, batch_size)
        specs = [spec]
    elif tokens:
        preprocessor, model = source.parts()
        length = model.inputs[0].shape[1]
        specs = [tf.TensorSpec([batch_size, length], tf.int32, name=name) for name in INPUTS]
        run = lambda *ids: model(preprocessor.complete(dict(zip(INPUTS, ids))), training=False)
    else:
        import tf_keras as keras

        preprocessor, core = source.parts()
        text = keras.Input((), dtype="string", name="text")
        model = keras.Model(text, core(preprocessor.for_litert()(text)))
        specs = [tf.TensorSpec([None], tf.string, name="text")]
        run = lambda text: model(text, training=False)

    @tf.function(input_signature=specs)
    def classify(*inputs):
        return {"probabilities": run(*inputs)}

    return classify.get_concrete_function(), model, specs


def raw_uint8_input(flatbuffer: bytes) -> bytes:
    """An integer file whose uint8 input takes raw pixels: the input's quantization set to
    scale 1, zero point 0 (its first op requantizes from there), instead of the range the
    calibration sample happened to span."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph_ = model.subgraphs[0]
    quantization = graph_.tensors[graph_.inputs[0]].quantization
    quantization.scale, quantization.zeroPoint = [1.0], [0]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def convert(source, quantization: str, calibration: dict, tokens: bool = False,
            batch_size: int | None = 1, every_op_integer: bool = False) -> bytes:
    """One .tflite flatbuffer. `calibration` ({input name: examples}) calibrates the integer
    quantizations; image int8 models take raw uint8 pixels and return uint8. A text core's
    int8 keeps its attention softmax chain and the ops LiteRT has no int8 kernels for in
    float32 (`int8_recipes.selective_int8`), unless `every_op_integer` (the Edge TPU's)."""
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
        if not source.is_text:
            converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    if quantization == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    selective = quantization == "int8" and tokens and not every_op_integer
    try:
        if selective:
            from export.int8_recipes import selective_int8
            flatbuffer = selective_int8(function, model, converter.representative_dataset)
        else:
            flatbuffer = converter.convert()
    except Exception as e:  # the converter's own errors run to pages of MLIR
        line = next((l for l in str(e).splitlines() if l.strip()), type(e).__name__)
        kind = "token-input" if tokens else "raw-input"
        raise ExportError(f"the {quantization} {kind} TFLite file of {source.name} does not "
                          f"convert: {line}") from None
    if quantization == "int8" and not source.is_text:
        flatbuffer = raw_uint8_input(flatbuffer)
    return flatbuffer


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


def utf8(texts) -> np.ndarray:
    """Texts (str or bytes, any array shape) as an object array of UTF-8 bytes."""
    texts = np.asarray(texts, dtype=object)
    encoded = [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts.ravel()]
    return np.array(encoded, dtype=object).reshape(texts.shape)


def _to_input(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.bytes_, np.object_, np.str_):
        return utf8(x)
    scale, zero_point = detail["quantization"]
    if scale:
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
    return x.astype(detail["dtype"])


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
