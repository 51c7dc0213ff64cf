"""BERT's tokenizer as its definition states it, in plain Python: the reference the in-graph
tokenizer's ids are compared with (tests/test_bert_tokenizer_exact.py).

Clean the text (delete NUL, U+FFFD and every category-C character but tab, newline and
carriage return; white space, i.e. those three, space and category Zs, becomes a space), put
spaces around CJK ideographs, split on white space; uncased: lower-case each word with Python's
str.lower (final sigma included), NFD and drop the Mn marks; split off every punctuation
character (ASCII 33-47, 58-64, 91-96, 123-126 and category P*); then WordPiece, greedy longest
match first with `##` continuations, a word over 100 characters or not covered being [UNK].
"""
from __future__ import annotations

import unicodedata

MAX_CHARS_PER_WORD = 100
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_whitespace(char: str) -> bool:
    """Tab, newline, carriage return, space or category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """Category C*, tab, newline and carriage return excepted (they are white space)."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def is_punctuation(char: str) -> bool:
    """ASCII symbols (33-47, 58-64, 91-96, 123-126) or category P*."""
    cp = ord(char)
    return (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
            or unicodedata.category(char).startswith("P"))


def is_cjk(char: str) -> bool:
    """A CJK ideograph of the blocks BERT puts spaces around."""
    return any(lo <= ord(char) <= hi for lo, hi in CJK_RANGES)


def basic_tokens(text: str, lower_case: bool = True) -> list[str]:
    """The words BERT's basic tokenizer makes of `text` (before WordPiece)."""
    cleaned = []
    for char in text:
        if ord(char) in (0, 0xFFFD) or is_control(char):
            continue
        cleaned.append(" " if is_whitespace(char) else f" {char} " if is_cjk(char) else char)
    words = []
    for word in "".join(cleaned).strip().split():
        if lower_case:
            word = word.lower()
            word = "".join(c for c in unicodedata.normalize("NFD", word)
                           if unicodedata.category(c) != "Mn")
        current = []
        for char in word:
            if is_punctuation(char):
                words += ["".join(current)] if current else []
                words.append(char)
                current = []
            else:
                current.append(char)
        words += ["".join(current)] if current else []
    return words


def wordpiece(word: str, vocabulary: set[str], unk: str = "[UNK]") -> list[str]:
    """WordPiece pieces of one word: greedy longest match first, `##` continuations."""
    if len(word) > MAX_CHARS_PER_WORD:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocabulary:
                break
            end -= 1
        if end == start:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


def token_ids(text: str, vocabulary: list[str], lower_case: bool = True) -> list[int]:
    """BERT's ids of `text` (no [CLS] or [SEP])."""
    index = {token: i for i, token in enumerate(vocabulary)}
    known = set(index)
    return [index[piece] for word in basic_tokens(text, lower_case)
            for piece in wordpiece(word, known)]
