"""Vocabularies for tensorflow-text's BERT tokenizer: WordPiece vocabularies learned from a
training split with tensorflow-text's vocabulary tools, or whole-word vocabularies (the most
frequent words of the split); saved as `vocab.txt` (one token a line, the line number is the
id), and read back.

Text models tokenize in the graph with `tensorflow_text.FastBertTokenizer` over such a file;
it converts to TFLite as a custom op that LiteRT runs with tensorflow-text's op registrar.
"""
from __future__ import annotations

from pathlib import Path

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"


def in_batches(texts):
    """A dataset of strings in batches of 1024 (left as it is when already batched)."""
    return texts.batch(1024) if texts.element_spec.shape.rank == 0 else texts


def learn_vocabulary(texts, vocab_size: int, reserved_tokens: list[str],
                     lower_case: bool = True) -> list[str]:
    """A WordPiece vocabulary of at most `vocab_size` tokens (`reserved_tokens` first, in
    order) learned from `texts`, a tf.data.Dataset of strings (batched or not)."""
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

    return bert_vocab_from_dataset.bert_vocab_from_dataset(
        in_batches(texts).prefetch(2), vocab_size=vocab_size,
        reserved_tokens=list(reserved_tokens), bert_tokenizer_params={"lower_case": lower_case})


def learn_word_vocabulary(texts, vocab_size: int, reserved_tokens: list[str],
                          lower_case: bool = True, min_count: int = 1) -> list[str]:
    """The `vocab_size` - len(reserved_tokens) most frequent words of `texts` after BERT's
    splitting (lower-casing, accent stripping, punctuation as words) that occur at least
    `min_count` times, `reserved_tokens` first. No `##` pieces: with this vocabulary every
    other word is one [UNK]."""
    import collections

    from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

    split = BasicTokenizer(lower_case=lower_case).tokenize
    counts = collections.Counter()
    words_of_batches = in_batches(texts).map(lambda t: split(t).flat_values).prefetch(2)
    for words in words_of_batches.as_numpy_iterator():
        counts.update(w.decode("utf-8") for w in words)
    for token in reserved_tokens:
        counts.pop(token, None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # ties: stable order
    kept = [w for w, count in ranked[:vocab_size - len(reserved_tokens)] if count >= min_count]
    return list(reserved_tokens) + kept


def write_vocabulary(path: str | Path, tokens: list[str]):
    """Writes `tokens` one per line (through a temporary file and a rename)."""
    from zoo.files import write_atomic
    write_atomic(Path(path), "".join(f"{token}\n" for token in tokens))


def read_vocabulary(path: str | Path) -> list[str]:
    """The tokens of a `vocab.txt`; a missing or empty file is a ConfigError naming it."""
    from zoo.config import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"vocabulary file not found: {path}")
    tokens = path.read_text(encoding="utf-8").splitlines()
    if not tokens:
        raise ConfigError(f"vocabulary file {path} is empty; expected one token per line")
    return tokens


def tokenizer(vocabulary: list[str], lower_case: bool):
    """A FastBertTokenizer (BERT's basic splitting, then WordPiece) returning int32 ids,
    unknown words as [UNK]; `lower_case` also strips accents, as BERT's uncased models do."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf_text.FastBertTokenizer(vocabulary, token_out_type=tf.int32, unknown_token=UNK,
                                     lower_case_nfd_strip_accents=lower_case,
                                     support_detokenization=False)
