"""The phone's tokenizer: textcls's token ids in Keras equal the ids MediaPipe Tasks' own
BertTokenizer computes (read back through `export.mediapipe_tasks.token_ids`), on a corpus of
hard strings and on SST-2's dev sentences; bert's checkpoint tokenizer differs from it only
where docs/mediapipe.md says."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import SHARED, litert_token_ids, shared_path
from export import mediapipe_tasks
from zoo.models import wordpiece
from zoo.models.bert.tokenizer import BertTokenizer
from zoo.models.textcls.layers import Tokenize

HARD_STRINGS = Path(__file__).with_name("data") / "hard_strings.txt"
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "movie", "was", "great", "café", "cafe",
              "naïve", "straße", "中", "!", ",", ".", "'", "-", "s", "##s", "##ing", "un",
              "##believ", "##ably", "a", "##a", "é", "##é", "😀", "σ", "##ί"]
LENGTH = 32


def hard_strings() -> list[str]:
    """The corpus: one Python string literal a line (accents, CJK, emoji, long words, control
    characters, odd white space, empty input, ...)."""
    lines = HARD_STRINGS.read_text(encoding="utf-8").splitlines()
    return [ast.literal_eval(line) for line in lines if line and not line.startswith("#")]


def keras_ids(tokenizer, texts) -> np.ndarray:
    return tokenizer(tf.constant([t.encode("utf-8") for t in texts]))["input_word_ids"].numpy()


def differing(texts, ours: np.ndarray, phone: np.ndarray) -> list[str]:
    return [repr(t) for t, a, b in zip(texts, ours, phone) if (a != b).any()]


@pytest.fixture(scope="module")
def vocabularies(tmp_path_factory) -> dict[str, Path]:
    """A tiny WordPiece vocabulary, and MiniLM's 30,522 uncased WordPieces when ../shared is
    there."""
    tiny = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    wordpiece.write_vocabulary(tiny, TINY_VOCAB)
    found = {"tiny": tiny}
    minilm = SHARED / "models" / "all-MiniLM-L6-v2" / "vocab.txt"
    if minilm.is_file():
        found["minilm"] = minilm
    return found


@pytest.mark.parametrize("vocabulary", ["tiny", "minilm"])
def test_textcls_tokenizer_is_mediapipes_on_hard_strings(vocabularies, vocabulary):
    if vocabulary not in vocabularies:
        shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")  # skips, naming the path
    vocab = vocabularies[vocabulary]
    texts = hard_strings()
    tokenizer = Tokenize(wordpiece.read_vocabulary(vocab), LENGTH)
    ours = keras_ids(tokenizer, texts)
    phone = mediapipe_tasks.token_ids(vocab, texts, LENGTH)
    assert ours.shape == phone.shape == (len(texts), LENGTH)
    assert not differing(texts, ours, phone)
    assert (ours[:, 0] == wordpiece.read_vocabulary(vocab).index("[CLS]")).all()


def test_textcls_tokenizer_is_mediapipes_on_sst2_dev(vocabularies):
    dev = shared_path("data", "sst2", "dev.tsv")
    vocab = vocabularies.get("minilm") or shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")
    texts = [line.split("\t")[0] for line in dev.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(texts) == 872
    ours = keras_ids(Tokenize(wordpiece.read_vocabulary(vocab), 64), texts)
    phone = mediapipe_tasks.token_ids(vocab, texts, 64)
    assert not differing(texts, ours, phone)


@pytest.mark.parametrize("vocabulary", ["tiny", "minilm"])
def test_textcls_litert_tokenizer_is_mediapipes_on_hard_strings_but_nul(vocabularies,
                                                                        vocabulary):
    # before: tensorflow-text's normalizer and splitting, 44 of 73 with MiniLM's vocabulary
    if vocabulary not in vocabularies:
        shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")  # skips, naming the path
    vocab = vocabularies[vocabulary]
    texts = hard_strings()
    tokenizer = Tokenize(wordpiece.read_vocabulary(vocab), LENGTH).for_litert()
    ours = litert_token_ids(tokenizer, texts)
    phone = mediapipe_tasks.token_ids(vocab, texts, LENGTH)
    # the phone's text ends at a NUL ("nul"; with the tiny vocabulary both [UNK])
    assert differing(texts, ours, phone) in ([], [repr("nul\x00char")])


def test_textcls_litert_tokenizer_splits_every_character_as_the_phone():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"]
    codepoints = [cp for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF]
    texts = tf.constant([f"a{chr(cp)}b".encode("utf-8") for cp in codepoints])
    phone = wordpiece.device_tokenize(wordpiece.device_wordpiece(vocab), texts)
    litert = wordpiece.device_litert_tokenizer(vocab).tokenize(texts)
    # a word character: [UNK]; a delimiter: a b, or a [UNK] b when the phone keeps it
    wrong = (phone.to_tensor(-1, shape=[None, 3]) != litert.to_tensor(-1, shape=[None, 3]))
    assert not [f"U+{codepoints[i]:04X}" for i in np.flatnonzero(tf.reduce_any(wrong, 1))]


def test_bert_tokenizer_differs_from_mediapipes_only_off_ascii(vocabularies):
    """bert keeps its checkpoint's tokenizer (BERT's: Unicode lower-casing, accents stripped,
    control characters removed); MediaPipe lower-cases ASCII only and keeps the rest. On
    printable ASCII they agree."""
    vocab = vocabularies.get("minilm", vocabularies["tiny"])
    texts = hard_strings()
    bert = BertTokenizer(wordpiece.read_vocabulary(vocab), lower_case=True, max_length=LENGTH)
    ours = keras_ids(bert, texts)
    phone = mediapipe_tasks.token_ids(vocab, texts, LENGTH)
    printable = [t.isascii() and all(c.isprintable() or c in " \t\n\r" for c in t)
                 for t in texts]
    same = [(a == b).all() for a, b in zip(ours, phone)]
    print(f"bert's tokenizer and MediaPipe's agree on {sum(same)} of {len(texts)} hard strings "
          f"({sum(s for s, p in zip(same, printable) if p)} of {sum(printable)} printable ASCII)")
    assert all(s for s, p in zip(same, printable) if p)
    assert not all(same)  # accents, non-ASCII capitals: the differences the docs list
