"""Dataset specs -> tf.data pipelines.

A spec names where the data comes from: `sample`, `tfds:NAME[:SPLIT]`, `idx:DIR`,
`folder:DIR`, `tsv:DIR`, `csv:DIR` or `synthetic`. `sample` is real data shipped in the
package (`zoo/data/sample/README.md`): images are MNIST's official test set (its first 8,000
digits are the `train` split, its last 2,000 the `test` split; a two-class model gets its 0s
and 1s as RGB images of three sizes), texts are SST-2 (GLUE's train.tsv and dev.tsv).
`load()` returns unbatched `(train, eval, info)` datasets of `(input, label)` pairs;
`batched()` turns one into the training/eval pipeline.
Spec parsing (`zoo.data.specs`) imports no TensorFlow, so a bad spec fails before any
TensorFlow work.
"""
from __future__ import annotations

from zoo.data.specs import (FORMS, IMAGE_SCHEMES, SAMPLE_DIR, SCHEMES, TEXT_SCHEMES, DatasetInfo,
                            DatasetSpec, check_dir, check_local, parse_spec, parse_split,
                            slice_indices)
from zoo.errors import ConfigError, DataError

__all__ = ["FORMS", "IMAGE_SCHEMES", "SAMPLE_DIR", "SCHEMES", "TEXT_SCHEMES", "DataError",
           "DatasetInfo", "DatasetSpec", "batched", "check_dir", "check_local", "load",
           "parse_spec", "parse_split", "slice_indices"]


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
