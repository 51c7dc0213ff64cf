"""`textcls`: raw sentences in, class probabilities out.

    text -> the phone's WordPiece tokenizer (in the graph) -> BERT's three inputs
         [+ hashed n-gram ids] -> word embeddings -> pooling -> [dense] -> softmax

The tokenizer is the model's preprocessor and the rest its core (`zoo.parts`): training
tokenizes in the input pipeline and fits the core; the exported models keep both. It splits
text as MediaPipe Tasks' BertTokenizer does (`zoo.models.wordpiece`), and the core takes that
tokenizer's three inputs (`input_word_ids`, `input_mask`, `input_type_ids`; only the first is
read), so an app classifying through MediaPipe feeds the model the ids it learned on.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from zoo import files, parts
from zoo.errors import ConfigError
from zoo.schema import bounded, choice
from zoo.models import wordpiece
from zoo.registry import register

@dataclasses.dataclass
class TextClsConfig:
    """textcls's model config; these are its defaults (zoo/configs/textcls.yaml sets none)."""
    num_classes: int = bounded(2, low=2)
    vocabulary: str = choice("words", ["words", "wordpiece"],
                             doc="learned from the training split: its most frequent words "
                                 "(others are [UNK]) or WordPiece sub-words")
    vocab_size: int = bounded(20_000, low=16, doc="size of the learned vocabulary")
    min_word_count: int = bounded(2, low=1, doc="words vocabulary: a word is kept when the "
                                  "training split has it at least this often; rarer words "
                                  "train [UNK], which then stands for unseen words (all of "
                                  "SST-2's training split keeps 13,385 words)")
    vocab_file: str = ""  # the run's vocabulary; learned from the training split when empty
    max_length: int = bounded(128, low=3, doc="tokens per text, [CLS] and [SEP] included; "
                              "longer texts are truncated")
    embedding_dim: int = bounded(16, low=1)
    ngrams: int = bounded(1, low=1, high=4, doc="1 = words only; n adds hashed 2..n-grams")
    ngram_buckets: int = bounded(100_000, low=1, high=2**31 - 2,
                                  doc="hash buckets shared by the n-grams")
    pooling: str = choice("mean", ["padded_mean", "mean", "sum", "sqrt"],
                          doc="over the text's tokens: mean, sum, sum / sqrt(count); or "
                              "padded_mean, the mean over all max_length positions (padding "
                              "has a learned embedding; starves small training sets, see "
                              "docs/defaults.md)")
    dense_units: int = bounded(0, low=0, doc="0 = no hidden dense layer")
    dropout: float = bounded(0.0, low=0.0, high=1.0, high_open=True)
    token_dropout: float = bounded(0.0, low=0.0, high=1.0, high_open=True,
                                   doc="chance that a token is dropped while training")


RESERVED = [wordpiece.PAD, wordpiece.UNK, wordpiece.CLS, wordpiece.SEP]


def build_core(cfg: TextClsConfig, vocab_size: int):
    """{input_word_ids, input_mask, input_type_ids, [ngram_ids]} [batch, length] ->
    probabilities; id 0 is padding. The mask and type ids are taken and not read: the word ids
    tell both, and apps feed all three."""
    import tf_keras as keras
    from tf_keras import layers
    from zoo.models.bert.encoder import INPUTS
    from zoo.models.textcls.layers import MaskedPooling, TokenDropout

    inputs = {name: keras.Input((cfg.max_length,), dtype="int32", name=name) for name in INPUTS}
    tables = {"input_word_ids": vocab_size}
    if cfg.ngrams > 1:
        grams = sum(cfg.max_length - n + 1 for n in range(2, cfg.ngrams + 1))
        inputs["ngram_ids"] = keras.Input((grams,), dtype="int32", name="ngram_ids")
        tables["ngram_ids"] = cfg.ngram_buckets + 1
    ids = inputs
    if cfg.token_dropout:
        ids = TokenDropout(cfg.token_dropout, cfg.ngrams, name="token_dropout")(inputs)
    pooled = []
    for name, kind in (("input_word_ids", "token"), ("ngram_ids", "ngram")):
        if name not in tables:
            continue
        embeddings = layers.Embedding(tables[name], cfg.embedding_dim,
                                      name=f"{kind}_embedding")(ids[name])
        pooled.append(MaskedPooling(cfg.pooling, tables[name],
                                    name=f"{kind}_pool")(embeddings, ids[name]))
    x = layers.Add()(pooled) if len(pooled) > 1 else pooled[0]
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout)(x)
    if cfg.dense_units:
        x = layers.Dense(cfg.dense_units, activation="relu")(x)
    x = layers.Dense(cfg.num_classes)(x)
    probabilities = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, probabilities, name=parts.CORE)


def prepare(cfg: TextClsConfig, train_ds, assets_dir: str) -> TextClsConfig:
    """Learns the vocabulary (`vocabulary`: words or WordPiece) from the training texts into
    `assets_dir/vocab.txt` unless `vocab_file` names one."""
    if cfg.vocab_file:
        return cfg
    texts = train_ds.map(lambda text, label: text)
    if cfg.vocabulary == "words":
        tokens = wordpiece.learn_word_vocabulary(texts, cfg.vocab_size, RESERVED,
                                                 cfg.min_word_count)
    else:
        tokens = wordpiece.learn_device_vocabulary(texts, cfg.vocab_size, RESERVED)
    path = files.join(assets_dir, "vocab.txt")
    wordpiece.write_vocabulary(path, tokens)
    return dataclasses.replace(cfg, vocab_file=path if files.is_url(path)
                               else str(Path(path).resolve()))


@register("textcls", task="text_classification", config=TextClsConfig, prepare=prepare)
def build(cfg: TextClsConfig):
    """Text classifier: MediaPipe's WordPiece tokenizer inside, word embeddings, pooling."""
    if cfg.vocab_file:
        vocabulary = wordpiece.read_vocabulary(cfg.vocab_file)
    else:  # an untrained model (the registry table): a placeholder vocabulary of the size
        vocabulary = RESERVED + [f"t{k}" for k in range(cfg.vocab_size - len(RESERVED))]
    if vocabulary[0] != wordpiece.PAD:
        raise ConfigError(f"{cfg.vocab_file}: the first token is {vocabulary[0]!r}; textcls "
                          f"pads with id 0 and expects {wordpiece.PAD!r} there")
    import tf_keras as keras
    from zoo.models.textcls.layers import Tokenize

    text = keras.Input((), dtype="string", name="text")
    tokens = Tokenize(vocabulary, cfg.max_length, cfg.ngrams, cfg.ngram_buckets,
                      name=parts.PREPROCESSOR)(text)
    probabilities = build_core(cfg, len(vocabulary))(tokens)
    return keras.Model(text, probabilities, name="textcls")
