"""python -m export: every format, bit-for-bit agreement with Keras, the accuracy gate, atomic
publishing, CLI errors, and (when ../shared is there) real MNIST int8 size and accuracy."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from export import pipeline, serving, source as export_source, tflite
from export.evaluate import two_class
from export.pipeline import AccuracyGateError, Options
from export.source import ExportError, Source
from zoo import parts
from zoo.schema import FORMATS, QUANTIZATIONS

from conftest import REPO, check_in_mediapipe
PYTHON = sys.executable
ALL_FORMATS = list(FORMATS)
ALL_QUANT = list(QUANTIZATIONS)
TINY = {"mnist_cnn": ["model.conv_filters=[8,16]", "model.dense_units=16"],
        "imgcls": ["model.image_size=32", "model.conv_filters=[8,16]", "model.dense_units=8"]}


def train(name: str, model_dir: Path, overrides: list[str]) -> Path:
    """Trains registry model `name` into `model_dir` with zoo.train.run."""
    import zoo.train
    from zoo.config import load_config

    cfg = load_config(name, overrides=["train.strategy=cpu", *overrides])
    zoo.train.run(cfg, model_dir)
    return model_dir


def synthetic_run(name: str, model_dir: Path) -> Path:
    return train(name, model_dir, [
        "data.dataset=synthetic", "data.synthetic_examples=512", "train.epochs=4",
        "train.batch_size=32", "model.augment=false", "model.batch_norm=false", *TINY[name]])


def run_cli(*args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([PYTHON, "-m", "export", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def published_versions(out: Path, name: str) -> list[Path]:
    return [p for part in ("serving", "artifacts") for p in (out / part / name).glob("*")
            if p.name.isdigit()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Lazily trained tiny image models, one per registry name."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = synthetic_run(name, tmp_path_factory.mktemp(name))
        return cache[name]
    return get


def probabilities(artifact_dir: Path, feed: dict, signature="serving_default") -> dict:
    function = tf.saved_model.load(str(artifact_dir)).signatures[signature]
    return {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in feed.items()}
                                              ).items()}


def tensor_types(path: Path) -> set[str]:
    return {np.dtype(t["dtype"]).name for t in tflite.interpreter(path).get_tensor_details()}


# The whole matrix on the grey softmax model; the RGB sigmoid model (two-class outputs, RGB
# frames) through what differs for it: the SavedModel and the float32 and int8 app files.
MATRIX = {"mnist_cnn": (ALL_FORMATS, ALL_QUANT),
          "imgcls": (["saved_model", "tflite"], ["float32", "int8"])}


@pytest.mark.parametrize("name", ["mnist_cnn", "imgcls"])
def test_image_model_exports_every_format(name, runs, tmp_path):
    src = export_source.load(runs(name))
    out = tmp_path / "export"
    formats, quantizations = MATRIX[name]
    # Agreement with Keras is checked below to 1e-5; the gate has its own test.
    manifest = pipeline.run(src, out, Options(formats, quantizations, max_accuracy_drop=1.0,
                                              eval_examples=64), log=print)
    entries = {e["name"]: e for e in manifest["artifacts"]}
    expected = {"keras", *(f for f in formats if f != "tflite"),
                *(f"tflite/{name}_{q}" for q in quantizations)}
    assert set(entries) == expected
    for entry in entries.values():
        if entry["name"] != "keras":
            assert (out / entry["path"]).exists() and entry["bytes"] > 0
            assert len(entry["sha256"]) == 64
    for exact in {"saved_model", "xla", f"tflite/{name}_float32"} & set(entries):
        assert entries[exact]["max_abs_diff"] <= 1e-5, exact
        assert entries[exact]["accuracy_delta"] == 0
    assert json.loads((out / "manifest.json").read_text())["version"] == 1

    # The SavedModel, called as TF Serving calls it, against the Keras model.
    saved = out / "serving" / name / "1"
    images, labels = pipeline.take_arrays(src.eval_ds, 16)
    keras_probs = src.model(images, training=False).numpy()
    by_bytes = probabilities(saved, {"image_bytes": serving.client_inputs(src, images)})
    by_tensor = probabilities(saved, {"image": images}, "serving_tensor")
    for result in (by_bytes, by_tensor):
        np.testing.assert_allclose(result["probabilities"], keras_probs, atol=1e-5)
        assert set(result) == {"probabilities", "class_ids", "class_names"}
        assert [n.decode() for n in result["class_names"]] == [
            src.labels[i] for i in result["class_ids"]]

    # The float32 TFLite file, an app's RGB frame in, in LiteRT against the Keras model; every
    # TFLite file is checked in MediaPipe Tasks (its runtime) and in LiteRT.
    float32 = out / entries[f"tflite/{name}_float32"]["path"]
    runner = tflite.Runner(float32)
    np.testing.assert_allclose(runner({"image": tflite.rgb(images)}), two_class(keras_probs),
                               atol=1e-5)
    assert (float32.parent / "labels.txt").read_text().splitlines() == src.labels
    for q in quantizations:
        entry = entries[f"tflite/{name}_{q}"]
        assert entry["runtime"] == "mediapipe_tasks" and "accuracy" in entry["litert"], q
        assert entry["inputs"]["image"]["shape"] == [1, *images.shape[1:3], 3], q
    for q, exact in (("float32", True), ("int8", False)):  # as an app runs them
        check_in_mediapipe(out / entries[f"tflite/{name}_{q}"]["path"], tflite.rgb(images),
                           keras_probs, src.labels, labels, exact, max_drop=0.0625)
    assert entries["saved_model"]["runtime"] == "tensorflow"

    # Integer files really are integer, and the int8 one takes raw pixels.
    int8 = out / entries[f"tflite/{name}_int8"]["path"]
    details = tflite.interpreter(int8).get_input_details()[0]
    assert details["dtype"] == np.uint8 and details["quantization"] == (1.0, 0)
    assert tflite.interpreter(int8).get_output_details()[0]["dtype"] == np.uint8
    assert "int8" in tensor_types(int8) and "float32" not in tensor_types(int8)
    if "int16x8" in quantizations:
        assert "int16" in tensor_types(out / entries[f"tflite/{name}_int16x8"]["path"])

    # Warmup records are PredictionLogs the SavedModel answers.
    logs = serving.read_warmup(saved / "assets.extra" / serving.WARMUP_FILE)
    assert logs
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == name
        feed = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        assert probabilities(saved, feed)["probabilities"].shape == (1, keras_probs.shape[1])

    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    config = text_format.Parse((out / "serving" / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert config.model_config_list.config[0].base_path == f"/models/{name}"
    if name != "mnist_cnn":  # the model-independent checks below run once
        return

    # Edge TPU: static batch-1 int8, every op audited.
    audit = json.loads((out / "artifacts" / name / "1" / "edgetpu_audit" / "edgetpu_ops.json")
                       .read_text())
    assert audit["static_shapes"] and audit["all_mapped"]
    assert {"CONV_2D", "FULLY_CONNECTED"} <= {op["op"] for op in audit["ops"]}

    shown = subprocess.run([str(Path(PYTHON).parent / "saved_model_cli"), "show", "--dir",
                            str(saved), "--all"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    for text in ("serving_default", "serving_tensor", "image_bytes", "class_names"):
        assert text in shown.stdout


def test_bad_inputs_give_readable_errors(runs, tmp_path):
    src = export_source.load(runs("mnist_cnn"))
    pipeline.run(src, tmp_path, Options(["saved_model"], [], max_accuracy_drop=1.0,
                                        eval_examples=16))
    saved = tmp_path / "serving" / "mnist_cnn" / "1"
    with pytest.raises(tf.errors.InvalidArgumentError, match="image"):
        probabilities(saved, {"image_bytes": np.array([b"not an image"], dtype=object)})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image must be uint8\[batch, 28"):
        probabilities(saved, {"image": np.zeros((1, 5, 5, 1), np.uint8)}, "serving_tensor")
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        probabilities(saved, {"image": np.zeros((1, 28, 28, 1), np.float32)}, "serving_tensor")
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        probabilities(saved, {"image_bytes": np.array([b"x" * 2**20], dtype=object)})
    # a signature checks dtypes, not ranks: the zoo's own checks name the input
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"tensor image_bytes \[\] is not compatible with expected shape"):
        probabilities(saved, {"image_bytes": np.array(b"x", dtype=object)})
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"tensor image \[28,28,1\] is not compatible with expected shape"):
        probabilities(saved, {"image": np.zeros((28, 28, 1), np.uint8)}, "serving_tensor")
    empty = probabilities(saved, {"image_bytes": np.array([], dtype=object)})
    assert empty["probabilities"].shape == (0, 10) and empty["class_names"].shape == (0,)
    empty = probabilities(saved, {"image": np.zeros((0, 28, 28, 1), np.uint8)}, "serving_tensor")
    assert empty["probabilities"].shape == (0, 10)


def test_broken_calibration_fails_the_gate_and_publishes_nothing(runs, tmp_path):
    src = export_source.load(runs("mnist_cnn"))
    constant = np.zeros((50, 28, 28, 1), np.uint8)  # every activation range collapses to 0
    with pytest.raises(AccuracyGateError, match="tflite/mnist_cnn_int8"):
        pipeline.run(src, tmp_path, Options(["saved_model", "tflite"], ["float32", "int8"],
                                            max_accuracy_drop=0.01, eval_examples=128),
                     calibration=constant)
    assert published_versions(tmp_path, "mnist_cnn") == []
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "manifest.json").exists()


def test_killed_export_publishes_nothing_and_a_rerun_succeeds(runs, tmp_path):
    model_dir = runs("mnist_cnn")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(
        [PYTHON, "-m", "export", f"--model_dir={model_dir}", f"--out={tmp_path}",
         "--formats=saved_model,tflite", "--quantize=float32,dynamic,int8",
         "--max_accuracy_drop=1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".tmp-*/serving/*")) and time.time() < deadline:
        assert process.poll() is None, "export ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".tmp-*")), "the kill should leave only a temporary directory"
    assert published_versions(tmp_path, "mnist_cnn") == []

    done = run_cli(f"--model_dir={model_dir}", f"--out={tmp_path}", "--formats=saved_model",
                   "--max_accuracy_drop=1", "--eval_examples=16")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in published_versions(tmp_path, "mnist_cnn")) == ["1", "1"]
    assert not list(tmp_path.glob(".tmp-*"))


def test_cli_errors_are_one_line_and_exit_2(runs, tmp_path):
    missing = run_cli(f"--model_dir={tmp_path / 'nope'}", f"--out={tmp_path}")
    assert missing.returncode == 2 and missing.stderr.startswith("error: model_dir not found")
    no_ckpt = tmp_path / "empty"
    no_ckpt.mkdir()
    (no_ckpt / "config.yaml").write_text((runs("mnist_cnn") / "config.yaml").read_text())
    result = run_cli(f"--model_dir={no_ckpt}", f"--out={tmp_path}")
    assert result.returncode == 2 and "error: no checkpoint" in result.stderr
    probe = subprocess.run(  # found before TensorFlow loads
        [PYTHON, "-c", "import sys; from export import source\ntry: source.load(sys.argv[1])\n"
         "except source.ExportError as e: print(e)\nprint('tensorflow' in sys.modules)",
         str(no_ckpt)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert probe.stdout.splitlines()[1:] == ["False"], probe.stdout + probe.stderr
    assert probe.stdout.startswith("no checkpoint in"), probe.stdout
    bad = run_cli(f"--model_dir={runs('mnist_cnn')}", f"--out={tmp_path}", "--formats=onnx")
    assert bad.returncode == 2 and "error: unknown format onnx" in bad.stderr
    bad = run_cli(f"--model_dir={runs('mnist_cnn')}", f"--out={tmp_path}", "--quantize=int4")
    assert bad.returncode == 2 and "error: unknown quantization int4" in bad.stderr
    old = run_cli(f"--model_dir={runs('mnist_cnn')}", f"--out={tmp_path}", "--formats=tpu",
                  "--tpu_batch_size=4", "--quantize=int4")  # the names before 0.2
    assert old.returncode == 2 and "error: unknown quantization int4" in old.stderr
    assert "note: export format 'tpu' is now called 'xla'" in old.stderr
    assert "note: --tpu_batch_size is now called --xla_batch_size" in old.stderr
    for result in (missing, bad):
        assert "Traceback" not in result.stderr

    src = export_source.load(runs("mnist_cnn"))
    options = Options(["saved_model"], [], max_accuracy_drop=1.0, eval_examples=8)
    pipeline.run(src, tmp_path / "out", options)
    with pytest.raises(ExportError, match="version 1 of mnist_cnn already exists"):
        pipeline.run(src, tmp_path / "out", Options(**{**vars(options), "version": 1}))
    taken = run_cli(f"--model_dir={runs('mnist_cnn')}", f"--out={tmp_path / 'out'}",
                    "--version=1", "--formats=saved_model")
    assert taken.returncode == 2 and "already exists" in taken.stderr
    replaced = pipeline.run(src, tmp_path / "out", Options(**{**vars(options), "version": 1,
                                                              "overwrite": True}))
    assert replaced["version"] == 1
    assert pipeline.run(src, tmp_path / "out", options)["version"] == 2


# --- the text path, through a tiny model that follows the textcls/bert contract -------------

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "movie", "film", "was", "is", "good", "great",
         "fine", "bad", "awful", "dull", "very", "plot", "acting", "##s", "and", "not"]
POSITIVE, NEGATIVE = ["good", "great", "fine"], ["bad", "awful", "dull"]
LENGTH = 8


def sentences(n: int, seed: int):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        word = rng.choice(POSITIVE if label else NEGATIVE)
        subject = rng.choice(["the movie", "the film", "the plot", "the acting", "movies"])
        texts.append(f"{subject} {rng.choice(['was', 'is'])} {rng.choice(['very ', ''])}{word}")
        labels.append(label)
    return tf.data.Dataset.from_tensor_slices((np.array(texts, dtype=object),
                                               np.array(labels, np.int32)))


def tiny_text_model():
    """strings -> the phone's tokenizer (`preprocessor`, zoo's textcls layer) -> `core`:
    BERT's three inputs -> mean word embedding -> softmax."""
    import tf_keras as keras
    from zoo.models.bert.encoder import INPUTS
    from zoo.models.textcls.layers import Tokenize

    inputs = {name: keras.Input((LENGTH,), dtype="int32", name=name) for name in INPUTS}
    x = keras.layers.Embedding(len(VOCAB), 8)(inputs["input_word_ids"])
    x = keras.layers.GlobalAveragePooling1D()(x)
    probs = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    core = keras.Model(inputs, probs, name=parts.CORE)
    text = keras.Input((), dtype="string", name="text")
    model = keras.Model(text, core(Tokenize(VOCAB, LENGTH, name=parts.PREPROCESSOR)(text)),
                        name="tinytext")
    preprocessor = parts.split_preprocessing(model).preprocessor
    core.compile("adam", "sparse_categorical_crossentropy")
    train = sentences(256, 0).batch(32).map(lambda t, y: (preprocessor(t), y))
    core.optimizer.learning_rate = 0.05
    core.fit(train, epochs=15, verbose=0)
    return model


def test_text_model_exports_with_tokenizer_in_graph(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    src = Source("tinytext", "text_classification", tiny_text_model(), ["negative", "positive"],
                 sentences(256, 0), sentences(64, 1), [vocab])
    out = tmp_path / "export"
    # `tpu`: the name of `xla` before 0.2, still accepted
    manifest = pipeline.run(src, out, Options(["saved_model", "tflite", "tpu"],
                                              ["float32", "dynamic", "int8"], eval_examples=64,
                                              max_accuracy_drop=0.05))
    entries = {e["name"]: e for e in manifest["artifacts"]}
    assert entries["keras"]["accuracy"] > 0.9
    assert set(entries) == {"keras", "saved_model", "xla", "tflite/tinytext_float32",
                            "tflite/tinytext_dynamic", "tflite/tinytext_tokens_float32",
                            "tflite/tinytext_tokens_dynamic", "tflite/tinytext_tokens_int8"}
    for exact in ("saved_model", "xla", "tflite/tinytext_float32",
                  "tflite/tinytext_tokens_float32"):
        assert entries[exact]["max_abs_diff"] <= 1e-5, exact

    texts, _ = pipeline.take_arrays(src.eval_ds, 8)
    keras_probs = src.model(texts, training=False).numpy()
    saved = out / "serving" / "tinytext" / "1"
    np.testing.assert_allclose(probabilities(saved, {"text": texts})["probabilities"],
                               keras_probs, atol=1e-5)
    ids = serving.token_inputs(src, texts)
    np.testing.assert_allclose(probabilities(saved, ids, "serving_tensor")["probabilities"],
                               keras_probs, atol=1e-5)
    tflite_dir = out / "artifacts" / "tinytext" / "1" / "tflite"
    runner = tflite.Runner(tflite_dir / "tinytext_float32.tflite", custom_ops=True)
    np.testing.assert_allclose(runner({"text": texts}), keras_probs, atol=1e-5)
    assert (tflite_dir / "vocab.txt").read_text().splitlines() == VOCAB
    assert "int8" in tensor_types(tflite_dir / "tinytext_tokens_int8.tflite")
    logs = serving.read_warmup(saved / "assets.extra" / serving.WARMUP_FILE)
    assert list(logs[0].predict_log.request.inputs) == ["text"]
