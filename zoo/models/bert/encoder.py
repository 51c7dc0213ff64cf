"""The BERT encoder (Devlin et al., 2018) in tf-keras, read top to bottom.

    input_word_ids, input_type_ids  ->  word + position + token-type embeddings -> LayerNorm
    -> N x [multi-head self-attention -> add & LayerNorm -> GELU feed-forward -> add & LayerNorm]
    -> sequence_output;  tanh(dense(first token)) -> pooled_output;
       mean over the real tokens -> mean_embedding

Post-layer-norm as in BERT, exact (erf) GELU, LayerNorm epsilon 1e-12. `input_mask` (1 for a
real token, 0 for padding) keeps padding out of attention and of the mean. Softmax and
LayerNorm run in float32 under mixed precision.
"""
from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

EPSILON = 1e-12
INPUTS = ("input_word_ids", "input_mask", "input_type_ids")  # MediaPipe Tasks' names too


def initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.utils.register_keras_serializable("zoo.bert")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each position to a [batch, length, hidden] input."""

    def __init__(self, max_position: int, **kwargs):
        super().__init__(**kwargs)
        self.max_position = max_position

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", [self.max_position, input_shape[-1]],
                                          initializer=initializer())

    def call(self, x):
        length = x.shape[1]
        return x + tf.cast(self.embeddings[:length], x.dtype)[tf.newaxis]

    def get_config(self):
        return {**super().get_config(), "max_position": self.max_position}


@keras.utils.register_keras_serializable("zoo.bert")
class SelfAttention(layers.Layer):
    """Multi-head scaled dot-product self-attention; padded keys get no attention."""

    def __init__(self, hidden: int, heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.heads, self.dropout_rate = hidden, heads, dropout
        self.head_size = hidden // heads
        dense = lambda name: layers.Dense(hidden, kernel_initializer=initializer(), name=name,
                                          dtype=self.dtype_policy)
        self.query, self.key, self.value = dense("query"), dense("key"), dense("value")
        self.output_dense = dense("output")
        self.dropout = layers.Dropout(dropout, dtype=self.dtype_policy)

    def _split_heads(self, x):  # [batch, length, hidden] -> [batch, heads, length, head_size]
        x = tf.reshape(x, [tf.shape(x)[0], x.shape[1], self.heads, self.head_size])
        return tf.transpose(x, [0, 2, 1, 3])

    def call(self, x, padding_mask, training=None):
        q, k, v = (self._split_heads(dense(x)) for dense in (self.query, self.key, self.value))
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(self.head_size))
        blocked = 1.0 - tf.cast(padding_mask, tf.float32)[:, tf.newaxis, tf.newaxis, :]
        scores = tf.cast(scores, tf.float32) - 1e9 * blocked
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), x.dtype)
        context = tf.matmul(self.dropout(probs, training=training), v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]),
                             [tf.shape(x)[0], x.shape[1], self.hidden])
        return self.output_dense(context)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "heads": self.heads,
                "dropout": self.dropout_rate}


@keras.utils.register_keras_serializable("zoo.bert")
class TransformerBlock(layers.Layer):
    """Attention -> dropout, add, LayerNorm -> GELU feed-forward -> dropout, add, LayerNorm."""

    def __init__(self, hidden: int, heads: int, intermediate: int, dropout: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.heads, self.intermediate, self.dropout_rate = (
            hidden, heads, intermediate, dropout)
        policy = self.dtype_policy
        self.attention = SelfAttention(hidden, heads, dropout, name="attention", dtype=policy)
        self.attention_dropout = layers.Dropout(dropout, dtype=policy)
        self.attention_norm = layers.LayerNormalization(epsilon=EPSILON, name="attention_norm",
                                                        dtype=policy)
        self.intermediate_dense = layers.Dense(intermediate, activation="gelu",  # exact erf
                                               kernel_initializer=initializer(),
                                               name="intermediate", dtype=policy)
        self.output_dense = layers.Dense(hidden, kernel_initializer=initializer(),
                                         name="output", dtype=policy)
        self.output_dropout = layers.Dropout(dropout, dtype=policy)
        self.output_norm = layers.LayerNormalization(epsilon=EPSILON, name="output_norm",
                                                     dtype=policy)

    def call(self, x, padding_mask, training=None):
        attended = self.attention(x, padding_mask, training=training)
        x = self.attention_norm(x + self.attention_dropout(attended, training=training))
        fed = self.output_dense(self.intermediate_dense(x))
        x = self.output_norm(x + self.output_dropout(fed, training=training))
        return tf.cast(x, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "heads": self.heads,
                "intermediate": self.intermediate, "dropout": self.dropout_rate}


@keras.utils.register_keras_serializable("zoo.bert")
class Pooler(layers.Layer):
    """tanh(dense(the first token's hidden state)): BERT's sentence vector."""

    def __init__(self, hidden: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.dense = layers.Dense(hidden, activation="tanh", kernel_initializer=initializer(),
                                  name="dense", dtype=self.dtype_policy)

    def call(self, sequence):
        return self.dense(sequence[:, 0])

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.utils.register_keras_serializable("zoo.bert")
class MaskedMean(layers.Layer):
    """The mean of a sequence over its real tokens (mask 1), in float32."""

    def call(self, sequence, padding_mask):
        weights = tf.cast(padding_mask, tf.float32)[..., tf.newaxis]
        total = tf.reduce_sum(tf.cast(sequence, tf.float32) * weights, axis=1)
        return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9)


def build_encoder(*, vocab_size: int, layers_count: int, hidden: int, heads: int,
                  intermediate: int, max_position: int = 512, type_vocab_size: int = 2,
                  max_length: int = 128, dropout: float = 0.1,
                  name: str = "encoder") -> keras.Model:
    """inputs {input_word_ids, input_mask, input_type_ids}: int32[batch, max_length] ->
    {sequence_output, pooled_output, mean_embedding} (the last in float32)."""
    inputs = {key: keras.Input((max_length,), dtype="int32", name=key) for key in INPUTS}
    words = layers.Embedding(vocab_size, hidden, embeddings_initializer=initializer(),
                             name="word_embeddings")(inputs["input_word_ids"])
    types = layers.Embedding(type_vocab_size, hidden, embeddings_initializer=initializer(),
                             name="token_type_embeddings")(inputs["input_type_ids"])
    x = layers.Add()([words, types])
    x = PositionEmbedding(max_position, name="position_embeddings")(x)
    x = layers.LayerNormalization(epsilon=EPSILON, name="embeddings_norm")(x)
    x = layers.Dropout(dropout)(x)
    for i in range(layers_count):
        x = TransformerBlock(hidden, heads, intermediate, dropout,
                             name=f"transformer_layer_{i}")(x, padding_mask=inputs["input_mask"])
    outputs = {"sequence_output": x,
               "pooled_output": Pooler(hidden, name="pooler")(x),
               "mean_embedding": MaskedMean(name="mean_pool")(
                   x, padding_mask=inputs["input_mask"])}
    return keras.Model(inputs, outputs, name=name)


def checkpoint_variables(encoder: keras.Model) -> dict:
    """{name in Google's BERT checkpoint layout (without the `bert/` prefix): variable}: the
    one map every checkpoint reader assigns through."""
    get = encoder.get_layer
    out = {
        "embeddings/word_embeddings": get("word_embeddings").embeddings,
        "embeddings/token_type_embeddings": get("token_type_embeddings").embeddings,
        "embeddings/position_embeddings": get("position_embeddings").embeddings,
        "embeddings/LayerNorm/gamma": get("embeddings_norm").gamma,
        "embeddings/LayerNorm/beta": get("embeddings_norm").beta,
        "pooler/dense/kernel": get("pooler").dense.kernel,
        "pooler/dense/bias": get("pooler").dense.bias,
    }
    i = 0
    while any(layer.name == f"transformer_layer_{i}" for layer in encoder.layers):
        block, prefix = get(f"transformer_layer_{i}"), f"encoder/layer_{i}/"
        parts = {
            "attention/self/query": block.attention.query,
            "attention/self/key": block.attention.key,
            "attention/self/value": block.attention.value,
            "attention/output/dense": block.attention.output_dense,
            "intermediate/dense": block.intermediate_dense,
            "output/dense": block.output_dense,
        }
        for part, dense in parts.items():
            out[prefix + part + "/kernel"] = dense.kernel
            out[prefix + part + "/bias"] = dense.bias
        for part, norm in (("attention/output/LayerNorm", block.attention_norm),
                           ("output/LayerNorm", block.output_norm)):
            out[prefix + part + "/gamma"] = norm.gamma
            out[prefix + part + "/beta"] = norm.beta
        i += 1
    return out
