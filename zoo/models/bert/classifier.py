"""`bert`: the BERT encoder with a classification head, fine-tuned from a checkpoint or
trained from scratch.

    text: string[batch] -> preprocessor (BertTokenizer) -> core: encoder -> pooled output
    (or mean embedding) -> dropout -> dense -> softmax -> probabilities

`prepare` takes sizes, vocabulary and casing from `model.checkpoint` (copying its vocab.txt
into the run's assets) or, from scratch, learns a WordPiece vocabulary from the training
split; `load_pretrained` loads the checkpoint's encoder weights.
"""
from __future__ import annotations

import dataclasses

from zoo import files, parts
from zoo.errors import ConfigError
from zoo.schema import bounded, choice
from zoo.models import wordpiece
from zoo.models.bert import presets
from zoo.registry import register

RESERVED = [wordpiece.PAD, wordpiece.UNK, wordpiece.CLS, wordpiece.SEP, wordpiece.MASK]
LEARNED_VOCAB_SIZE = 8000
SIZES = ("layers", "hidden", "heads", "intermediate")
ARCHITECTURE = (*SIZES, "vocab_size", "max_position", "type_vocab_size")  # a checkpoint's


@dataclasses.dataclass
class BertConfig:
    preset: str = choice("bert_tiny", presets.PRESETS,
                         doc="layers/hidden/heads/intermediate unless set or from a checkpoint")
    layers: int = bounded(0, low=0, doc="transformer blocks; 0 = the preset's")
    hidden: int = bounded(0, low=0, doc="hidden size; 0 = the preset's")
    heads: int = bounded(0, low=0, doc="attention heads; 0 = the preset's")
    intermediate: int = bounded(0, low=0, doc="feed-forward size; 0 = the preset's")
    vocab_size: int = bounded(0, low=0, doc="embedding rows; 0 = the vocabulary's length "
                              f"(from scratch: learn at most this many tokens, 0 = "
                              f"{LEARNED_VOCAB_SIZE})")
    max_position: int = bounded(512, low=1)
    type_vocab_size: int = bounded(2, low=1)
    max_length: int = bounded(64, low=4, doc="tokens per example, [CLS] and [SEP] included")
    dropout: float = bounded(0.1, low=0.0, high=1.0, high_open=True)
    pooling: str = choice("pooled", ["pooled", "mean"],
                          doc="the head's input: BERT's pooled [CLS] output or the mean embedding")
    checkpoint: str = ""   # a Hugging Face or Google BERT directory; "" = from scratch
    vocab_file: str = ""   # WordPiece vocab.txt; filled by `prepare`
    lower_case: bool = True
    num_classes: int = bounded(2, low=2)

    def size(self, key: str) -> int:
        return getattr(self, key) or presets.sizes(self.preset)[key]

    def validate(self):
        hidden, heads = self.size("hidden"), self.size("heads")
        if hidden % heads:
            raise ConfigError(f"model.hidden={hidden} is not divisible by model.heads={heads}")
        if self.max_length > self.max_position:
            raise ConfigError(f"model.max_length={self.max_length} exceeds "
                              f"model.max_position={self.max_position}")


def vocabulary(cfg: BertConfig) -> list[str]:
    """The run's vocabulary; without a file (a model built outside a training run, before
    `prepare`) the reserved tokens and single characters."""
    if cfg.vocab_file:
        return wordpiece.read_vocabulary(cfg.vocab_file)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    return RESERVED + list(chars) + [f"##{c}" for c in chars]


def prepare(cfg: BertConfig, train_ds, assets_dir: str) -> BertConfig:
    """Sizes, casing and vocab.txt from the checkpoint, or a vocabulary learned from
    `train_ds` when training from scratch; the vocabulary goes to `assets_dir/vocab.txt`."""
    from zoo.models.bert import checkpoints

    target = files.join(assets_dir, "vocab.txt")
    if cfg.checkpoint:
        found = checkpoints.find(cfg.checkpoint)
        config = checkpoints.read_config(cfg.checkpoint)
        for key in (*SIZES, "vocab_size"):
            given = getattr(cfg, key)
            if given and given != config[key]:
                raise ConfigError(f"model.{key}={given} but the checkpoint {found['config']} "
                                  f"has {config[key]}; drop the override")
        if cfg.vocab_file and files.read_bytes(cfg.vocab_file) != files.read_bytes(found["vocab"]):
            raise ConfigError(f"model.vocab_file={cfg.vocab_file} is not the checkpoint's "
                              f"{found['vocab']}; drop the override")
        files.copy(found["vocab"], target)
        changes = {key: config[key] for key in (*ARCHITECTURE, "lower_case")}
    elif cfg.vocab_file:
        files.copy(cfg.vocab_file, target)
        changes = {"vocab_size": cfg.vocab_size or len(wordpiece.read_vocabulary(target))}
    else:
        tokens = wordpiece.learn_vocabulary(train_ds.map(lambda text, label: text),
                                            cfg.vocab_size or LEARNED_VOCAB_SIZE, RESERVED,
                                            cfg.lower_case)
        wordpiece.write_vocabulary(target, tokens)
        changes = {"vocab_size": len(tokens)}
    return dataclasses.replace(cfg, vocab_file=str(target), **changes)


def load_pretrained(model, cfg: BertConfig):
    """Loads `cfg.checkpoint`'s encoder weights into a freshly built `bert` model."""
    if cfg.checkpoint:
        from zoo.models.bert import checkpoints
        encoder = parts.split_preprocessing(model).core.get_layer("encoder")
        checkpoints.load_into(encoder, cfg.checkpoint)


def build_encoder(cfg: BertConfig, vocab_size: int):
    """The encoder of `cfg`'s sizes with `vocab_size` embedding rows."""
    from zoo.models.bert.encoder import build_encoder as build
    return build(vocab_size=vocab_size, layers_count=cfg.size("layers"),
                 hidden=cfg.size("hidden"), heads=cfg.size("heads"),
                 intermediate=cfg.size("intermediate"), max_position=cfg.max_position,
                 type_vocab_size=cfg.type_vocab_size, max_length=cfg.max_length,
                 dropout=cfg.dropout)


@register("bert", task="text_classification", config=BertConfig, prepare=prepare,
          load_pretrained=load_pretrained)
def build(cfg: BertConfig):
    """BERT: WordPiece tokenizer inside, transformer encoder, pooled output, dense, softmax."""
    import tf_keras as keras
    from tf_keras import layers
    from zoo.models.bert.encoder import INPUTS
    from zoo.models.bert.tokenizer import BertTokenizer

    tokens = vocabulary(cfg)
    vocab_size = cfg.vocab_size or (len(tokens) if cfg.vocab_file else LEARNED_VOCAB_SIZE)
    if len(tokens) > vocab_size:
        raise ConfigError(f"the vocabulary {cfg.vocab_file} has {len(tokens)} tokens, more "
                          f"than model.vocab_size={vocab_size}")
    inputs = {key: keras.Input((cfg.max_length,), dtype="int32", name=key) for key in INPUTS}
    encoded = build_encoder(cfg, vocab_size)(inputs)
    pooled = encoded["pooled_output" if cfg.pooling == "pooled" else "mean_embedding"]
    x = layers.Dropout(cfg.dropout)(pooled)
    x = layers.Dense(cfg.num_classes, name="logits",
                     kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(x)
    probabilities = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    core = keras.Model(inputs, probabilities, name=parts.CORE)

    text = keras.Input((), dtype="string", name="text")
    preprocessor = BertTokenizer(tokens, cfg.lower_case, cfg.max_length,
                                 name=parts.PREPROCESSOR)
    return keras.Model(text, core(preprocessor(text)), name="bert")
