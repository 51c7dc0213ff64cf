"""TPU: an XLA-compiled fixed-batch SavedModel. Edge TPU: an int8 batch-1 TFLite + op audit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from export import tflite
from export.serving import call_core, core_input_specs, named_outputs, raw_input_spec

# The ops the Edge TPU compiler maps, as TFLite builtin names, from the "Supported operations"
# table of https://coral.ai/docs/edgetpu/models-intro/ (compiler 16). All must be int8/uint8.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE",
    "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT",
    "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE",
    "TRANSPOSE_CONV"})
EDGETPU_DOC = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"


def tpu_module(source, batch_size: int) -> tf.Module:
    """`serving_default` pads each request to a multiple of `batch_size`, runs the model
    through an XLA-compiled fixed-shape function chunk by chunk and slices the results.
    A text model's tokenizer (string ops XLA can't compile) runs before the compiled part."""
    module = tf.Module()
    module.model = source.model
    preprocessor, core = source.parts()
    if preprocessor is None:
        specs = [tf.TensorSpec([batch_size, *core.inputs[0].shape[1:]], core.inputs[0].dtype)]
        run_core = lambda flat: core(flat[0], training=False)
    else:
        specs = core_input_specs(core, batch_size)
        run_core = lambda flat: call_core(core, flat)

    @tf.function(jit_compile=True, input_signature=specs)
    def compiled(*flat):
        return run_core(flat)

    def pad_and_chunk(x):
        n = tf.shape(x)[0]
        padded = tf.pad(x, [[0, (-n) % batch_size]] + [[0, 0]] * (x.shape.rank - 1))
        return tf.reshape(padded, [-1, batch_size, *x.shape[1:]])

    @tf.function(input_signature=[raw_input_spec(source.model)])
    def serve(inputs):
        flat = tf.nest.flatten(preprocessor(inputs) if preprocessor is not None else inputs)
        n = tf.shape(flat[0])[0]
        chunks = [pad_and_chunk(x) for x in flat]
        probabilities = tf.map_fn(lambda c: compiled(*c), chunks,
                                  fn_output_signature=tf.float32)
        probabilities = tf.reshape(probabilities, [-1, probabilities.shape[-1]])[:n]
        return named_outputs(probabilities, source.labels)

    module.compiled, module.serve = compiled, serve
    return module


def write_tpu_saved_model(source, path: Path, batch_size: int):
    """Saves the XLA-compiled fixed-batch SavedModel to `path`."""
    module = tpu_module(source, batch_size)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def edgetpu_tflite(source, calibration: dict) -> bytes:
    """Full-integer int8 with static shapes (batch 1): what `edgetpu_compiler` takes.
    Text models contribute their token-ids core (the compiler can't take string ops)."""
    return tflite.convert(source, "int8", calibration, tokens=source.is_text, batch_size=1,
                          every_op_integer=True)


def audit(model: bytes | Path) -> dict:
    """Every op of the flatbuffer, whether the Edge TPU compiler maps it, and why not.

    The compiler hands the graph to the Edge TPU up to the first op it can't map; that op and
    all after it run on the CPU."""
    interpreter = tflite.interpreter(model)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops, on_tpu = [], True
    for op in interpreter._get_ops_details():  # LiteRT's only op listing; public API has none
        types = sorted({np.dtype(tensors[i]["dtype"]).name
                        for i in [*op["inputs"], *op["outputs"]] if i >= 0})
        reason = None
        if op["op_name"] not in EDGETPU_OPS:
            reason = "not in the Edge TPU supported-operations list"
        elif any(t.startswith("float") for t in types):
            reason = "float tensors: the Edge TPU runs only 8-bit quantized ops"
        on_tpu = on_tpu and reason is None
        ops.append({"index": op["index"], "op": op["op_name"], "tensor_types": types,
                    "supported": reason is None, "mapped": on_tpu, "reason": reason})
    static = all(-1 not in d["shape_signature"]
                 for d in interpreter.get_input_details() + interpreter.get_output_details())
    return {"reference": EDGETPU_DOC, "static_shapes": static,
            "all_mapped": bool(ops) and all(o["mapped"] for o in ops) and static, "ops": ops}
