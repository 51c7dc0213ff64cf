"""Keras layers of the text models: the in-graph tokenizer, token dropout, hashed n-grams,
masked pooling.

Registered as serializable ("zoo>Name"), so `.keras` files load in safe mode without Lambda
layers or pickled code.
"""
from __future__ import annotations

import tf_keras as keras

from zoo.models.bert.tokenizer import BertTokenizer


@keras.saving.register_keras_serializable("zoo")
class Tokenize(BertTokenizer):
    """Strings [batch] -> BERT's three inputs as the phone computes them: "input_word_ids"
    ([CLS] word pieces [SEP], 0-padded, cut to max_length), "input_mask", "input_type_ids"
    (int32 [batch, max_length]); plus "ngram_ids" when `ngrams` > 1: the hashed 2..n-grams of
    the ids (see `hash_ngrams`)."""

    def __init__(self, vocabulary: list[str], max_length: int, ngrams: int = 1,
                 ngram_buckets: int = 1, splitting: str = "device", **kwargs):
        super().__init__(vocabulary, max_length=max_length, splitting=splitting, **kwargs)
        self.ngrams, self.ngram_buckets = ngrams, ngram_buckets

    def call(self, text):
        return self.complete(super().call(text))

    def complete(self, tokens: dict) -> dict:
        """BERT's three inputs -> everything the core takes: the hashed n-grams added."""
        if self.ngrams == 1:
            return tokens
        return {**tokens, "ngram_ids": hash_ngrams(tokens["input_word_ids"], self.ngrams,
                                                   len(self.vocabulary), self.ngram_buckets)}

    def get_config(self):
        return {**super().get_config(), "ngrams": self.ngrams,
                "ngram_buckets": self.ngram_buckets}


NGRAM_PRIME = 2**31 - 1  # n-gram hashes are taken modulo this prime ...
NGRAM_SCRAMBLE = 1_540_483_477  # ... and multiplied by this constant modulo it


def hash_ngrams(ids, max_n: int, vocab_size: int, buckets: int):
    """Token ids [batch, length] -> the ids of their 2..`max_n`-grams, concatenated. For the
    n-gram starting at i, in int64: h = ids[i]; h = (h * vocab_size + ids[i + k]) mod P for
    k = 1..n-1, with P = 2**31 - 1; then h = (h * 1540483477 mod P) mod buckets. Its id is
    h + 1, or 0 where the n-gram touches padding. Apps that tokenize themselves compute the
    same.

    The multiplication modulo the prime scatters the n-grams over the buckets whatever
    `vocab_size` and `buckets` are: reducing `h * vocab_size + token` modulo `buckets` alone
    would keep only `ids[i] mod 10` of the first token when vocab_size=10000 and
    buckets=100000.

    This runs in the preprocessor, not the model core: integer arithmetic inside a model stops
    int16x8 calibration."""
    import tensorflow as tf

    length = ids.shape[1]
    ids64 = tf.cast(ids, tf.int64)
    grams = []
    for n in range(2, max_n + 1):
        count = length - n + 1
        hashed, real = ids64[:, :count], ids[:, :count] > 0
        for k in range(1, n):
            hashed = tf.math.floormod(hashed * vocab_size + ids64[:, k:k + count], NGRAM_PRIME)
            real = tf.logical_and(real, ids[:, k:k + count] > 0)
        hashed = tf.math.floormod(tf.math.floormod(hashed * NGRAM_SCRAMBLE, NGRAM_PRIME), buckets)
        hashed = tf.cast(hashed, tf.int32)
        grams.append(tf.where(real, hashed + 1, tf.zeros_like(hashed)))
    return tf.concat(grams, axis=1)


@keras.saving.register_keras_serializable("zoo")
class MaskedPooling(keras.layers.Layer):
    """Pools embeddings [batch, n, d] over the positions whose id [batch, n] is not 0: mean,
    sum, or sum / sqrt(count). An all-padding row (an empty text) pools to zeros instead of
    dividing by zero.

    "padded_mean" is the mean over all n positions instead, padding included (Keras' classic
    GlobalAveragePooling1D over padded sequences): the padding id's learned embedding, in
    proportion to the padding, tells the text's length, and the token embeddings add up scaled
    by 1/n, a small effective learning rate that measured best on SST-2. A text pads to the
    model's fixed `max_length` on its own, so its batch never changes its prediction.

    The mask is looked up in a constant [0, 1, 1, ...] table of `table_size` rows rather than
    compared (`ids > 0`): integer comparisons inside a model stop int16x8 calibration."""

    def __init__(self, mode: str, table_size: int, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.table_size = mode, table_size

    def call(self, embeddings, ids):
        import tensorflow as tf

        if self.mode == "padded_mean":
            return tf.reduce_mean(embeddings, axis=1)
        real = tf.concat([tf.zeros([1], embeddings.dtype),
                          tf.ones([self.table_size - 1], embeddings.dtype)], axis=0)
        mask = tf.expand_dims(tf.gather(real, ids), -1)
        total = tf.reduce_sum(embeddings * mask, axis=1)
        if self.mode == "sum":
            return total
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return total / (count if self.mode == "mean" else tf.sqrt(count))

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "table_size": self.table_size}


@keras.saving.register_keras_serializable("zoo")
class TokenDropout(keras.__internal__.layers.BaseRandomLayer):
    """While training, replaces each token id by padding (0) with probability `rate`, and with
    it every n-gram that contains it: whole words drop out of the bag, a regularizer for
    bag-of-words models. Takes and returns the core's inputs as `Tokenize` makes them
    ("input_word_ids", ["ngram_ids"] of 2..`max_n` tokens, the rest passed through); identity
    at inference."""

    def __init__(self, rate: float, max_n: int = 1, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate, self.max_n, self.seed = rate, max_n, seed

    def call(self, inputs, training=None):
        import tensorflow as tf

        if not training or not self.rate:
            return inputs
        ids = inputs["input_word_ids"]
        keep = self._random_generator.random_uniform(tf.shape(ids)) >= self.rate
        out = {**inputs, "input_word_ids": tf.where(keep, ids, tf.zeros_like(ids))}
        if "ngram_ids" in inputs:
            length, kept = ids.shape[1], []
            for n in range(2, self.max_n + 1):
                count = length - n + 1
                gram = keep[:, :count]
                for k in range(1, n):
                    gram = tf.logical_and(gram, keep[:, k:k + count])
                kept.append(gram)
            grams = inputs["ngram_ids"]
            out["ngram_ids"] = tf.where(tf.concat(kept, axis=1), grams, tf.zeros_like(grams))
        return out

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "max_n": self.max_n,
                "seed": self.seed}
