"""The classic Keras MNIST convnet of the Keras examples ("simple MNIST convnet"): NumPy
arrays scaled to [0, 1], Conv2D(32, 3x3, relu), MaxPooling 2x2, Conv2D(64, 3x3, relu),
MaxPooling 2x2, Flatten, Dropout(0.5), Dense(10, softmax); Adam, batch 128, 15 epochs.

`python -m tools.study --model=mnist_cnn` compares mnist_cnn's default with it on 5 folds of
the real digits (`mnist_classic` is the one-conv tutorial network the benchmark times).
"""
from __future__ import annotations

from tools.baselines.mnist_classic import load_scaled


def run(data_dir, epochs: int = 15, batch_size: int = 128, max_train: int = 0) -> dict:
    import keras
    from keras import layers

    from tools.baselines.common import fit_and_score

    train, test = load_scaled(data_dir, max_train)

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    return fit_and_score(keras, model, train, test, "sparse_categorical_crossentropy", epochs,
                         batch_size, verbose=2)


if __name__ == "__main__":
    from tools.baselines.common import main
    main(run, __doc__)
