"""Runs .tflite files as apps run them: in MediaPipe Tasks' ImageClassifier and TextClassifier,
which take labels, image normalization and the BERT tokenizer from the file's metadata
(`export.metadata`); gives class probabilities in label order, float32 [N, classes].

Measured with mediapipe 1.2.3's Python API:
- `score_threshold=None` reaches the C API as 0.0, and 0.0 keeps negative scores (logits) as
  no threshold would; 0.5 drops the scores under it. The runners pass -inf, which no score
  (nor a threshold in a file's metadata) can get under.
- uint8 outputs come back dequantized with the tensor's scale and zero point.
- texts go to the C API as NUL-terminated UTF-8: a text ends at its first "\\0".
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from export import metadata
from zoo.files import read_bytes


def _options(path) -> dict:
    """The classifier options every runner uses: every category, whatever its score."""
    from mediapipe.tasks.python import BaseOptions

    return {"base_options": BaseOptions(model_asset_path=str(path)),
            "max_results": -1, "score_threshold": float("-inf")}


class _Runner:
    """One open MediaPipe task (subclasses say how to `_classify` an example); `categories`
    are the label names it reports, in index order."""

    def __init__(self, task, blank):
        self._task = task
        self.categories = [c.category_name for c in self._ordered(self._classify(blank))]

    @staticmethod
    def _ordered(result) -> list:
        """The categories of the only classification head, by index; all of them or an error."""
        (head,) = result.classifications
        categories = sorted(head.categories, key=lambda c: c.index)
        if [c.index for c in categories] != list(range(len(categories))):
            raise RuntimeError(f"MediaPipe returned categories {[c.index for c in categories]}; "
                               "expected every index from 0")
        return categories

    def _scores(self, examples) -> np.ndarray:
        rows = [[c.score for c in self._ordered(self._classify(x))] for x in examples]
        return np.asarray(rows, np.float32).reshape(len(rows), len(self.categories))

    def close(self):
        """Closes the MediaPipe task (its graph and interpreter)."""
        self._task.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ImageClassifierRunner(_Runner):
    """A .tflite image classifier in MediaPipe's ImageClassifier; call it on uint8 RGB images
    [N,H,W,3] (MediaPipe resizes any other H and W to the model's)."""

    def __init__(self, path: Path):
        from mediapipe.tasks.python import vision

        options = vision.ImageClassifierOptions(**_options(path))
        super().__init__(vision.ImageClassifier.create_from_options(options),
                         np.zeros([1, 1, 3], np.uint8))

    def _classify(self, image):
        import mediapipe as mp

        return self._task.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                            data=np.ascontiguousarray(image)))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB images [N,H,W,3]; got {images.dtype} "
                             f"{list(images.shape)}")
        return self._scores(images)


class TextClassifierRunner(_Runner):
    """A .tflite text classifier in MediaPipe's TextClassifier; call it on texts (str, or
    bytes decoded as UTF-8)."""

    def __init__(self, path: Path):
        from mediapipe.tasks.python import text

        options = text.TextClassifierOptions(**_options(path))
        super().__init__(text.TextClassifier.create_from_options(options), "")

    def _classify(self, text):
        return self._task.classify(text)

    def __call__(self, texts: Sequence[str | bytes]) -> np.ndarray:
        texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t)
                 for t in np.asarray(texts, dtype=object).ravel()]
        return self._scores(texts)


def _probe_flatbuffer(vocab: Path, max_length: int) -> bytes:
    """A BERT-kind classifier whose scores are its token ids: input_word_ids cast to float32
    [1, max_length] (exact up to 2**24), labelled "0".."max_length-1"; the mask and type ids
    are inputs it ignores."""
    import tensorflow as tf

    specs = [tf.TensorSpec([1, max_length], tf.int32, name=n) for n in metadata.BERT_INPUTS]

    @tf.function(input_signature=specs)
    def ids(input_word_ids, input_mask, input_type_ids):
        return {"ids": tf.cast(input_word_ids, tf.float32)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([ids.get_concrete_function()],
                                                                ids)
    labels = [str(i) for i in range(max_length)]
    return metadata.bert_text_classifier(converter.convert(), labels, vocab,
                                         "token id probe")


@functools.lru_cache(maxsize=4)
def _probe(vocab: bytes, max_length: int) -> TextClassifierRunner:
    """The open probe classifier of a vocabulary (its contents) and length."""
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = Path(tmp, metadata.VOCAB_FILE)
        vocab_path.write_bytes(vocab)
        model_path = Path(tmp, "probe.tflite")
        model_path.write_bytes(_probe_flatbuffer(vocab_path, max_length))
        return TextClassifierRunner(model_path)


def token_ids(vocab: Path, texts: Sequence[str | bytes], max_length: int) -> np.ndarray:
    """The ids MediaPipe's BertTokenizer gives `texts` for a model of `max_length` tokens:
    int32 [N, max_length], [CLS] tokens [SEP] then 0, read back from TextClassifier running a
    probe model (cached per vocabulary and length)."""
    size = len(metadata.vocabulary(vocab))
    scores = _probe(read_bytes(vocab), max_length)(texts)
    ids = scores.astype(np.int32)
    if not np.array_equal(ids, scores) or ids.min(initial=0) < 0 or ids.max(initial=0) >= size:
        raise RuntimeError(f"the probe's scores are not token ids of a {size}-token "
                           f"vocabulary: {scores[:2]}")
    return ids
