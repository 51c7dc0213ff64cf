"""A model_dir, data folder and export --out given as URLs (gs://bucket/run on a TPU job) go
through tf.io.gfile. The tests use TensorFlow's in-memory ram:// filesystem, in process (issue:
`Path("gs://bucket/run")` is "gs:/bucket/run", a local folder, and the run was written there)."""
import gzip
import json
import uuid

import numpy as np
import pytest

import tensorflow as tf

from zoo import files
from zoo.config import load_config
from zoo.run_dir import RunDir
from zoo.train import run

TEXTCLS = ["train.strategy=cpu", "train.epochs=2", "train.batch_size=32",
           "train.batch_scaling_examples=0", "train.steps_per_epoch=4",
           "model.vocab_size=300", "model.embedding_dim=8"]


def ram(*names) -> str:
    """A fresh ram:// folder (the filesystem is shared by the whole test process)."""
    return "/".join([f"ram://{uuid.uuid4().hex[:8]}", *names])


def read(path: str) -> str:
    with tf.io.gfile.GFile(path) as f:
        return f.read()


def no_local_url_folder(cwd):
    # what Path() made of the URL: a local "ram:" (or "gs:") folder in the working directory
    return not (cwd / "ram:").exists()


def test_a_run_at_a_url_writes_every_file_there_resumes_and_exports_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = RunDir(ram("runs", "textcls"))
    cfg = load_config("textcls", overrides=["data.dataset=synthetic",
                                            "data.synthetic_examples=256", *TEXTCLS])
    first = run(cfg, run_dir.root)
    assert no_local_url_folder(tmp_path), sorted(p.name for p in tmp_path.iterdir())
    assert run_dir.root.startswith("ram://")
    for path in (run_dir.config, run_dir.metrics, run_dir.labels,
                 run_dir.assets + "/vocab.txt", run_dir.checkpoint_state):
        assert tf.io.gfile.exists(path), path
    assert tf.io.gfile.listdir(run_dir.chief_backup)
    assert tf.io.gfile.listdir(run_dir.logs)
    # the vocabulary is stored relative to the run, so the run can be copied elsewhere
    assert "vocab_file: assets/vocab.txt" in read(run_dir.config)
    # rerunning the finished run evaluates it: it found its backup, its checkpoints and its
    # metrics.json there (and keeps how the run trained)
    again = run(load_config("textcls", overrides=["data.dataset=synthetic",
                                                  "data.synthetic_examples=256", *TEXTCLS]),
                run_dir.root)
    assert again["weights_sha256"] == first["weights_sha256"]
    assert again["wall_time_s"] == first["wall_time_s"]

    from export import pipeline, source
    from export.pipeline import Options
    out = ram("models")
    loaded = source.load(run_dir.root)
    options = Options(["saved_model", "tflite"], ["float32"], max_accuracy_drop=1.0,
                      eval_examples=32, calibration_examples=16, warmup_examples=2)
    manifest = pipeline.run(loaded, out, options, log=lambda *_: None)
    assert manifest["version"] == 1
    serving = f"{out}/serving/textcls/1"
    assert tf.io.gfile.exists(f"{serving}/saved_model.pb")
    assert tf.io.gfile.exists(f"{out}/artifacts/textcls/1/manifest.json")
    assert tf.io.gfile.exists(f"{out}/artifacts/textcls/1/tflite/textcls_float32.tflite")
    assert 'base_path: "/models/textcls"' in read(f"{out}/serving/models.config")
    assert json.loads(read(f"{out}/manifest.json"))["version"] == 1
    reloaded = tf.saved_model.load(serving)
    assert "serving_default" in reloaded.signatures
    # a second export takes the next version; asking for a taken one is refused
    assert pipeline.run(loaded, out, options, log=lambda *_: None)["version"] == 2
    with pytest.raises(source.ExportError, match="version 1 of textcls already exists"):
        pipeline.run(loaded, out, Options(["saved_model"], [], version=1, eval_examples=8),
                     log=lambda *_: None)
    assert no_local_url_folder(tmp_path)


def _write(path: str, data: bytes):
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_data_folders_at_a_url_are_read_through_gfile():
    from zoo import data
    rng = np.random.default_rng(0)
    digits = ram("mnist")
    for prefix, n in (("train", 40), ("t10k", 20)):
        _write(f"{digits}/{prefix}-images-idx3-ubyte.gz",
               gzip.compress(_idx(rng.integers(0, 255, (n, 28, 28)))))
        _write(f"{digits}/{prefix}-labels-idx1-ubyte", _idx(np.arange(n) % 10))
    cfg = load_config("mnist_cnn", overrides=[f"data.dataset=idx:{digits}"])
    data.check_local(cfg.data.dataset)
    train, _, info = data.load(cfg, "image_classification")
    assert (info.train_examples, info.eval_examples, info.num_classes) == (40, 20, 10)
    assert info.source == f"idx:{digits}"
    assert next(iter(train))[0].shape == (28, 28, 1)

    sentences = ram("sst")
    for split, n in (("train", 12), ("dev", 6)):
        rows = "".join(f"sentence {k}\t{k % 2}\n" for k in range(n))
        _write(f"{sentences}/{split}.tsv", ("sentence\tlabel\n" + rows).encode())
    cfg = load_config("textcls", overrides=[f"data.dataset=tsv:{sentences}"])
    data.check_local(cfg.data.dataset)
    _, evaluation, info = data.load(cfg, "text_classification")
    assert (info.train_examples, info.eval_examples, info.class_names) == (12, 6, ["0", "1"])
    assert next(iter(evaluation))[0].numpy() == b"sentence 0"

    with pytest.raises(data.DataError, match=r"tsv: directory not found: ram://"):
        data.check_local(f"tsv:{ram('missing')}")


def test_run_files_are_stored_relative_to_a_url_run():
    root = "gs://bucket/runs/textcls"
    assert files.stored_path(f"{root}/assets/vocab.txt", root) == "assets/vocab.txt"
    assert files.stored_path("gs://other/vocab.txt", root) == "gs://other/vocab.txt"
    assert files.resolved_path("assets/vocab.txt", root) == f"{root}/assets/vocab.txt"


def test_an_unreachable_url_is_one_line_naming_it():
    from zoo.train import failure_message
    error = tf.errors.FailedPreconditionError(
        None, None, "Error executing an HTTP request: libcurl code 6\n\t when reading "
        "metadata of gs://bucket/run/config.yaml")
    message = failure_message(error, "gs://bucket/run")
    assert "\n" not in message and "gs://bucket/run/config.yaml" in message
    assert failure_message(tf.errors.FailedPreconditionError(None, None, "local"), "run") is None


def _upload(local, url: str):
    for path in local.iterdir():
        _write(f"{url}/{path.name}", path.read_bytes())


@pytest.mark.parametrize("layout", ["huggingface", "google"])
def test_a_bert_checkpoint_at_a_url_loads(tmp_path, layout):
    from zoo.models.bert.encoder import checkpoint_variables
    from test_bert import assert_same_encoder, tiny_encoder, write_google, write_huggingface
    from test_bert_checkpoints import hf_tensors
    source = tiny_encoder(5)
    if layout == "google":
        write_google(tmp_path, {"bert/" + k: v.numpy()
                                for k, v in checkpoint_variables(source).items()})
    else:
        write_huggingface(tmp_path, hf_tensors(source))
    url = ram("bert")
    _upload(tmp_path, url)
    assert_same_encoder(url, source)
