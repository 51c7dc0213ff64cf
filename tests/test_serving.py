"""SavedModels for the stock tensorflow/serving image: the ops audit (TensorFlow +
tensorflow-text 2.12.1), gRPC and REST requests answered as TF Serving answers them
(tests/serving_emulation.py), and models.config's container paths."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from export import pipeline, serving, serving_ops, source as export_source
from export.pipeline import Options
from export.source import ExportError, Source

import serving_emulation
from test_export import VOCAB, runs, sentences, tiny_text_model  # noqa: F401 (runs: fixture)

TOKENIZER_OPS = {"RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets", "StringLower"}
NEWER_THAN_2_12_1 = {"TFText>Utf8Binarize", "TFText>RoundRobinTrim",
                     "TFText>RoundRobinGenerateMasks"}


def saved_module(function, path, table=None) -> str:
    """Saves a tf.Module whose `serving_default` is `function` (and which owns the lookup
    `table` it uses); returns the SavedModel path."""
    module = tf.Module()
    module.function, module.table = function, table
    tf.saved_model.save(module, str(path), signatures={"serving_default": function})
    return str(path)


@pytest.fixture(scope="module")
def image_model(runs, tmp_path_factory):
    """(Source, SavedModel path) of a tiny trained mnist_cnn, written by write_saved_model."""
    src = export_source.load(runs("mnist_cnn"))
    path = tmp_path_factory.mktemp("serving") / "mnist_cnn" / "1"
    path.parent.mkdir()
    images, _ = pipeline.take_arrays(src.eval_ds, 4)
    serving.write_saved_model(src, path, images[:2])
    return src, path


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    """(Source, SavedModel path) of the tiny text model with its tokenizer in the graph."""
    src = Source("tinytext", "text_classification", tiny_text_model(), ["negative", "positive"],
                 sentences(64, 0), sentences(16, 1))
    path = tmp_path_factory.mktemp("serving") / "tinytext" / "1"
    path.parent.mkdir()
    serving.write_saved_model(src, path, np.array(["a great movie"], dtype=object))
    return src, path


def test_allowed_ops_are_tensorflow_and_tensorflow_text_2_12_1():
    lines = [line for line in serving_ops.TENSORFLOW_TEXT_OPS_FILE.read_text().splitlines()
             if not line.startswith("#")]
    assert lines == sorted(lines)
    old = serving_ops.tensorflow_text_2_12_1_ops()
    assert {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets",
            "WordpieceTokenizeWithOffsets"} <= old
    assert NEWER_THAN_2_12_1 <= serving_ops.tensorflow_text_ops() - old
    tensorflow = serving_ops.tensorflow_ops()
    assert {"StringLower", "Conv2D", "StatefulPartitionedCall"} <= tensorflow
    assert len(tensorflow) > 1000
    assert not NEWER_THAN_2_12_1 & serving_ops.allowed_ops()


def test_audit_passes_tensorflow_text_tokenizer_ops(text_model, tmp_path):
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(VOCAB, tf.range(len(VOCAB), dtype=tf.int64)), 1)
    wordpiece = tf_text.WordpieceTokenizer(table, token_out_type=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(text):
        words, _, _ = tf_text.regex_split_with_offsets(tf.strings.lower(text), r"\s+")
        ids, _, _ = wordpiece.tokenize_with_offsets(words)
        return {"ids": ids.merge_dims(1, -1).to_tensor()}

    path = saved_module(tokenize, tmp_path / "tokenizer", table)
    assert TOKENIZER_OPS <= serving_ops.op_types(path)
    assert serving_ops.audit(path) == []
    serving_ops.check(path)
    _, text_path = text_model  # write_saved_model checked it too
    assert serving_ops.audit(text_path) == []
    assert serving_ops.op_types(text_path) & serving_ops.tensorflow_text_2_12_1_ops()


def test_audit_refuses_ops_newer_than_tensorflow_text_2_12_1(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def binarize(text):
        return {"bits": tf_text.utf8_binarize(text)}

    path = saved_module(binarize, tmp_path / "binarize")
    assert serving_ops.audit(path) == ["TFText>Utf8Binarize"]
    with pytest.raises(ExportError, match=r"^the SavedModel uses op\(s\) TFText>Utf8Binarize "
                       r"missing from the stock tensorflow/serving image \(TensorFlow \+ "
                       r"tensorflow-text 2\.12\.1\)$"):
        serving_ops.check(path)


def test_write_saved_model_refuses_ops_the_image_lacks(image_model, tmp_path, monkeypatch):
    src, _ = image_model
    allowed = serving_ops.allowed_ops()
    monkeypatch.setattr(serving_ops, "allowed_ops", lambda: allowed - {"Conv2D"})
    with pytest.raises(ExportError, match="op\\(s\\) Conv2D missing"):
        serving.write_saved_model(src, tmp_path / "1", np.zeros((1, 28, 28, 1), np.uint8))


def predict_request(name: str, input_name: str, values) -> bytes:
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(values))
    return request.SerializeToString()


def direct(path, feed: dict) -> dict:
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in feed.items()}
                                               ).items()}


def client_examples(src, n=3):
    """(input name, what a client sends) for `n` evaluation examples."""
    inputs, _ = pipeline.take_arrays(src.eval_ds, n)
    return ("text" if src.is_text else "image_bytes"), serving.client_inputs(src, inputs)


@pytest.mark.parametrize("model", ["image_model", "text_model"])
def test_grpc_predict_request_and_response(model, request):
    from tensorflow_serving.apis import predict_pb2

    src, path = request.getfixturevalue(model)
    input_name, values = client_examples(src)
    models = {src.name: tf.saved_model.load(str(path))}
    response = predict_pb2.PredictResponse.FromString(
        serving_emulation.grpc_predict(models, predict_request(src.name, input_name, values)))
    assert response.model_spec.name == src.name
    expected = direct(path, {input_name: values})
    assert set(response.outputs) == set(expected) == {"probabilities", "class_ids",
                                                      "class_names"}
    for name, value in expected.items():
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs[name]), value)


def check_predictions(body: str, expected: dict, labels: list[str]):
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == len(expected["class_ids"])
    for row, prediction in enumerate(predictions):
        assert set(prediction) == {"probabilities", "class_ids", "class_names"}
        np.testing.assert_allclose(prediction["probabilities"], expected["probabilities"][row],
                                   rtol=1e-6)
        assert prediction["class_ids"] == expected["class_ids"][row]
        assert prediction["class_names"] == labels[prediction["class_ids"]]


def test_rest_predict_with_b64_image_bytes(image_model):
    src, path = image_model
    _, images = client_examples(src)
    models = {"mnist_cnn": tf.saved_model.load(str(path))}
    expected = direct(path, {"image_bytes": images})
    b64 = [{"b64": base64.b64encode(image).decode()} for image in images]
    for instances in (b64, [{"image_bytes": value} for value in b64]):
        body = json.dumps({"signature_name": "serving_default", "instances": instances})
        check_predictions(serving_emulation.rest_predict(models, "/v1/models/mnist_cnn:predict",
                                                         body), expected, src.labels)


def test_rest_predict_with_plain_text(text_model):
    src, path = text_model
    texts = ["a great movie", "the plot was awful"]
    models = {"tinytext": tf.saved_model.load(str(path))}
    body = json.dumps({"instances": texts})  # no signature_name: serving_default
    answer = serving_emulation.rest_predict(models, "/v1/models/tinytext:predict", body)
    check_predictions(answer, direct(path, {"text": np.array(texts, dtype=object)}), src.labels)
    assert [p["class_names"] for p in json.loads(answer)["predictions"]] == [
        "positive", "negative"]


def base_paths(config_text: str) -> dict:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(config_text, model_server_config_pb2.ModelServerConfig())
    return {c.name: c.base_path for c in config.model_config_list.config}


def test_models_config_names_container_paths(runs, tmp_path):
    for name in ("mnist_cnn", "tinytext", ".tmp-mnist_cnn-2-99"):
        (tmp_path / "serving" / name).mkdir(parents=True)
    assert base_paths(serving.models_config(tmp_path / "serving")) == {
        "mnist_cnn": "/models/mnist_cnn", "tinytext": "/models/tinytext"}
    assert base_paths(serving.models_config(tmp_path / "serving", "/srv/zoo/"))["tinytext"] == (
        "/srv/zoo/tinytext")

    src = export_source.load(runs("mnist_cnn"))
    out = tmp_path / "export"
    pipeline.run(src, out, Options(["saved_model"], [], max_accuracy_drop=1.0, eval_examples=8,
                                   serving_base_path="/srv/models"))
    assert base_paths((out / "serving" / "models.config").read_text()) == {
        "mnist_cnn": "/srv/models/mnist_cnn"}


def test_serving_base_path_flag_reaches_the_options():
    from export import __main__ as cli
    from zoo.config import ExportConfig

    try:
        cli.parse_flags(["export"])
        assert cli.options(ExportConfig()).serving_base_path == "/models"
        cli.parse_flags(["export", "--serving_base_path=/srv/models"])
        assert cli.options(ExportConfig()).serving_base_path == "/srv/models"
    finally:
        cli.FLAGS.unparse_flags()
