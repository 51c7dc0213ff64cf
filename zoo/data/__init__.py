"""Dataset specs -> tf.data pipelines.

A spec names where the data comes from: `sample`, `tfds:NAME[:SPLIT]`, `idx:DIR`,
`folder:DIR`, `tsv:DIR`, `csv:DIR` or `synthetic`. `sample` is real data shipped in the
package (`zoo/data/sample/README.md`): images are MNIST's official test set (its first 8,000
digits are the `train` split, its last 2,000 the `test` split; a two-class model gets its 0s
and 1s as RGB images of three sizes), texts are SST-2 (GLUE's train.tsv and dev.tsv).
`load()` returns unbatched `(train, eval, info)` datasets of `(input, label)` pairs;
`batched()` turns one into the training/eval pipeline.
Spec parsing imports no TensorFlow, so a bad spec fails before any TensorFlow work.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from zoo.config import ConfigError

SCHEMES = ("sample", "tfds", "idx", "folder", "tsv", "csv", "synthetic")
IMAGE_SCHEMES = ("sample", "tfds", "idx", "folder", "synthetic")
TEXT_SCHEMES = ("sample", "tfds", "tsv", "csv", "synthetic")
FORMS = "tfds:NAME[:SPLIT], idx:DIR, folder:DIR, tsv:DIR, csv:DIR, sample or synthetic"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"  # package data


class DataError(RuntimeError):
    """Data that can't be read or fetched; the message names the file and what was expected."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    scheme: str
    location: str = ""     # TFDS name or a directory
    split: str = ""        # TFDS only: the training split given in the spec


@dataclasses.dataclass
class DatasetInfo:
    num_classes: int
    class_names: list[str]
    train_examples: int
    eval_examples: int
    source: str


def parse_spec(text: str) -> DatasetSpec:
    """'tfds:mnist' -> DatasetSpec('tfds', 'mnist'); errors name the accepted forms."""
    scheme, _, rest = text.partition(":")
    if scheme in ("sample", "synthetic") and not rest:
        return DatasetSpec(scheme)
    if scheme not in SCHEMES or scheme in ("sample", "synthetic") or not rest:
        raise ConfigError(f"bad dataset spec {text!r}; expected {FORMS}")
    if scheme == "tfds":
        name, _, split = rest.partition(":")
        if re.fullmatch(r"[\d.*]+", split or "x"):  # 'mnist:3.*' is a version, not a split
            name, split = rest, ""
        return DatasetSpec("tfds", name, split)
    return DatasetSpec(scheme, rest)


_SPLIT = re.compile(r"^([\w\-/]+)(?:\[(-?\d*%?):(-?\d*%?)\])?$")


def parse_split(text: str) -> tuple[str, str, str]:
    """'train[:8000]' -> ('train', '', '8000'); percentages allowed ('train[80%:]')."""
    match = _SPLIT.match(text.strip())
    if not match:
        raise ConfigError(f"bad split {text!r}; expected NAME or NAME[START:STOP], "
                          "e.g. train, t10k[:8000], train[80%:]")
    name, start, stop = match.groups()
    return name, start or "", stop or ""


def slice_indices(n: int, start: str, stop: str) -> range:
    """The indices of a split slice over `n` items (TFDS slicing semantics)."""
    def bound(text, default):
        if not text:
            return default
        if text.endswith("%"):
            return round(n * int(text[:-1]) / 100)
        return int(text)
    return range(n)[slice(bound(start, 0), bound(stop, n))]


def check_local(text: str):
    """A local spec's directory exists: checked before TensorFlow loads."""
    spec = parse_spec(text)
    if spec.scheme in ("idx", "folder", "tsv", "csv"):
        check_dir(spec.location, spec.scheme)


def load(cfg, task: str):
    """(train_ds, eval_ds, DatasetInfo) for the experiment config `cfg` and the model's task."""
    spec = parse_spec(cfg.data.dataset)
    if task == "image_classification":
        if spec.scheme not in IMAGE_SCHEMES:
            raise ConfigError(f"dataset {cfg.data.dataset!r} is text; {cfg.model_name} takes "
                              f"images: {', '.join(IMAGE_SCHEMES)}")
        from zoo.data import images
        return images.load(spec, cfg.data, cfg.model, seed=cfg.train.seed)
    if spec.scheme not in TEXT_SCHEMES:
        raise ConfigError(f"dataset {cfg.data.dataset!r} is images; {cfg.model_name} takes "
                          f"text: {', '.join(TEXT_SCHEMES)}")
    from zoo.data import text
    return text.load(spec, cfg.data, getattr(cfg.model, "num_classes", 2), seed=cfg.train.seed)


def batched(ds, batch_size: int, training: bool, *, cache: bool = True,
            shuffle_buffer: int = 10_000, seed: int = 42, repeat: bool = False,
            preprocess=None, prefetch: bool = True):
    """[preprocess] -> cache -> shuffle -> batch (static shapes for training) -> prefetch.

    `preprocess` (a text model's tokenizer) runs on batches of 256 before the cache, so a
    cached pipeline tokenizes each text once, not once per epoch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    ds = ds.with_options(options)
    if preprocess is not None:
        ds = ds.batch(256).map(lambda x, y: (preprocess(x), y),
                               num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    if cache:
        ds = ds.cache()
    if training and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def check_dir(path: str, what: str) -> Path:
    """The directory `path`, or a DataError naming it."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"{what}: directory not found: {p}")
    return p
