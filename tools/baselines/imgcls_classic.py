"""The classic cats-vs-dogs convnet: `image_dataset_from_directory` over class folders of
JPEG/PNG files, a `Sequential` model with rescaling inside, `model.fit(dataset)`, batch 32.

The network is zoo's tutorial configuration of `imgcls` (the "Deep Learning with Python"
cats-vs-dogs net at 150x150: conv_filters=[32, 64, 128, 128], pooling=flatten,
dense_units=512, dropout=0, no batch norm, no augmentation). The pipeline is what the recipe
writes: no cache and no explicit prefetch (image_dataset_from_directory's own defaults).
`data_dir` holds `train/<class>/*` and `validation/<class>/*`.
"""
from __future__ import annotations

from pathlib import Path


def run(data_dir, epochs: int = 3, batch_size: int = 32, max_train: int = 0,
        image_size: int = 150) -> dict:
    import keras
    from keras import layers

    from tools.baselines.common import meter, result

    directory = Path(data_dir)
    train_ds = keras.utils.image_dataset_from_directory(
        directory / "train", label_mode="binary", image_size=(image_size, image_size),
        batch_size=batch_size, seed=1337)
    val_ds = keras.utils.image_dataset_from_directory(
        directory / "validation", label_mode="binary", image_size=(image_size, image_size),
        batch_size=batch_size, shuffle=False)
    if max_train:
        train_ds = train_ds.take(max_train // batch_size)

    model = keras.Sequential([
        keras.Input(shape=(image_size, image_size, 3)),
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(512, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    timer = meter(keras, batch_size)
    model.fit(train_ds, epochs=epochs, validation_data=val_ds, callbacks=[timer])
    _, accuracy = model.evaluate(val_ds, verbose=0)
    train_examples = sum(int(y.shape[0]) for _, y in train_ds)
    return result(timer, accuracy, epochs, batch_size, train_examples)


if __name__ == "__main__":
    from tools.baselines.common import main
    main(run, __doc__)
