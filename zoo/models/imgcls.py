"""`imgcls`: a binary image classifier (cats vs dogs style); uint8 RGB in, sigmoid out."""
from __future__ import annotations

import dataclasses

from zoo.errors import ConfigError
from zoo.schema import bounded, choice, listed
from zoo.models.blocks import check_conv_stack, conv_stack
from zoo.registry import register


@dataclasses.dataclass
class ImgClsConfig:
    image_size: int = bounded(150, low=16)
    channels: int = bounded(3, low=1)
    num_classes: int = bounded(2, low=2, high=2, doc="binary: one sigmoid output")
    conv_filters: list[int] = listed([32, 64, 128, 128], low=1,
                                     doc="one block (3x3 conv, max-pool 2x2) per entry")
    batch_norm: bool = True
    pooling: str = choice("avg", ["avg", "flatten"], doc="how the last feature map is reduced")
    dense_units: int = bounded(256, low=0, doc="0 = no hidden dense layer")
    dropout: float = bounded(0.5, low=0.0, high=1.0, high_open=True)
    augment: bool = True

    def validate(self):
        if not self.conv_filters:
            raise ConfigError("model.conv_filters is empty; imgcls needs at least one conv "
                              "block before its global pooling")
        check_conv_stack(self.image_size, self.conv_filters)


@register("imgcls", task="image_classification", config=ImgClsConfig)
def build(cfg: ImgClsConfig):
    """Binary image classifier: rescaling and augmentation inside, conv blocks, sigmoid."""
    import tf_keras as keras
    from tf_keras import layers

    inputs = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), dtype="uint8",
                         name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    if cfg.augment:
        x = layers.RandomFlip("horizontal")(x)
        x = layers.RandomRotation(0.1)(x)
        x = layers.RandomZoom(0.1)(x)
    x = conv_stack(x, cfg.conv_filters, cfg.batch_norm)
    x = layers.GlobalAveragePooling2D()(x) if cfg.pooling == "avg" else layers.Flatten()(x)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout)(x)
    if cfg.dense_units:
        x = layers.Dense(cfg.dense_units, activation="relu")(x)
    x = layers.Dense(1)(x)
    outputs = layers.Activation("sigmoid", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="imgcls")
