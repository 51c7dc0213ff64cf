"""`edgetpu_audit`: a full-int8 batch-1 TFLite file for `edgetpu_compiler` and an audit of its
ops against the Edge TPU's supported-operations list. The compiler itself is not run."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from export import tflite

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
