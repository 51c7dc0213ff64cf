"""`load_encoder(DIR)`: a pretrained BERT encoder with its tokenizer, called on raw strings."""
from __future__ import annotations

import json

import tensorflow as tf
import tf_keras as keras

from zoo import files
from zoo.models import wordpiece
from zoo.models.bert import checkpoints, classifier
from zoo.models.bert.tokenizer import BertTokenizer


class TextEncoder(keras.Model):
    """strings -> {input_ids, sequence_output, pooled_output, mean_embedding}.

    `mean_embedding` is the mean of the last hidden states over the real tokens ([CLS] and
    [SEP] included, padding not): L2-normalize it for the sentence-transformers embedding.
    A list of (first, second) pairs, or a string[batch, 2] tensor, is encoded as pairs."""

    def __init__(self, tokenizer: BertTokenizer, encoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer, self.encoder = tokenizer, encoder

    def __call__(self, texts, *args, **kwargs):
        if isinstance(texts, (list, tuple)):
            texts = tf.constant(texts, tf.string)
        return super().__call__(texts, *args, **kwargs)

    def call(self, texts, training=None):
        tokens = self.tokenizer(texts)
        return {"input_ids": tokens["input_word_ids"],
                **self.encoder(tokens, training=training)}


def load(directory, max_length: int | None = None) -> TextEncoder:
    """The encoder of checkpoint `directory` with its weights, vocabulary and casing.
    `max_length` defaults to sentence-transformers' `max_seq_length` when the directory has
    one, else 128 (capped by the checkpoint's positions)."""
    config = checkpoints.read_config(directory)
    found = checkpoints.find(directory)
    if max_length is None:
        st_config = files.join(found["dir"], "sentence_bert_config.json")
        max_length = (json.loads(files.read_text(st_config)).get("max_seq_length", 128)
                      if files.isfile(st_config) else 128)
    max_length = min(max_length, config["max_position"])
    architecture = {key: config[key] for key in classifier.ARCHITECTURE}
    cfg = classifier.BertConfig(**architecture, max_length=max_length, dropout=0.0)
    encoder = classifier.build_encoder(cfg, config["vocab_size"])
    checkpoints.load_into(encoder, directory)
    tokenizer = BertTokenizer(wordpiece.read_vocabulary(found["vocab"]), config["lower_case"],
                              max_length, name="tokenizer")
    return TextEncoder(tokenizer, encoder, name="text_encoder")
