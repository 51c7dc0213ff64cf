"""Folder datasets: the decoder decides which image files are whole."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from zoo.config import load_config
from zoo.data import DataError, load


def jpeg_folder(root, image) -> dict:
    """A two-class folder dataset of JPEGs of `image`; returns {class: path}."""
    paths = {}
    data = tf.io.encode_jpeg(image, quality=95).numpy()
    for split in ("train", "validation"):
        for label in ("a", "b"):
            path = root / split / label / "0.jpg"
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            paths[split, label] = path
    return paths


def images_of(root):
    cfg = load_config("imgcls", overrides=[f"data.dataset=folder:{root}",
                                           "model.image_size=32", "model.conv_filters=[8]"])
    train, _, _ = load(cfg, "image_classification")
    return [image for image, _ in train.as_numpy_iterator()]


def test_a_jpeg_with_trailing_data_loads(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    paths = jpeg_folder(tmp_path, image)
    plain = images_of(tmp_path)
    # a motion photo: the still, then the video the phone appended after the JPEG's end
    motion = paths["train", "b"]
    motion.write_bytes(motion.read_bytes() + b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 64)
    assert len(images_of(tmp_path)) == 2
    np.testing.assert_array_equal(images_of(tmp_path), plain)


def test_a_truncated_jpeg_is_named(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = jpeg_folder(tmp_path, image)["train", "a"]
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"train/a/0.jpg: can't decode: a truncated or corrupt "
                                        r"JPEG file \(\d+ bytes\)$"):
        images_of(tmp_path)
