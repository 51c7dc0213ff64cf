"""WordPiece tokenizers and their vocabularies.

Two ways to split a text into words before WordPiece, both in the graph:
- `bert_tokenizer`: BERT's own (tensorflow-text's `FastBertTokenizer`: optional lower-casing
  with accent stripping, control characters removed). bert follows its checkpoint with it, and
  it converts to TFLite as custom ops that LiteRT runs with tensorflow-text's op registrar.
- `device_wordpiece` + `device_tokenize`: what MediaPipe Tasks' BertTokenizer computes on a
  phone: ASCII letters
  lower-cased and nothing else, the text cut at runs of ASCII white space and around every
  ASCII symbol, Unicode punctuation mark and CJK ideograph (those stay as tokens), then
  WordPiece (`##` suffixes, a word over 100 bytes or not covered by the vocabulary is one
  [UNK]). textcls trains on it, so that a phone's token ids are the ones the model learned.

Vocabularies are WordPiece vocabularies learned from a training split with tensorflow-text's
learner, or whole-word vocabularies (the most frequent words of the split); saved as
`vocab.txt` (one token a line, the line number is the id), and read back.
"""
from __future__ import annotations

from pathlib import Path

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
MAX_BYTES_PER_WORD = 100  # longer words are [UNK], on the phone and here

# The splitting of MediaPipe Tasks' BertTokenizer (RE2 syntax, which tensorflow-text's
# regex_split uses too): ASCII symbols, Unicode punctuation and the CJK ideograph blocks are
# tokens of their own; white space separates and is dropped.
_CJK_BLOCKS = ("4E00-9FFF", "3400-4DBF", "20000-2A6DF", "2A700-2B73F", "2B740-2B81F",
               "2B820-2CEAF", "F900-FAFF", "2F800-2FA1F")
KEPT_DELIMITERS = "|".join([r"[!-/]", r"[:-@]", r"[\[-`]", r"[{-~]", r"[\p{P}]", *(
    r"[\x{%s}-\x{%s}]" % tuple(block.split("-")) for block in _CJK_BLOCKS)])
DELIMITERS = r"\s+|" + KEPT_DELIMITERS


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


def split_words(texts):
    """Strings [batch] -> their words [batch, (words)] as the phone splits them (see the
    module docstring). A text ends at its first NUL character, as MediaPipe Tasks' C API
    takes texts."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    texts = tf.strings.regex_replace(texts, r"(?s)\x00.*", "")
    return tf_text.regex_split(tf.strings.lower(texts), DELIMITERS, KEPT_DELIMITERS)


def device_word_counts(texts) -> dict[str, int]:
    """How often each word occurs in `texts` (a dataset of strings), split as on the phone."""
    import collections

    counts = collections.Counter()
    words_of_batches = in_batches(texts).map(lambda t: split_words(t).flat_values).prefetch(2)
    for words in words_of_batches.as_numpy_iterator():
        counts.update(w.decode("utf-8", errors="replace") for w in words)
    return counts


def learn_word_vocabulary(texts, vocab_size: int, reserved_tokens: list[str],
                          min_count: int = 1) -> list[str]:
    """The `vocab_size` - len(reserved_tokens) most frequent words of `texts`, split as on the
    phone, that occur at least `min_count` times, `reserved_tokens` first. No `##` pieces: with
    this vocabulary every other word is one [UNK]."""
    counts = device_word_counts(texts)
    for token in reserved_tokens:
        counts.pop(token, None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # ties: stable order
    kept = [w for w, count in ranked[:vocab_size - len(reserved_tokens)] if count >= min_count]
    return list(reserved_tokens) + kept


def learn_device_vocabulary(texts, vocab_size: int, reserved_tokens: list[str]) -> list[str]:
    """A WordPiece vocabulary of at most `vocab_size` tokens learned from the words of `texts`
    split as on the phone, `reserved_tokens` first."""
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    counts = device_word_counts(texts)
    return learner.learn(sorted(counts.items()), vocab_size, list(reserved_tokens))


def write_vocabulary(path: str | Path, tokens: list[str]):
    """Writes `tokens` one per line (through a temporary file and a rename)."""
    from zoo.files import write_atomic
    write_atomic(Path(path), "".join(f"{token}\n" for token in tokens))


def read_vocabulary(path: str | Path) -> list[str]:
    """The tokens of a `vocab.txt`; a missing or empty file is a ConfigError naming it."""
    from zoo.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"vocabulary file not found: {path}")
    tokens = path.read_text(encoding="utf-8").splitlines()
    if not tokens:
        raise ConfigError(f"vocabulary file {path} is empty; expected one token per line")
    return tokens


def bert_tokenizer(vocabulary: list[str], lower_case: bool):
    """A FastBertTokenizer (BERT's basic splitting, then WordPiece) returning int32 ids,
    unknown words as [UNK]; `lower_case` also strips accents, as BERT's uncased models do."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf_text.FastBertTokenizer(vocabulary, token_out_type=tf.int32, unknown_token=UNK,
                                     lower_case_nfd_strip_accents=lower_case,
                                     support_detokenization=False)


def device_wordpiece(vocabulary: list[str]):
    """The WordPiece step of the phone's tokenizer over `vocabulary`: words [batch, (words)]
    -> int32 ids [batch, (words), (pieces)] (`device_tokenize` runs the whole tokenizer)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf_text.FastWordpieceTokenizer(
        vocabulary, suffix_indicator="##", max_bytes_per_word=MAX_BYTES_PER_WORD,
        token_out_type=tf.int32, unknown_token=UNK, no_pretokenization=True,
        support_detokenization=False)


def device_tokenize(wordpiece, texts):
    """Strings [batch] -> int32 ids [batch, (tokens)] as MediaPipe Tasks' BertTokenizer
    computes them on the phone, given `device_wordpiece(vocabulary)`."""
    return wordpiece.tokenize(split_words(texts)).merge_dims(-2, -1)
