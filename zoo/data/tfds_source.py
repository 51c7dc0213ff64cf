"""TensorFlow Datasets, with a fast, clear failure when the data is not on disk and can't be
fetched (TFDS itself retries for minutes before it gives up)."""
from __future__ import annotations

import os
import socket

from zoo.data import DataError

PROBE_HOSTS = ("storage.googleapis.com",)
LOCAL_ALTERNATIVES = {
    "image_classification": "--dataset=idx:DIR (MNIST IDX files), --dataset=folder:DIR "
                            "(train/ and validation/ class folders) or --dataset=synthetic",
    "text_classification": "--dataset=tsv:DIR or csv:DIR (train.tsv + dev.tsv) "
                           "or --dataset=synthetic",
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


def load_split(name: str, split: str, data_dir: str, task: str, supervised: bool = True):
    """(tf.data.Dataset, tfds DatasetInfo) for one split: (input, label) pairs when
    `supervised`, else feature dicts."""
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
    try:
        ds = builder.as_dataset(split=split, as_supervised=supervised, shuffle_files=False)
    except (ValueError, KeyError) as e:
        raise DataError(f"tfds:{name}: bad split {split!r}: {str(e).splitlines()[0]}")
    return ds, builder.info


def _prepared(builder) -> bool:
    import tensorflow as tf
    return tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def split_size(info, split: str) -> int:
    """Number of examples in a (possibly sliced, e.g. 'train[:80%]') TFDS split."""
    return info.splits[split].num_examples
