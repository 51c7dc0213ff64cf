"""BERT's input in the graph: strings -> [CLS] A [SEP] (B [SEP]) as ids, mask and type ids.

The text is split exactly as BERT's own tokenizer splits it (`splitting="bert"`), as MediaPipe
Tasks splits it on a phone (`"device"`), or as either in tensorflow-text's `FastBertTokenizer`
(`"litert"`, `"device_litert"`: what LiteRT runs), see `zoo.models.wordpiece`; WordPiece
follows. The rest is dense arithmetic on positions (no ragged trimming or concatenation ops),
so the LiteRT splittings compile to TFLite with the tokenizer as the only custom op, and every
output has the static shape [batch, max_length].
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from zoo.models import wordpiece
from zoo.models.bert.encoder import INPUTS


@keras.utils.register_keras_serializable("zoo.bert")
class BertTokenizer(keras.layers.Layer):
    """string[batch] (or string[batch, 2] sentence pairs) -> {input_word_ids, input_mask,
    input_type_ids}: int32[batch, max_length].

    Too long inputs are cut as Hugging Face's `longest_first` does: tokens come off the longer
    segment (the second on a tie) until [CLS] A [SEP] B [SEP] fits; [SEP] is always kept.

    `splitting` is "bert" (BERT's own, `lower_case` with accent stripping), "device" (MediaPipe
    Tasks' on a phone: ASCII letters always lower-cased, `lower_case` unused), or either in
    tensorflow-text's FastBertTokenizer, which LiteRT runs: "litert" (BERT's ids but for final
    sigma) and "device_litert" (the phone's, `lower_case` unused, see `for_litert`)."""

    SPLITTINGS = ("bert", "device", "litert", "device_litert")

    def __init__(self, vocabulary: list[str], lower_case: bool = True, max_length: int = 128,
                 splitting: str = "bert", **kwargs):
        super().__init__(**kwargs)
        self.vocabulary, self.lower_case, self.max_length = list(vocabulary), lower_case, max_length
        if splitting not in self.SPLITTINGS:
            raise ValueError(f"splitting={splitting!r}; expected one of {self.SPLITTINGS}")
        self.splitting = splitting
        missing = [t for t in (wordpiece.UNK, wordpiece.CLS, wordpiece.SEP)
                   if t not in self.vocabulary]
        if missing:
            from zoo.errors import ConfigError
            raise ConfigError(f"the vocabulary lacks {', '.join(missing)}")
        self.cls_id = self.vocabulary.index(wordpiece.CLS)
        self.sep_id = self.vocabulary.index(wordpiece.SEP)
        if splitting == "device":
            self.tokenizer = wordpiece.device_wordpiece(self.vocabulary)
        elif splitting == "bert":
            self.tokenizer = wordpiece.bert_wordpiece(self.vocabulary)
        elif splitting == "litert":
            self.tokenizer = wordpiece.bert_tokenizer(self.vocabulary, lower_case)
        else:
            self.tokenizer = wordpiece.device_litert_tokenizer(self.vocabulary)

    def _segment(self, text, budget: int):
        """(ids int32[batch, budget], lengths before truncation) of one text segment."""
        if self.splitting == "device":
            ragged = wordpiece.device_tokenize(self.tokenizer, text)
        elif self.splitting == "bert":
            ragged = wordpiece.bert_tokenize(self.tokenizer, text, self.lower_case)
        elif self.splitting == "litert":
            ragged = wordpiece.litert_tokenize(self.tokenizer, self.vocabulary, text)
        else:
            ragged = self.tokenizer.tokenize(text)
        return ragged.to_tensor(0, shape=[None, budget]), tf.cast(ragged.row_lengths(), tf.int32)

    def call(self, text):
        text = tf.convert_to_tensor(text, tf.string)
        pair = text.shape.rank == 2
        length = self.max_length
        budget = length - (3 if pair else 2)
        first, n_first = self._segment(text[:, 0] if pair else text, budget)
        if pair:
            second, n_second = self._segment(text[:, 1], budget)
            half = (budget + 1) // 2
            n_first = tf.minimum(n_first, tf.maximum(budget - n_second, half))
            n_second = tf.minimum(n_second, budget - n_first)
        else:
            second, n_second = first, tf.zeros_like(n_first)
        n_first = tf.minimum(n_first, budget)

        position = tf.range(length)[tf.newaxis] + tf.zeros_like(n_first)[:, tf.newaxis]
        a_end = n_first[:, tf.newaxis] + 1                       # position of the first [SEP]
        b_end = a_end + 1 + n_second[:, tf.newaxis]              # ... of the second
        take = lambda ids, offset: tf.gather(
            ids, tf.clip_by_value(position - offset, 0, budget - 1), batch_dims=1)
        in_a = (position >= 1) & (position < a_end)
        in_b = (position > a_end) & (position < b_end)
        is_sep = tf.equal(position, a_end)
        if pair:
            is_sep |= tf.equal(position, b_end)
        ids = tf.where(in_a, take(first, 1), 0) + tf.where(in_b, take(second, a_end + 1), 0)
        ids += tf.where(tf.equal(position, 0), self.cls_id, 0) + tf.where(is_sep, self.sep_id, 0)
        last = b_end if pair else a_end
        mask = tf.cast(position <= last, tf.int32)
        type_ids = tf.cast((position > a_end) & (position <= last), tf.int32)
        return dict(zip(INPUTS, (ids, mask, type_ids)))

    def complete(self, tokens: dict) -> dict:
        """BERT's three inputs -> everything the core takes (here: the same; textcls's
        tokenizer adds its hashed n-grams)."""
        return tokens

    def for_litert(self) -> "BertTokenizer":
        """This tokenizer as LiteRT runs it with tensorflow-text's TFLite ops (BERT's and the
        device splitting use string ops LiteRT lacks): "litert" for BERT's, which gives its
        ids but for final sigma, "device_litert" for the device one, which gives the phone's
        but where tensorflow-text splits differently (docs/mediapipe.md)."""
        if self.splitting in ("litert", "device_litert"):
            return self
        splitting = "device_litert" if self.splitting == "device" else "litert"
        return type(self).from_config({**self.get_config(), "splitting": splitting,
                                       "name": f"{self.name}_litert"})

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary,
                "lower_case": self.lower_case, "max_length": self.max_length,
                "splitting": self.splitting}
