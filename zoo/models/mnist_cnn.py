"""`mnist_cnn`: a small convnet for 28x28 grey digits; uint8 pixels in, softmax out."""
from __future__ import annotations

import dataclasses

from zoo.schema import bounded, layer_list, layer_sizes, listed
from zoo.models.blocks import check_conv_stack, conv_stack
from zoo.registry import register


@dataclasses.dataclass
class MnistCnnConfig:
    image_size: int = bounded(28, low=8)
    channels: int = bounded(1, low=1)
    num_classes: int = bounded(10, low=2)
    conv_filters: list[int] = listed([32, 64], low=1,
                                     doc="one block (convs_per_block 3x3 convs, max-pool 2x2) "
                                         "per entry; [] = none (an MLP on the pixels)")
    convs_per_block: int = bounded(2, low=1, high=4, doc="3x3 convs in each block")
    dense_units: int | list[int] = layer_sizes(
        128, doc="one Dense + ReLU per entry ([256, 128]); an integer is one layer, 0 none")
    dropout: float = bounded(0.3, low=0.0, high=1.0, high_open=True)
    batch_norm: bool = True
    augment: bool = True

    def validate(self):
        check_conv_stack(self.image_size, self.conv_filters, self.convs_per_block)


@register("mnist_cnn", task="image_classification", config=MnistCnnConfig)
def build(cfg: MnistCnnConfig):
    """MNIST convnet: rescaling and augmentation inside, conv blocks, dense, softmax."""
    # without conv blocks (conv_filters=[]) it is an MLP: Flatten -> Dense layers -> softmax
    import tf_keras as keras
    from tf_keras import layers

    inputs = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), dtype="uint8",
                         name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    if cfg.augment:
        x = layers.RandomTranslation(0.08, 0.08, fill_mode="constant")(x)
        x = layers.RandomRotation(0.03, fill_mode="constant")(x)
        x = layers.RandomZoom(0.05, fill_mode="constant")(x)
    x = conv_stack(x, cfg.conv_filters, cfg.batch_norm, cfg.convs_per_block)
    x = layers.Flatten()(x)
    for units in layer_list(cfg.dense_units):
        x = layers.Dense(units, activation="relu")(x)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(cfg.num_classes)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")
