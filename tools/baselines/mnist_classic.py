"""The classic Keras MNIST convnet, as the Keras examples write it: NumPy arrays scaled to
[0, 1], a `Sequential` model, `model.fit(x, y, batch_size=128)`.

The network is zoo's tutorial configuration of `mnist_cnn` (conv_filters=[32],
convs_per_block=1, dense_units=128, dropout=0, no batch norm, no augmentation):
Conv2D(32, 3x3, relu), MaxPooling 2x2, Flatten, Dense(128, relu), Dense(10, softmax). A user loads the arrays with
`keras.datasets.mnist.load_data()`; offline they come from IDX files in `data_dir`.
"""
from __future__ import annotations

from pathlib import Path


def load(data_dir, max_train: int = 0, train_examples: int = 8000):
    """((x_train, y_train), (x_test, y_test)) of the IDX test set in `data_dir`: the first
    `train_examples` to train, the rest to evaluate (the 60k train file is not offline)."""
    from zoo.data.images import read_idx
    directory = Path(data_dir)
    images = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(directory / "t10k-labels-idx1-ubyte.gz")
    n = max_train or train_examples
    return (images[:n], labels[:n]), (images[train_examples:], labels[train_examples:])


def load_scaled(data_dir, max_train: int = 0):
    """`load`'s arrays as the Keras examples feed them: float32 [N, 28, 28, 1] in [0, 1]."""
    (x_train, y_train), (x_test, y_test) = load(data_dir, max_train)
    scale = lambda x: x.astype("float32")[..., None] / 255.0
    return (scale(x_train), y_train), (scale(x_test), y_test)


def run(data_dir, epochs: int = 3, batch_size: int = 128, max_train: int = 0) -> dict:
    import keras
    from keras import layers

    from tools.baselines.common import fit_and_score

    train, test = load_scaled(data_dir, max_train)

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    return fit_and_score(keras, model, train, test, "sparse_categorical_crossentropy", epochs,
                         batch_size)


if __name__ == "__main__":
    from tools.baselines.common import main
    main(run, __doc__)
