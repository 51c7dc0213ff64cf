"""WordPiece tokenizers and their vocabularies.

Two tokenizers, each in TensorFlow's string ops and in the ops LiteRT runs, all in the graph:
- `bert_wordpiece` + `bert_tokenize`: exactly BERT's own tokenizer (its `tokenization.py`:
  control characters deleted, Unicode white space splitting, CJK ideographs and punctuation
  split off, optional lower-casing with Python's `str.lower`, NFD and accents stripped, a word
  over 100 characters [UNK]), from per-character tables made with Python's `unicodedata`, in
  TensorFlow's own string ops. bert follows its checkpoint with it.
- `bert_tokenizer` + `litert_tokenize`: BERT's tokenizer as LiteRT runs it (custom ops of
  tensorflow-text's op registrar): tensorflow-text's `FastBertTokenizer` normalizing with the
  same per-character tables (`bert_normalizer_model`, in place of its own NFKC case folding),
  a word over 100 characters [UNK] in TFLite builtins. It gives BERT's ids but for final
  sigma (`Σ` always becomes `σ` uncased).
- `device_wordpiece` + `device_tokenize`: what MediaPipe Tasks' BertTokenizer computes on a
  phone: ASCII letters lower-cased and nothing else, the text cut at runs of ASCII white space
  and around every ASCII symbol, Unicode punctuation mark and CJK ideograph (those stay as
  tokens), then WordPiece (`##` suffixes, a word over 100 bytes or not covered by the
  vocabulary is one [UNK]). textcls trains on it, so that a phone's token ids are the ones
  the model learned.
- `device_litert_tokenizer`: the phone's tokenizer as LiteRT runs it, a `FastBertTokenizer`
  normalizing as the phone does (`device_normalizer_model`). It gives the phone's ids but
  after a NUL.

Vocabularies are WordPiece vocabularies learned from a training split with tensorflow-text's
learner, or whole-word vocabularies (the most frequent words of the split); saved as
`vocab.txt` (one token a line, the line number is the id), and read back.
"""
from __future__ import annotations

import functools
from pathlib import Path

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
MAX_BYTES_PER_WORD = 100  # longer words are [UNK] on the phone (and in textcls)
MAX_CHARS_PER_WORD = 100  # longer words are [UNK] in BERT's own tokenizer

# The splitting of MediaPipe Tasks' BertTokenizer (RE2 syntax, which tensorflow-text's
# regex_split uses too): ASCII symbols, Unicode punctuation and the CJK ideograph blocks are
# tokens of their own; white space separates and is dropped. BERT's own splits the same.
_ASCII_SYMBOLS = ("21-2F", "3A-40", "5B-60", "7B-7E")
_CJK_BLOCKS = ("4E00-9FFF", "3400-4DBF", "20000-2A6DF", "2A700-2B73F", "2B740-2B81F",
               "2B820-2CEAF", "F900-FAFF", "2F800-2FA1F")


def _character_class(block: str) -> str:
    """The RE2 class of the codepoint block "FIRST-LAST" (hex)."""
    return r"[\x{%s}-\x{%s}]" % tuple(block.split("-"))


KEPT_DELIMITERS = "|".join([*map(_character_class, _ASCII_SYMBOLS), r"[\p{P}]",
                            *map(_character_class, _CJK_BLOCKS)])
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
    write_atomic(path, "".join(f"{token}\n" for token in tokens))


def read_vocabulary(path: str | Path) -> list[str]:
    """The tokens of a `vocab.txt`; a missing or empty file is a ConfigError naming it."""
    from zoo import files
    from zoo.errors import ConfigError

    if not files.isfile(path):
        raise ConfigError(f"vocabulary file not found: {path}")
    tokens = files.read_text(path).splitlines()
    if not tokens:
        raise ConfigError(f"vocabulary file {path} is empty; expected one token per line")
    return tokens


def bert_tokenizer(vocabulary: list[str], lower_case: bool):
    """tensorflow-text's FastBertTokenizer over `vocabulary` (int32 ids, unknown words as
    [UNK]) normalizing as BERT does (`bert_normalizer_model`) and taking words of up to 100
    four-byte characters: BERT's tokenizer in the ops LiteRT runs, `litert_tokenize` applies
    it."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf_text.FastBertTokenizer(
        vocabulary, token_out_type=tf.int32, unknown_token=UNK,
        max_bytes_per_word=4 * MAX_CHARS_PER_WORD, support_detokenization=False,
        fast_bert_normalizer_model_buffer=bert_normalizer_model(lower_case))


def device_litert_tokenizer(vocabulary: list[str]):
    """tensorflow-text's FastBertTokenizer over `vocabulary` normalizing as the phone does
    (`device_normalizer_model`), a word over 100 bytes [UNK]: the device splitting in the ops
    LiteRT runs. Its `tokenize` gives the phone's ids but for a NUL (the phone's text ends
    there) and for characters the phone keeps in a word that are in the vocabulary and that
    tensorflow-text splits at (`_SPLIT_ONLY_IN_LITERT`)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    normalizer = device_normalizer_model(frozenset("".join(vocabulary)))
    return tf_text.FastBertTokenizer(
        vocabulary, token_out_type=tf.int32, unknown_token=UNK,
        max_bytes_per_word=MAX_BYTES_PER_WORD, support_detokenization=False,
        fast_bert_normalizer_model_buffer=normalizer)


def litert_tokenize(tokenizer, vocabulary: list[str], texts):
    """Strings [batch] -> int32 ids [batch, (tokens)] as BERT's own tokenizer makes them but
    for final sigma (always `σ`), given `bert_tokenizer(vocabulary, lower_case)`: a word over
    100 characters (counted from its pieces) becomes one [UNK], in TFLite builtins."""
    import tensorflow as tf

    pieces = tokenizer.tokenize(texts)
    ids = pieces.flat_values
    suffix = tf.gather(tf.constant([t.startswith("##") for t in vocabulary]), ids)
    lengths = tf.constant([len(t.removeprefix("##")) for t in vocabulary], tf.int32)
    word = tf.cumsum(tf.cast(tf.logical_not(suffix), tf.int32)) - 1  # a word starts unsuffixed
    too_long = tf.gather(tf.math.segment_sum(tf.gather(lengths, ids), word)
                         > MAX_CHARS_PER_WORD, word)
    kept = tf.logical_not(too_long & suffix)  # its first piece stays, as [UNK]
    ids = tf.boolean_mask(tf.where(too_long, vocabulary.index(UNK), ids), kept)
    ends = tf.concat([[0], tf.cumsum(tf.cast(kept, pieces.row_splits.dtype))], 0)
    return tf.RaggedTensor.from_row_splits(ids, tf.gather(ends, pieces.row_splits),
                                           validate=False)


def _ranges(codepoints) -> tuple[list[int], list[int]]:
    """(first, last) codepoints of the runs of the sorted `codepoints`."""
    firsts, lasts = [], []
    for cp in codepoints:
        if lasts and lasts[-1] == cp - 1:
            lasts[-1] = cp
        else:
            firsts.append(cp)
            lasts.append(cp)
    return firsts, lasts


@functools.cache
def bert_character_tables(lower_case: bool) -> dict:
    """What BERT's basic tokenizer does to each character, from Python's `unicodedata` and
    `str.lower` (which BERT's own tokenizer uses): `deleted` (NUL, U+FFFD, category C but tab,
    newline and carriage return) as codepoint ranges; `keys` -> `values`, the text each other
    changed character becomes (white space a space, punctuation spaced; uncased: lower-cased,
    NFD with the Mn marks dropped); the `cjk` ideographs, spaced; and, uncased, the ranges of
    characters that are `ignorable` and `cased` in Python's final-sigma rule."""
    import unicodedata

    def blocks(names):
        return [tuple(int(end, 16) for end in block.split("-")) for block in names]

    def spaced(char):
        punctuation = (any(first <= ord(char) <= last for first, last in symbols)
                       or unicodedata.category(char).startswith("P"))
        return f" {char} " if punctuation else char

    symbols, ideographs = blocks(_ASCII_SYMBOLS), blocks(_CJK_BLOCKS)
    deleted, keys, values, ignorable, cased, cjk = [], [], [], [], [], []
    for cp in range(0x110000):
        char = chr(cp)
        category = unicodedata.category(char)
        if cp in (0, 0xFFFD) or (category.startswith("C") and char not in "\t\n\r"):
            deleted.append(cp)
            ignorable.append(cp)  # gone before lower-casing: final sigma looks through it
            continue
        if char in " \t\n\r" or category == "Zs" or char.isspace():
            text = " "
        else:
            text = char
            if lower_case:
                text = "".join(c for c in unicodedata.normalize("NFD", char.lower())
                               if unicodedata.category(c) != "Mn")
            if any(first <= cp <= last for first, last in ideographs):
                cjk.append(cp)
            else:
                text = "".join(spaced(c) for c in text)
            if lower_case and (f"A{char}\u03a3".lower()[-1] == "\u03c2"
                               and (char + "\u03a3").lower()[-1] == "\u03c3"):
                ignorable.append(cp)
            elif lower_case and (char + "\u03a3").lower()[-1] == "\u03c2":
                cased.append(cp)
        if text != char:
            keys.append(cp)
            values.append(text)
    return {"deleted": _ranges(deleted), "keys": keys, "values": values,
            "ignorable": _ranges(ignorable), "cased": _ranges(cased), "cjk": _ranges(cjk)}


# FastBertNormalize's data for a character (tensorflow-text's fast_bert_normalizer.h): this
# bit when it changes, then its text's offset in the string pool and (6 bits) its UTF-8 length.
_CHANGED = 1 << 30
_LENGTH_BITS = 6
_SEARCHED_UNITS = 4096  # how far back from the end of the trie a new node's base is sought


def _double_array(values: dict[bytes, int]) -> list[int]:
    """The darts-clone double-array trie (the format FastBertNormalize reads) mapping each
    byte-string key (none a prefix of another) to its value (< 2**31); equal subtrees are
    stored once."""
    trie = {}
    for key, value in values.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # label 0: the leaf holding the value
    nodes, index = [], {}  # distinct subtrees: ((label, child index or leaf value), ...)

    def intern(node):
        children = tuple((label, child if label == 0 else intern(child))
                         for label, child in sorted(node.items()))
        if children not in index:
            index[children] = len(nodes)
            nodes.append(children)
        return index[children]

    root = intern(trie)
    order, seen = [root], {root}  # parents before children
    for n in order:
        for label, child in nodes[n]:
            if label and child not in seen:
                seen.add(child)
                order.append(child)
    used, bases, base = bytearray(1 << 16), set(), {}
    used[0] = 1  # the root's unit
    free, top = 1, 1  # the first free unit; one past the last used one
    for n in order:
        labels = [label for label, _ in nodes[n]]
        free = used.find(0, free)
        first, rest = labels[0], labels[1:]
        # a base near the end: the first free unit for the first label where the others fit
        slot = used.find(0, max(free, top - _SEARCHED_UNITS), top)
        while slot != -1 and ((slot ^ first) in bases
                              or any(used[slot ^ first ^ label] for label in rest)):
            slot = used.find(0, slot + 1, top)
        b = slot ^ first if slot != -1 else (top + 0xFF) & ~0xFF  # or a fresh block of 256
        if len(used) <= (b | 0xFF):
            used.extend(bytearray(len(used)))
        base[n] = b
        bases.add(b)
        for label in labels:
            used[b ^ label] = 1
        top = max(top, max(b ^ label for label in labels) + 1)
    units = [0] * (max(b | 0xFF for b in bases) + 1)  # every label of every base in range
    if len(units) > 1 << 21:
        raise ValueError(f"a trie of {len(units)} units is too large for darts-clone offsets")
    units[0] = base[root] << 10
    for n in order:
        for label, child in nodes[n]:
            if label == 0:
                units[base[n]] = child | 1 << 31
            else:
                unit = base[n] ^ label
                has_leaf = nodes[child][0][0] == 0
                units[unit] = label | has_leaf << 8 | (unit ^ base[child]) << 10
    return units


@functools.cache
def bert_normalizer_model(lower_case: bool) -> bytes:
    """BERT's per-character cleaning (`bert_character_tables`: characters deleted, white
    space a space, punctuation spaced, uncased: lower-cased, NFD and Mn marks dropped) as a
    FastBertNormalize model, in place of tensorflow-text's own (NFKC case folding, control
    characters as spaces)."""
    tables = bert_character_tables(lower_case)
    texts = dict(zip(tables["keys"], tables["values"]))
    for first, last in zip(*tables["deleted"]):
        texts.update((cp, "") for cp in range(first, last + 1) if not 0xD800 <= cp <= 0xDFFF)
    return _normalizer_model(texts, lower_case)


# Characters tensorflow-text's FastBertTokenizer splits at and the phone keeps inside a word:
# white space outside RE2's \s (\v, U+0085, no-break, em, ideographic space, ...) and code
# points newer Unicode data than Python's calls punctuation. Measured over every code point
# (tests/test_mediapipe.py checks them all).
_SPLIT_ONLY_IN_LITERT = (
    0x0B, 0x85, 0xA0, 0x1680, 0x1B4E, 0x1B4F, 0x1B7F, *range(0x2000, 0x200B), 0x2028, 0x2029,
    0x202F, 0x205F, 0x3000, 0x10D6E, 0x113D4, 0x113D5, 0x113D7, 0x113D8, 0x11BE1, 0x16D6D,
    0x16D6E, 0x16D6F, 0x1E5FF)
# word characters to stand in for them, by UTF-8 length: controls and private use
_STAND_INS = {1: range(0x01, 0x09), 2: range(0x80, 0x85), 3: range(0xE000, 0xE100),
              4: range(0xF0000, 0xF0100)}


@functools.cache
def device_normalizer_model(vocabulary_characters: frozenset[str]) -> bytes:
    """The phone's normalization (MediaPipe Tasks' BertTokenizer: ASCII letters lower-cased,
    every other character kept) as a FastBertNormalize model, for a vocabulary made of
    `vocabulary_characters`. A character FastBertTokenizer would split at but the phone keeps
    in a word becomes a stand-in of its UTF-8 length found in no token: either way the word
    is one [UNK], as long, as on the phone. (One found in a token stays, and splits.)"""
    texts = {cp: chr(cp).lower() for cp in range(ord("A"), ord("Z") + 1)}
    for cp in _SPLIT_ONLY_IN_LITERT:
        size = len(chr(cp).encode("utf-8"))
        stand_in = next((c for c in _STAND_INS[size] if chr(c) not in vocabulary_characters),
                        None)
        if chr(cp) not in vocabulary_characters and stand_in is not None:
            texts[cp] = chr(stand_in)
    return _normalizer_model(texts, lower_case=True)


def _normalizer_model(texts: dict[int, str], lower_case: bool) -> bytes:
    """A FastBertNormalize model (tensorflow-text's fast_bert_normalizer_model.fbs) turning
    each codepoint of `texts` into its text (maybe empty) and keeping every other one."""
    import flatbuffers

    pool, offsets, data = bytearray(), {}, {}
    for cp, text in texts.items():
        encoded = text.encode("utf-8")
        if len(encoded) >= 1 << _LENGTH_BITS:
            raise ValueError(f"U+{cp:04X} becomes {len(encoded)} bytes, over FastBertNormalize's "
                             f"{(1 << _LENGTH_BITS) - 1}")
        offset = offsets.setdefault(encoded, len(pool))
        if offset == len(pool):
            pool += encoded
        data[cp] = _CHANGED | offset << _LENGTH_BITS | len(encoded) if encoded else _CHANGED
    units = _double_array({chr(cp).encode("utf-8"): d for cp, d in data.items() if cp})
    builder = flatbuffers.Builder(4 * len(units) + len(pool) + 64)
    pool_vector = builder.CreateByteVector(bytes(pool))
    builder.StartVector(4, len(units), 4)
    for unit in reversed(units):
        builder.PrependUint32(unit)
    trie_vector = builder.EndVector()
    builder.StartObject(4)  # the table's fields in the schema's order
    builder.PrependBoolSlot(0, lower_case, False)
    builder.PrependUOffsetTRelativeSlot(1, trie_vector, 0)
    builder.PrependInt32Slot(2, data.get(0, 0), 0)  # NUL: kept out of the trie
    builder.PrependUOffsetTRelativeSlot(3, pool_vector, 0)
    builder.Finish(builder.EndObject())
    return bytes(builder.Output())


def _in_ranges(codepoints, ranges):
    """bool: whether each of the int32 `codepoints` lies in one of `ranges` (firsts, lasts)."""
    import tensorflow as tf

    firsts, lasts = (tf.constant(r, tf.int32) for r in ranges)
    at = tf.searchsorted(firsts, codepoints, side="right") - 1
    return (at >= 0) & (codepoints <= tf.gather(lasts, tf.maximum(at, 0)))


def _final_sigmas(codepoints, row_splits, tables):
    """bool: which of the flat `codepoints` (rows at `row_splits`) are capital sigmas that
    Python's str.lower makes final: a cased character before them and none after, looking
    through case-ignorable ones, within the row."""
    import tensorflow as tf

    stops = tf.logical_not(_in_ranges(codepoints, tables["ignorable"]))
    cased = tf.boolean_mask(_in_ranges(codepoints, tables["cased"]), stops)
    through = tf.cumsum(tf.cast(stops, tf.int32))          # stops up to here, this one included
    before = through - tf.cast(stops, tf.int32)             # ... before this one
    row = tf.ragged.row_splits_to_segment_ids(row_splits, out_type=tf.int32)
    padded = tf.concat([[0], through], 0)
    row_first = tf.gather(padded, tf.gather(row_splits, row))      # stops before the row
    row_last = tf.gather(padded, tf.gather(row_splits, row + 1))   # ... up to its end
    at = lambda i: tf.gather(tf.concat([cased, [False]], 0), i)
    cased_before = (before > row_first) & at(tf.maximum(before - 1, 0))
    cased_after = (through < row_last) & at(through)
    return tf.equal(codepoints, 0x3A3) & cased_before & tf.logical_not(cased_after)


def bert_wordpiece(vocabulary: list[str]):
    """The WordPiece step of BERT's tokenizer over `vocabulary`: words [batch, (words)] ->
    int32 ids [batch, (words), (pieces)] (`bert_tokenize` runs the whole tokenizer); a word
    of 100 characters fits in its byte limit."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf_text.FastWordpieceTokenizer(
        vocabulary, suffix_indicator="##", max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
        token_out_type=tf.int32, unknown_token=UNK, no_pretokenization=True,
        support_detokenization=False)


def bert_tokenize(wordpiece, texts, lower_case: bool):
    """Strings [batch] -> int32 ids [batch, (tokens)] exactly as BERT's own tokenizer makes
    them (`bert_character_tables`, then WordPiece with a word over 100 characters [UNK]),
    given `bert_wordpiece(vocabulary)`."""
    import tensorflow as tf

    tables = bert_character_tables(lower_case)
    codepoints = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
    flat = codepoints.flat_values
    chars = tf.strings.unicode_encode(flat[:, tf.newaxis], "UTF-8")
    keys = tf.constant(tables["keys"], tf.int32)
    at = tf.minimum(tf.searchsorted(keys, flat), len(tables["keys"]) - 1)
    chars = tf.where(tf.equal(tf.gather(keys, at), flat),
                     tf.gather(tf.constant(tables["values"]), at), chars)
    if lower_case:
        chars = tf.where(_final_sigmas(flat, codepoints.row_splits, tables), "\u03c2", chars)
    chars = tf.where(_in_ranges(flat, tables["cjk"]), tf.strings.join([" ", chars, " "]), chars)
    chars = tf.where(_in_ranges(flat, tables["deleted"]), "", chars)
    text = tf.strings.reduce_join(codepoints.with_flat_values(chars), axis=-1)
    words = tf.strings.split(text)
    too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
    over_byte_limit = "\x00" * (4 * MAX_CHARS_PER_WORD + 1)  # WordPiece makes it [UNK]
    words = words.with_flat_values(tf.where(too_long, over_byte_limit, words.flat_values))
    return wordpiece.tokenize(words).merge_dims(-2, -1)


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
