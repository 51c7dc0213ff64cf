"""textcls: tokenizer edge cases, padding, training, reload, strategies, export to TF Serving and
LiteRT on raw strings, and (when ../shared is there) real SST-2 accuracy."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import check_in_mediapipe, shared_path, train_mirrored_on_two_cpus
from zoo import registry
from zoo.config import ConfigError, load_config
from zoo.parts import split_preprocessing
from zoo.models import wordpiece
from zoo.models.textcls.layers import hash_ngrams
from zoo.models.textcls import RESERVED, TextClsConfig, build, build_core
from zoo.train import run

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "!", ",", ".", "?", "the", "movie", "was", "great",
         "bad", "cafe", "café", "a", "##s", "film", "not"]
CLS, SEP = 2, 3
TINY = ["data.dataset=synthetic", "data.synthetic_examples=768", "train.epochs=3",
        "train.batch_size=32", "model.vocab_size=300", "model.embedding_dim=16",
        "model.ngrams=2", "model.ngram_buckets=1000", "model.max_length=32",
        "train.learning_rate=0.01", "train.lr_schedule=constant",
        "train.batch_scaling_examples=0"]
# Two classes, chance 0.5. TINY reached 0.885, 0.943 and 0.964 at seeds 42, 1 and 2 (with the
# phone's tokenizer); the bar sits 0.035 under the worst.
LEARNED = 0.85
# The default on the held-out train[59349:] (8,000 sentences, in no 2k/8k/15k slice of the study
# in docs/defaults.md, which chose the defaults) reached 0.7844, 0.7936 and 0.7959 at seeds 42,
# 1 and 2; the study's 8k slices 0.7729-0.7901. The bar sits 0.0244 under the held-out worst.
HELD_OUT_8K = 0.76


@pytest.fixture(scope="module")
def tokenizer_model(tmp_path_factory):
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    wordpiece.write_vocabulary(vocab, VOCAB)
    return build(TextClsConfig(vocab_file=str(vocab), max_length=8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model_dir, metrics) of a tiny textcls trained on the synthetic text task."""
    model_dir = tmp_path_factory.mktemp("textcls")
    return model_dir, run(load_config("textcls", overrides=TINY), model_dir)


def ids_of(model, texts) -> np.ndarray:
    return split_preprocessing(model).preprocessor(tf.constant(texts))["input_word_ids"].numpy()


def test_tokenizer_edge_cases(tokenizer_model):
    """The phone's tokenization (MediaPipe Tasks' BertTokenizer; test_mediapipe compares it
    with MediaPipe itself): [CLS] ... [SEP], ASCII lower-casing only, accents kept."""
    v = VOCAB.index
    ids = ids_of(tokenizer_model, [
        "", "!?!", "The MOVIE was great.", "Café ñandú 中文", "the movie " * 5000, "films",
        "CAFÉ cafe"])
    assert ids.shape == (7, 8) and ids.dtype == np.int32
    assert list(ids[0]) == [CLS, SEP] + [0] * 6                 # empty: [CLS] [SEP], padding
    assert list(ids[1]) == [CLS, v("!"), v("?"), v("!"), SEP, 0, 0, 0]  # punctuation splits
    assert list(ids[2][:7]) == [CLS, v("the"), v("movie"), v("was"), v("great"), v("."), SEP]
    assert list(ids[3][:6]) == [CLS, v("café"), 1, 1, 1, SEP]   # accents kept; CJK split
    assert list(ids[4]) == [CLS] + [v("the"), v("movie")] * 3 + [SEP]  # truncated, [SEP] kept
    assert list(ids[5][:4]) == [CLS, v("film"), v("##s"), SEP]  # WordPiece
    assert list(ids[6][:4]) == [CLS, 1, v("cafe"), SEP]         # only ASCII is lower-cased
    tokenize = split_preprocessing(tokenizer_model).preprocessor
    masks = tokenize(tf.constant(["", "films"]))["input_mask"]
    assert masks.numpy().tolist() == [[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]]


def cores(lengths=(6, 16), **fields):
    """Predict functions of cores with the same weights for token ids of different lengths."""
    configs = [TextClsConfig(max_length=n, dropout=0.0, **fields) for n in lengths]
    built = [build_core(cfg, vocab_size=40) for cfg in configs]
    for core in built[1:]:
        core.set_weights(built[0].get_weights())

    def predict(core, cfg):
        def call(ids):
            feed = {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32),
                    "input_type_ids": np.zeros_like(ids)}
            if cfg.ngrams > 1:
                feed["ngram_ids"] = hash_ngrams(tf.constant(ids), cfg.ngrams, 40,
                                                cfg.ngram_buckets)
            return core(feed, training=False).numpy()
        return call
    return [predict(core, cfg) for core, cfg in zip(built, configs)]


@pytest.mark.parametrize("pooling", ["padded_mean", "sqrt"])
def test_padding_never_changes_a_prediction(pooling):
    core, = cores(lengths=(6,), ngram_buckets=50, ngrams=2, pooling=pooling, dense_units=8)
    ids = np.array([[5, 9, 3, 0, 0, 0]], np.int32)
    alone = core(ids)
    batch = np.array([[5, 9, 3, 0, 0, 0], [7, 7, 7, 7, 7, 7]], np.int32)
    np.testing.assert_allclose(core(batch)[:1], alone, atol=1e-6)
    empty = core(np.zeros((2, 6), np.int32))  # no division by zero
    assert np.isfinite(empty).all()
    np.testing.assert_allclose(empty.sum(axis=1), 1.0, atol=1e-6)


def test_padded_mean_is_the_mean_over_every_position_padding_included():
    from zoo.models.textcls.layers import MaskedPooling
    embeddings = tf.random.normal([2, 5, 3])
    ids = tf.constant([[4, 2, 0, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_allclose(MaskedPooling("padded_mean", 10)(embeddings, ids),
                               embeddings.numpy().mean(axis=1), atol=1e-6)
    longer = MaskedPooling("padded_mean", 10)(tf.pad(embeddings, [[0, 0], [0, 5], [0, 0]]),
                                              tf.pad(ids, [[0, 0], [0, 5]]))
    np.testing.assert_allclose(longer, embeddings.numpy().sum(axis=1) / 10, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "sum", "sqrt"])
def test_every_masked_pooling_ignores_padding_of_any_length(pooling):
    core, longer_core = cores(lengths=(4, 8), pooling=pooling, ngrams=2, ngram_buckets=50)
    ids = np.array([[4, 8, 0, 0]], np.int32)
    np.testing.assert_allclose(longer_core(np.pad(ids, [(0, 0), (0, 4)])), core(ids),
                               atol=1e-6)


def test_ngram_hash_spreads_the_ngrams_over_the_buckets_whatever_the_sizes():
    # The bigrams (a, 7) for a = 1..1000 with 10,000 words and 100,000 buckets: a hash taken
    # modulo the buckets alone puts them in 10 buckets (only a mod 10 survives).
    ids = tf.constant([[a, 7, 0] for a in range(1, 1001)], tf.int32)
    grams = hash_ngrams(ids, 2, 10_000, 100_000).numpy()
    assert grams.shape == (1000, 2) and not grams[:, 1].any()  # (7, [PAD]) is no bigram
    assert len(set(grams[:, 0])) > 980 and 1 <= grams[:, 0].min() <= grams[:, 0].max() <= 100_000
    trigrams = hash_ngrams(tf.constant([[3, 4, 5], [3, 4, 6]]), 3, 10_000, 100_000).numpy()
    assert trigrams[0, 2] != trigrams[1, 2] and (trigrams[:, :2] > 0).all()


def test_word_vocabulary_keeps_the_most_frequent_words_and_unknowns_whole_words(tmp_path):
    texts = tf.data.Dataset.from_tensor_slices(
        ["The movie was great.", "the MOVIE was bad", "a film, the end", "Café café"])
    vocab = wordpiece.learn_word_vocabulary(texts, 9, RESERVED)
    assert vocab == RESERVED + ["the", "café", "movie", "was", ","]  # ties: sorted
    assert wordpiece.learn_word_vocabulary(texts, 20, RESERVED, min_count=2) == [
        *RESERVED, "the", "café", "movie", "was"]  # seen once: left to [UNK]; split as phones
    path = tmp_path / "vocab.txt"
    wordpiece.write_vocabulary(path, vocab)
    model = build(TextClsConfig(vocab_file=str(path), max_length=7, ngrams=1))
    assert list(ids_of(model, ["The movies was, greatest"])[0]) == [CLS, 4, 1, 7, 8, 1, SEP]
    assert wordpiece.learn_word_vocabulary(texts.take(0), 6, RESERVED) == RESERVED


def test_textcls_learns_and_writes_its_vocabulary(trained):
    model_dir, metrics = trained
    assert metrics["accuracy"] > LEARNED
    vocab = (model_dir / "assets" / "vocab.txt").read_text().splitlines()
    assert vocab[:4] == RESERVED and 20 < len(vocab) <= 300
    config = (model_dir / "config.yaml").read_text()
    assert "vocab_file: assets/vocab.txt" in config  # relative to model_dir: it can move


def test_rebuilt_and_keras_file_models_predict_the_same(trained, tmp_path):
    from export import source as export_source

    model_dir, _ = trained
    src = export_source.load(model_dir)
    texts = ["w1 class1kw3 w7", "", "class0kw1 w2 w3 w4", "non-ASCII: ñ 中"]
    probs = src.model(tf.constant(texts), training=False).numpy()
    assert np.isfinite(probs).all()
    rebuilt = export_source.load(model_dir).model(tf.constant(texts), training=False).numpy()
    np.testing.assert_array_equal(rebuilt, probs)
    src.model.save(tmp_path / "textcls.keras")
    reloaded = keras.models.load_model(tmp_path / "textcls.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(tf.constant(texts), training=False).numpy(), probs,
                               atol=1e-6)


def test_textcls_exports_to_serving_and_litert_on_raw_strings(trained, tmp_path):
    from export import pipeline, serving, source as export_source, tflite
    from export.pipeline import Options
    from export.source import ExportError

    model_dir, _ = trained
    src = export_source.load(model_dir)
    out = tmp_path / "export"
    # int16x8 can't quantize the app file's in-graph n-gram hashing nor the token mean's
    # division: refused in one line.
    with pytest.raises(ExportError, match="the int16x8 token-input TFLite file of textcls "
                                          "does not convert: "):
        pipeline.run(src, out, Options(["tflite"], ["int16x8"], eval_examples=8))
    assert not (out / "artifacts").exists()
    manifest = pipeline.run(src, out, Options(["saved_model", "tflite", "xla", "edgetpu_audit"],
                                              ["float32", "dynamic", "float16", "int8"],
                                              eval_examples=64, max_accuracy_drop=0.05),
                            log=print)
    entries = {e["name"]: e for e in manifest["artifacts"]}
    for exact in ("saved_model", "xla", "tflite/textcls_float32",
                  "tflite/textcls_tokens_float32"):
        assert entries[exact]["max_abs_diff"] <= 1e-5, exact
    assert entries["tflite/textcls_tokens_float32"]["runtime"] == "mediapipe_tasks"
    assert entries["tflite/textcls_float32"]["runtime"] == "litert"
    tflite_dir = out / "artifacts" / "textcls" / "1" / "tflite"
    types = {np.dtype(t["dtype"]).name for t in tflite.interpreter(
        tflite_dir / "textcls_tokens_int8.tflite").get_tensor_details()}
    assert "int8" in types
    assert (tflite_dir / "vocab.txt").read_text().splitlines()[:4] == RESERVED
    texts, _ = pipeline.take_arrays(src.eval_ds, 16)
    keras_probs = src.model(texts, training=False).numpy()
    runner = tflite.Runner(out / entries["tflite/textcls_float32"]["path"], custom_ops=True)
    np.testing.assert_allclose(runner({"text": texts}), keras_probs, atol=1e-5)
    saved = out / "serving" / "textcls" / "1"
    answer = tf.saved_model.load(str(saved)).signatures["serving_default"](
        text=tf.constant(texts))
    np.testing.assert_allclose(answer["probabilities"].numpy(), keras_probs, atol=1e-5)
    logs = serving.read_warmup(saved / "assets.extra" / serving.WARMUP_FILE)
    assert logs and list(logs[0].predict_log.request.inputs) == ["text"]


ODD_REQUESTS = """
import json, sys
import tensorflow as tf, tensorflow_text  # registers the tokenizer's ops
signatures = tf.saved_model.load(sys.argv[1]).signatures
INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
big = "class1kw3 " + "w1 " * 350_000  # 1 MB
requests = {
    "empty": ("serving_default", {"text": tf.constant([], tf.string)}),
    "1 MB string": ("serving_default", {"text": tf.constant([big, ""])}),
    "int32": ("serving_default", {"text": tf.constant([1, 2])}),
    "scalar": ("serving_default", {"text": tf.constant("w1 w2")}),  # crashed the process
    "matrix": ("serving_default", {"text": tf.constant([["w1", "w2"]])}),
    "short ids": ("serving_tensor", {**{name: tf.zeros([1, 5], tf.int32) for name in INPUTS},
                                     "ngram_ids": tf.zeros([1, 31], tf.int32)}),
    "no ids": ("serving_tensor", {**{name: tf.zeros([0, 32], tf.int32) for name in INPUTS},
                                  "ngram_ids": tf.zeros([0, 31], tf.int32)}),
}
for name, (signature, feed) in requests.items():
    try:
        answer = {"probabilities": signatures[signature](**feed)["probabilities"].numpy().tolist()}
    except tf.errors.InvalidArgumentError as e:
        answer = {"error": next(l for l in e.message.splitlines() if l.strip()
                                and not l.startswith(("Graph execution", "Detected at", "<")))}
    print(json.dumps({name: answer}), flush=True)
"""


def test_textcls_saved_model_answers_or_refuses_odd_requests(trained, tmp_path):
    """Empty batch, a 1 MB string, the wrong dtype, the wrong rank: an answer or a clear
    error, never a crash (run in a child process, so a crash fails only this test)."""
    import json
    import subprocess
    import sys
    from conftest import REPO, cli_env
    from export import pipeline, source as export_source
    from export.pipeline import Options

    model_dir, _ = trained
    src = export_source.load(model_dir)
    pipeline.run(src, tmp_path, Options(["saved_model"], [], max_accuracy_drop=1.0,
                                        eval_examples=16))
    child = subprocess.run([sys.executable, "-c", ODD_REQUESTS,
                            str(tmp_path / "serving" / "textcls" / "1")],
                           capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    answers = {k: v for line in child.stdout.splitlines() for k, v in json.loads(line).items()}
    assert answers["empty"] == {"probabilities": []} and answers["no ids"] == answers["empty"]
    big = "class1kw3 " + "w1 " * 350_000
    np.testing.assert_allclose(answers["1 MB string"]["probabilities"],
                               src.model(tf.constant([big, ""]), training=False), atol=1e-5)
    assert answers["int32"]["error"].startswith(
        "cannot compute __inference_signature_wrapper_serve_default")
    assert "expected to be a string tensor but is a int32 tensor" in answers["int32"]["error"]
    for name, shapes in (("scalar", "text [] is not compatible with expected shape [?]"),
                         ("matrix", "text [1,2] is not compatible with expected shape [?]"),
                         ("short ids", "input_word_ids [1,5] is not compatible with expected shape "
                                       "[?,32]")):
        assert answers[name] == {"error": f"Shape of tensor {shapes}."}, name


def test_textcls_under_mirrored_on_two_logical_cpus(tmp_path):
    assert train_mirrored_on_two_cpus("textcls", tmp_path, TINY)["accuracy"] > LEARNED


def test_bad_vocabulary_files_are_one_line_errors(tmp_path):
    missing = TextClsConfig(vocab_file=str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigError, match="vocabulary file not found: .*nope.txt"):
        build(missing)
    shifted = tmp_path / "vocab.txt"
    shifted.write_text("[UNK]\n[PAD]\nthe\n")
    with pytest.raises(ConfigError, match=r"the first token is '\[UNK\]'"):
        build(TextClsConfig(vocab_file=str(shifted)))
    assert "textcls" in registry.names()


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    """(model_dir, metrics) of the default textcls trained on all of SST-2's training split."""
    sst2 = shared_path("data", "sst2")
    model_dir = tmp_path_factory.mktemp("textcls_sst2")
    return model_dir, run(load_config("textcls", overrides=[f"data.dataset=tsv:{sst2}"]),
                          model_dir)


@pytest.mark.slow
def test_textcls_on_real_sst2(sst2_run):
    _, metrics = sst2_run
    print(f"textcls on SST-2: dev accuracy {metrics['accuracy']:.4f} after "
          f"{metrics['epochs']} epochs, {metrics['wall_time_s']:.1f} s, "
          f"{metrics['examples_per_sec']:.0f} examples/s")
    assert metrics["train_examples"] == 67349 and metrics["eval_examples"] == 872
    # seeds 42, 1, 2 gave 0.8291, 0.8257, 0.8234 (the classic recipe 0.8154, 0.8303, 0.8222;
    # docs/defaults.md); the bar sits 0.0134 under the worst
    assert metrics["accuracy"] >= 0.81


@pytest.mark.slow
def test_default_textcls_learns_from_a_held_out_8000_sentence_slice(tmp_path):
    """The default on 8,000 SST-2 sentences that no 2k or 8k slice of the defaults' study
    (`python -m tools.study`, docs/defaults.md) contains: the last 8,000 rows of train.tsv."""
    sst2 = shared_path("data", "sst2")
    metrics = run(load_config("textcls", overrides=[
        f"data.dataset=tsv:{sst2}", "data.train_split=train[59349:]"]), tmp_path)
    print(f"textcls default on train[59349:]: dev accuracy {metrics['accuracy']:.4f}, "
          f"{metrics['wall_time_s']:.1f} s")
    assert metrics["train_examples"] == 8000 and metrics["eval_examples"] == 872
    assert metrics["accuracy"] >= HELD_OUT_8K


@pytest.mark.slow
def test_textcls_on_sst2_runs_in_mediapipe(sst2_run, tmp_path):
    """The float32 and int8 app files, gated in MediaPipe Tasks' TextClassifier, then run there
    on all 872 dev sentences; the ids MediaPipe computes are the ones Keras trained on."""
    from export import mediapipe_tasks, pipeline, source as export_source
    from export.pipeline import Options

    model_dir, _ = sst2_run
    src = export_source.load(model_dir)
    manifest = pipeline.run(src, tmp_path, Options(["tflite"], ["float32", "int8"],
                                                   eval_examples=872), log=print)
    entries = {e["name"]: e for e in manifest["artifacts"]}
    texts, truth = pipeline.take_arrays(src.eval_ds, 872)
    keras_probs = src.model(texts, training=False).numpy()
    for quantization, exact in (("float32", True), ("int8", False)):
        entry = entries[f"tflite/textcls_tokens_{quantization}"]
        assert entry["runtime"] == "mediapipe_tasks"
        check_in_mediapipe(tmp_path / entry["path"], texts, keras_probs, src.labels, truth,
                           exact)
    vocab = model_dir / "assets" / "vocab.txt"
    phone = mediapipe_tasks.token_ids(vocab, list(texts), 128)
    np.testing.assert_array_equal(ids_of(src.model, texts), phone)
