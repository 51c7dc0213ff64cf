"""A test emulation of how TF Serving answers Predict requests, not a server.

It follows TF Serving's documented request and response forms: the gRPC `PredictRequest` and
`PredictResponse` protos (tensorflow-serving-api), and the REST API's JSON row format
(`{"signature_name": ..., "instances": [...]}` in, `{"predictions": [...]}` out), where binary
strings travel as `{"b64": "<base64>"}`, a signature's only input may be given bare per
instance or by name, several outputs come back as one object per instance (the only case
emulated here), and string outputs are plain strings unless their name ends in `_bytes`.
"""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import tensorflow as tf

DEFAULT_SIGNATURE = "serving_default"


def signature_of(models: dict, name: str, signature_name: str):
    """The loaded SavedModel `name`'s signature, as a request names them."""
    return models[name].signatures[signature_name or DEFAULT_SIGNATURE]


def grpc_predict(models: dict, request_bytes: bytes) -> bytes:
    """A serialized `PredictRequest` in, the serialized `PredictResponse` out."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest.FromString(request_bytes)
    signature = signature_of(models, request.model_spec.name, request.model_spec.signature_name)
    feed = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in signature(**feed).items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response.SerializeToString()


def is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def from_json(value):
    """A JSON value with its `{"b64": ...}` objects decoded to bytes."""
    if is_b64(value):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(name: str, value):
    """A numpy output value as JSON: bytes as text, or as `{"b64": ...}` for `*_bytes`."""
    if isinstance(value, np.ndarray):
        return [to_json(name, v) for v in value]
    if isinstance(value, bytes):
        return ({"b64": base64.b64encode(value).decode()} if name.endswith("_bytes")
                else value.decode())
    return value.item()


def columns(instances: list, input_names: list[str]) -> dict:
    """Row-format instances -> {input name: values}: objects name their inputs, anything else
    is the value of the only input."""
    if all(isinstance(i, dict) and not is_b64(i) for i in instances):
        return {name: [from_json(i[name]) for i in instances] for name in input_names}
    if len(input_names) != 1:
        raise ValueError(f"instances must name the inputs {input_names}")
    return {input_names[0]: [from_json(i) for i in instances]}


def rest_predict(models: dict, url_path: str, body: str) -> str:
    """`POST /v1/models/<name>:predict` with a row-format JSON body; the JSON answer."""
    name = re.fullmatch(r"/v1/models/([^/:]+):predict", url_path).group(1)
    request = json.loads(body)
    signature = signature_of(models, name, request.get("signature_name"))
    specs = signature.structured_input_signature[1]
    feed = {input_name: tf.constant(values, specs[input_name].dtype)
            for input_name, values in columns(request["instances"], list(specs)).items()}
    outputs = {k: v.numpy() for k, v in signature(**feed).items()}
    if len(outputs) < 2:
        raise ValueError("this emulation answers signatures with several outputs only")
    batch = len(next(iter(outputs.values())))
    return json.dumps({"predictions": [{k: to_json(k, v[row]) for k, v in outputs.items()}
                                       for row in range(batch)]})
