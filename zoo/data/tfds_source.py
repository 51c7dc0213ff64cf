"""TensorFlow Datasets, with a fast, clear failure when the data is not on disk and can't be
fetched (TFDS itself retries for minutes before it gives up)."""
from __future__ import annotations

import os
import socket

from absl import logging

from zoo.errors import DataError

PROBE_HOSTS = ("storage.googleapis.com",)
LOCAL_ALTERNATIVES = {
    "image_classification": "--dataset=sample (MNIST digits in the package), --dataset=idx:DIR "
                            "(MNIST IDX files), --dataset=folder:DIR (train/ and validation/ "
                            "class folders) or --dataset=synthetic",
    "text_classification": "--dataset=sample (SST-2 in the package), --dataset=tsv:DIR or "
                           "csv:DIR (train.tsv + dev.tsv) or --dataset=synthetic",
}


def network_reachable(timeout: float = 5.0) -> bool:
    """True when a TFDS download host answers within `timeout`; ZOO_OFFLINE=1 says no."""
    if os.environ.get("ZOO_OFFLINE", "") not in ("", "0"):
        return False
    for host in PROBE_HOSTS:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return True
        except OSError:
            continue
    return False


def load(name: str, train_split: str, eval_split: str, data_dir: str, task: str,
         supervised: bool = True):
    """(train_ds, eval_ds, tfds info, (train_examples, eval_examples)).

    Datasets yield (input, label) pairs when `supervised`, else feature dicts. A dataset with
    no `eval_split` (cats_vs_dogs has only `train`) holds out the last 20% of the training
    split instead, and says so.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
    except Exception as e:  # tfds raises its own DatasetNotFoundError subclasses
        raise DataError(f"tfds:{name}: {str(e).splitlines()[0]}")
    if not _prepared(builder):
        if not network_reachable():
            raise DataError(
                f"tfds:{name} is not in {builder.data_dir} and the network is unreachable; "
                f"use local data instead: {LOCAL_ALTERNATIVES[task]}")
        builder.download_and_prepare()
    if supervised and not builder.info.supervised_keys:
        raise DataError(f"tfds:{name} has no (input, label) supervised keys")
    if eval_split.split("[")[0] not in builder.info.splits and "[" not in train_split:
        logging.info("tfds:%s has no %r split; evaluating on the last 20%% of %r", name,
                     eval_split, train_split)
        train_split, eval_split = f"{train_split}[:80%]", f"{train_split}[80%:]"
    datasets, sizes = [], []
    for split in (train_split, eval_split):
        try:
            datasets.append(builder.as_dataset(split=split, as_supervised=supervised,
                                               shuffle_files=False))
            sizes.append(builder.info.splits[split].num_examples)
        except (ValueError, KeyError) as e:
            raise DataError(f"tfds:{name}: bad split {split!r}: {str(e).splitlines()[0]}")
    return datasets[0], datasets[1], builder.info, tuple(sizes)


def _prepared(builder) -> bool:
    import tensorflow as tf
    return tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))

