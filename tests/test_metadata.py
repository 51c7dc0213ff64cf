"""TFLite Metadata for MediaPipe Tasks (export.metadata) and the MediaPipe runners
(export.mediapipe_tasks), on tiny converted models: labels, normalization, quantized scores,
BERT's inputs and tokenizer, and what MediaPipe's BertTokenizer does to text.

Measured with mediapipe 1.2.3 (asserted below):
- only ASCII letters are lower-cased ("CAFÉ" stays "cafÉ"); accents are kept ("café" is not
  "cafe"); no Unicode normalization (full-width "ａ" is not "a").
- words split on ASCII white space only: a no-break or ideographic space is part of a word.
- ASCII and Unicode punctuation and each CJK character are tokens of their own.
- a text ends at its first NUL character (the C API takes a NUL-terminated string).
- too long texts lose their last tokens; [SEP] stays at position max_length - 1.
- with every category asked for, negative scores (logits) come back too.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from export import mediapipe_tasks, metadata

# the int8 conversion's uint8 input takes calibrated parameters, which the tests don't need
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")

LABELS = ["cat", "dog", "bird"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "play", "##ing", ",", "!",
         "café", "cafe", "中", "a", "##b", "b"]
ID = {token: i for i, token in enumerate(VOCAB)}
LENGTH = 8


def litert(flatbuffer: bytes, **inputs) -> np.ndarray:
    """The model's first output, run in LiteRT on `inputs` (one example each), each fed to the
    input whose tensor name contains its keyword."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        (x,) = [x for key, x in inputs.items() if key in detail["name"]]
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def convert(function, calibration=None, trackable=None) -> bytes:
    """A tf.function as a .tflite flatbuffer; `calibration` (float pixels) makes it an int8
    file with uint8 input and output. A `trackable` holding variables makes the converter
    write a signature and name the input tensors serving_default_<name>:0, as it does for
    Keras models."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], trackable or function)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.uint8
    return converter.convert()


# -- images --------------------------------------------------------------------------------

WEIGHTS = np.random.default_rng(0).normal(size=[8 * 8 * 3, 3]).astype(np.float32) * 0.003
IMAGES = np.random.default_rng(1).integers(0, 256, size=[5, 8, 8, 3], dtype=np.uint8)
# kind: (input dtype, mean, std, softmax, int8-quantized)
IMAGE_KINDS = {"float32": (tf.float32, 127.5, 127.5, True, False),
               "uint8": (tf.uint8, 0.0, 1.0, True, False),
               "logits": (tf.float32, 0.0, 1.0, False, False),
               "int8": (tf.float32, 0.0, 1.0, True, True)}


def image_function(dtype, softmax: bool, channels: int = 3):
    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, channels], dtype, name="image")])
    def classify(image):
        scores = tf.reshape(tf.cast(image, tf.float32), [1, -1]) @ WEIGHTS[:64 * channels]
        return {"probabilities": tf.nn.softmax(scores) if softmax else scores - 1.0}
    return classify


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """{kind: (.tflite with metadata, its path, the file without, the tf.function)}."""
    directory = tmp_path_factory.mktemp("images")
    out = {}
    for kind, (dtype, mean, std, softmax, int8) in IMAGE_KINDS.items():
        function = image_function(dtype, softmax)
        plain = convert(function, IMAGES.astype(np.float32) if int8 else None)
        with_metadata = metadata.image_classifier(plain, LABELS, f"tiny {kind}", mean=mean,
                                                  std=std)
        path = directory / f"{kind}.tflite"
        path.write_bytes(with_metadata)
        out[kind] = with_metadata, path, plain, function
    return out


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_image_classifier_gives_litert_and_tf_probabilities(image_files, kind):
    flatbuffer, path, plain, function = image_files[kind]
    dtype, mean, std, _, int8 = IMAGE_KINDS[kind]
    with mediapipe_tasks.ImageClassifierRunner(path) as classifier:
        assert classifier.categories == LABELS
        got = classifier(IMAGES)
    assert got.dtype == np.float32 and got.shape == (len(IMAGES), len(LABELS))
    # MediaPipe feeds a float input (pixels - mean) / std, a uint8 input the raw pixels
    feed = [((x[None] - mean) / std).astype(np.float32) if dtype == tf.float32 and not int8
            else x[None] for x in IMAGES]
    raw = np.concatenate([litert(flatbuffer, image=x) for x in feed])
    if int8:  # a uint8 output: MediaPipe dequantizes it with the tensor's parameters
        from ai_edge_litert.interpreter import Interpreter
        scale, zero_point = Interpreter(model_content=flatbuffer).get_output_details()[0][
            "quantization"]
        assert raw.dtype == np.uint8 and scale > 0
        raw = (raw.astype(np.float32) - zero_point) * scale
    np.testing.assert_allclose(got, raw, atol=1e-5, rtol=0)
    if not int8:
        reference = np.concatenate([function(tf.constant(x))["probabilities"] for x in feed])
        np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)
    if kind == "logits":  # every category comes back, negative scores too
        assert (got < 0).any()
    # the file with metadata runs in LiteRT as the file without
    np.testing.assert_array_equal(litert(flatbuffer, image=feed[0]), litert(plain, image=feed[0]))


def test_image_metadata_reads_back(image_files):
    read = metadata.read(image_files["float32"][0])
    assert read["name"] == "tiny float32" and read["min_parser_version"] == "1.0.0"
    (image,) = read["inputs"]
    assert image["content"] == "ImageProperties" and image["color_space"] == "RGB"
    assert image["process_units"] == [{"type": "NormalizationOptions", "mean": [127.5],
                                       "std": [127.5]}]
    (scores,) = read["outputs"]
    assert scores["associated_files"] == [{"name": "labels.txt", "type": "TENSOR_AXIS_LABELS"}]
    assert read["files"] == {"labels.txt": b"cat\ndog\nbird\n"}
    assert read["input_process_units"] == []


def test_image_metadata_written_again_replaces_the_old(image_files, tmp_path):
    again = metadata.image_classifier(image_files["uint8"][0], ["x", "y", "z"], "renamed")
    root = metadata.model_fb.Model.GetRootAs(again, 0)
    names = [root.Metadata(i).Name() for i in range(root.MetadataLength())]
    assert names.count(b"TFLITE_METADATA") == 1
    assert metadata.read(again)["files"] == {"labels.txt": b"x\ny\nz\n"}
    path = tmp_path / "again.tflite"
    path.write_bytes(again)
    with mediapipe_tasks.ImageClassifierRunner(path) as classifier:
        assert classifier.categories == ["x", "y", "z"]


def test_image_metadata_refuses_what_mediapipe_would_misread(image_files):
    plain = image_files["uint8"][2]
    with pytest.raises(ValueError, match=r"2 labels for output .*\[1, 3\]; expected \[1, 2\]"):
        metadata.image_classifier(plain, LABELS[:2], "tiny")
    with pytest.raises(ValueError, match="single lines"):
        metadata.image_classifier(plain, ["cat", "dog\nbird", "fish"], "tiny")
    grey = convert(image_function(tf.uint8, True, channels=1))
    with pytest.raises(ValueError, match=r"one RGB input \[1,H,W,3\]; this model takes "
                                         r"image uint8\[1, 8, 8, 1\]"):
        metadata.image_classifier(grey, LABELS, "tiny")


def test_image_runner_refuses_other_than_uint8_rgb(image_files):
    with mediapipe_tasks.ImageClassifierRunner(image_files["uint8"][1]) as classifier:
        with pytest.raises(ValueError, match=r"uint8 RGB images \[N,H,W,3\]; got float32"):
            classifier(IMAGES.astype(np.float32))


# -- BERT-kind text ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def bert_function():
    """(a tiny BERT-kind classifier: masked mean of per-token embeddings, softmax; the module
    holding it and its embedding variable)."""
    module = tf.Module()
    module.table = tf.Variable(np.random.default_rng(2).normal(size=[len(VOCAB), 3]),
                               dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, LENGTH], tf.int32, name=n)
                                  for n in metadata.BERT_INPUTS])
    def classify(input_word_ids, input_mask, input_type_ids):
        mask = tf.cast(input_mask, tf.float32)[..., None]
        segment = tf.cast(input_type_ids, tf.float32)[..., None]
        tokens = tf.gather(module.table, input_word_ids) * mask + segment
        return {"probabilities": tf.nn.softmax(tf.reduce_sum(tokens, 1) / tf.reduce_sum(mask, 1))}

    module.classify = classify
    return classify, module


@pytest.fixture(scope="module")
def bert_file(tmp_path_factory, vocab):
    """(.tflite with metadata, its path), converted as Keras models are: with a signature,
    its input tensors serving_default_<name>:0 and not in the signature's order."""
    function, module = bert_function()
    flatbuffer = metadata.bert_text_classifier(convert(function, trackable=module), LABELS,
                                               vocab, "tiny bert", "three classes")
    path = tmp_path_factory.mktemp("bert") / "bert.tflite"
    path.write_bytes(flatbuffer)
    return flatbuffer, path


def test_bert_metadata_reads_back(bert_file, vocab):
    read = metadata.read(bert_file[0])
    assert (read["name"], read["description"]) == ("tiny bert", "three classes")
    assert read["min_parser_version"] == "1.1.0" and read["subgraphs"] == 1
    tensors = [t["tensor"] for t in read["inputs"]]
    assert tensors != [f"serving_default_{n}:0" for n in metadata.BERT_INPUTS]
    assert [t["name"] for t in read["inputs"]] == [
        metadata.BERT_INPUTS[t.removeprefix("serving_default_").removesuffix(":0")]
        for t in tensors]
    assert read["input_process_units"] == [{"type": "BertTokenizerOptions", "vocab_file": [
        {"name": "vocab.txt", "type": "VOCABULARY"}]}]
    assert read["outputs"][0]["associated_files"][0]["name"] == "labels.txt"
    assert read["files"] == {"labels.txt": b"cat\ndog\nbird\n", "vocab.txt": vocab.read_bytes()}


def test_text_classifier_gives_litert_probabilities(bert_file, vocab):
    flatbuffer, path = bert_file
    texts = ["Hello, world!", "playing", b"caf\xc3\xa9 hello", "", "xyz xyz xyz"]
    with mediapipe_tasks.TextClassifierRunner(path) as classifier:
        assert classifier.categories == LABELS
        got = classifier(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), len(LABELS))
    ids = mediapipe_tasks.token_ids(vocab, texts, LENGTH)
    assert ids[2, 1] == ID["café"]  # bytes are read as UTF-8
    reference = np.concatenate([
        litert(flatbuffer, input_word_ids=row[None], input_mask=(row[None] != 0).astype(np.int32),
               input_type_ids=np.zeros([1, LENGTH], np.int32)) for row in ids])
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)
    assert np.ptp(got, axis=0).min() > 1e-3  # the texts give different probabilities


def tokens(*names) -> list[int]:
    """[CLS] names [SEP] padded with 0 to LENGTH."""
    ids = [ID["[CLS]"], *(ID[n] for n in names), ID["[SEP]"]]
    return ids + [0] * (LENGTH - len(ids))


@pytest.mark.parametrize("text, expected", [
    ("hello world", tokens("hello", "world")),
    ("", tokens()),
    ("HeLLo PLAYING", tokens("hello", "play", "##ing")),             # ASCII lower-cased
    ("hello,world!", tokens("hello", ",", "world", "!")),            # punctuation split off
    ("hello xyz", tokens("hello", "[UNK]")),                         # unknown word
    ("ab abb b", tokens("a", "##b", "a", "##b", "##b", "b")),        # WordPiece pieces
    ("hello " * 20, tokens(*["hello"] * (LENGTH - 2))),              # cut, [SEP] kept
    ("café cafe CAFÉ", tokens("café", "cafe", "[UNK]")),             # é not lower-cased
    ("中中", tokens("中", "中")),                                      # one token a CJK char
    ("hello\u00a0world a\tb", tokens("[UNK]", "a", "b")),            # NBSP joins words
    ("hello\u3001world", tokens("hello", "[UNK]", "world")),         # Unicode punctuation
    ("ａ", tokens("[UNK]")),                                          # no NFKC
    ("hello\0world", tokens("hello")),                               # NUL ends the text
    (b"caf\xc3\xa9", tokens("café")),                                # bytes as UTF-8
])
def test_token_ids_are_mediapipes_bert_tokenization(vocab, text, expected):
    ids = mediapipe_tasks.token_ids(vocab, [text], LENGTH)
    assert ids.dtype == np.int32 and ids.shape == (1, LENGTH)
    assert ids[0].tolist() == expected


def test_token_ids_are_exact_for_a_bert_sized_vocabulary(tmp_path):
    words = [f"w{i}" for i in range(30522 - len(VOCAB))]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB + words) + "\n", encoding="utf-8")
    ids = mediapipe_tasks.token_ids(path, [f"{words[-1]} {words[-2]} hello"], 6)
    assert ids[0].tolist() == [ID["[CLS]"], 30521, 30520, ID["hello"], ID["[SEP]"], 0]


def test_bert_metadata_refuses_what_mediapipe_would_misread(tmp_path, vocab, bert_file):
    model = bert_file[0]

    @tf.function(input_signature=[tf.TensorSpec([1, LENGTH], tf.int32, name=n)
                                  for n in ("input_ids", "input_mask", "input_type_ids")])
    def renamed(ids, mask, type_ids):
        return {"probabilities": tf.nn.softmax(tf.cast(ids + mask + type_ids, tf.float32)[:, :3])}

    with pytest.raises(ValueError, match="takes input_word_ids, input_mask, input_type_ids; "
                                         r"this model takes input_ids int32\[1, 8\]"):
        metadata.bert_text_classifier(convert(renamed), LABELS, vocab, "x")
    no_unk = tmp_path / "no_unk.txt"
    no_unk.write_text("\n".join(t for t in VOCAB if t != "[UNK]") + "\n")
    with pytest.raises(ValueError, match=r"lacks \[UNK\]"):
        metadata.bert_text_classifier(model, LABELS, no_unk, "x")
    gap = tmp_path / "gap.txt"
    gap.write_text("\n".join(VOCAB[:5] + [""] + VOCAB[5:]) + "\n")
    with pytest.raises(ValueError, match=r"line\(s\) \[6\] empty"):
        metadata.bert_text_classifier(model, LABELS, gap, "x")
    with pytest.raises(ValueError, match=r"4 labels for output"):
        metadata.bert_text_classifier(model, LABELS + ["fish"], vocab, "x")
