"""Mixed-precision int8 for transformer text cores: int8 embeddings, fully connected layers
and adds, with the attention softmax and the elementwise chain feeding it (BERT's additive mask),
the layer-norm statistics, GELU, TANH and the attention BATCH_MATMULs in float32.

Why (bert_tiny on SST-2, docs/int8_bert.md): the encoder computes
`softmax(q.k * 1/sqrt(d) - 1e9 * (1 - mask))`. In full int8 the masked scores get one int8
range that spans the -1e9, a step of about 4e6 that rounds every real score to the same value,
and the 0/1 mask a step of about 8e-9, so padded tokens are attended. Full int8 scores 0.650
on the dev set against Keras' 0.756; with that chain in float32, 0.757.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

# Op types kept in float32 together with their input chain (see `float_nodes`). SOFTMAX alone
# is not enough: the chain feeding it (scale MUL, mask SUB/MUL, the mask's CAST/RESHAPE/
# STRIDED_SLICE) has to stay float too, or its tensor is quantized before the softmax sees it.
FLOAT_OPS = ("SOFTMAX",)

# Op types kept float32 on their own, everywhere: not for accuracy (the chain above is enough)
# but for speed. LiteRT's CPU delegate has no int8 kernels for them, so in int8 they run on
# the reference kernels between delegated pieces: 212 us per sentence with these in float
# against 892 us with only the chain float (float32 file 522 us, dynamic range 207 us).
FLOAT_OP_TYPES = ("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "GELU", "TANH", "BATCH_MATMUL")

# The walk up from a float op stops at these ops (they stay int8) and at the graph inputs.
INT8_BOUNDARY_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D",
                     "GATHER", "EMBEDDING_LOOKUP")


def _ops(model_bytes: bytes) -> list[dict]:
    """[{op_name, inputs, outputs}] of a .tflite model, with tensor names for indices."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    # The op list has no public accessor; the quantization debugger reads it the same way.
    return [{"op_name": op["op_name"],
             "inputs": [names[i] for i in op["inputs"] if i >= 0],
             "outputs": [names[i] for i in op["outputs"]]}
            for op in interpreter._get_ops_details()]


def float_nodes(model_bytes: bytes, float_ops: Sequence[str] = FLOAT_OPS,
                boundary_ops: Sequence[str] = INT8_BOUNDARY_OPS) -> list[str]:
    """Output tensor names of every `float_ops` op and of the ops upstream of it up to the
    nearest `boundary_ops` op or graph input (the names `denylisted_nodes` takes)."""
    ops = _ops(model_bytes)
    producer = {name: op for op in ops for name in op["outputs"]}
    keep, stack = [], [op for op in ops if op["op_name"] in float_ops]
    seen = set()
    while stack:
        op = stack.pop()
        if op["outputs"][0] in seen:
            continue
        seen.add(op["outputs"][0])
        keep.append(op["outputs"][0])
        for name in op["inputs"]:
            up = producer.get(name)
            if up is not None and up["op_name"] not in boundary_ops:
                stack.append(up)
    return sorted(keep)


def selective_int8(function, model, representative_dataset: Callable[[], Iterable],
                   float_ops: Sequence[str] = FLOAT_OPS, *,
                   float_op_types: Sequence[str] = FLOAT_OP_TYPES,
                   per_channel: bool = False) -> bytes:
    """.tflite bytes of `function` (a concrete function calling Keras `model`) in int8 except:
    every `float_ops` op with its input chain (`float_nodes`), and every `float_op_types` op
    (by type, alone), which stay float32.

    Inputs keep their dtype (int32 token ids), the output is float32. `representative_dataset`
    yields lists of arrays in the order of `function`'s inputs, as the converter takes them.
    Weights are per-tensor unless `per_channel`."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_disable_per_channel = not per_channel  # no public switch
    debug = tf.lite.experimental
    debugger = debug.QuantizationDebugger(converter=converter,
                                          debug_dataset=representative_dataset)
    nodes = float_nodes(debugger.calibrated_model, float_ops) if float_ops else []
    debugger.options = debug.QuantizationDebugOptions(
        denylisted_ops=list(float_op_types) or None, denylisted_nodes=nodes or None)
    return debugger.get_nondebug_quantized_model()
