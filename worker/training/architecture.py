"""The network: a small VGG-style CNN with batch norm, sized for two CPU cores.

A strided 3x3 stem halves the input at once (most of a plain CNN's cost is in its full-resolution
layers), then stages of 3x3 convolutions separated by max pooling, global average pooling, dropout and
one logit (Parasitized vs Uninfected). The calibrated probability is sigmoid(logit / T). The last
convolution's activation is named so Grad-CAM can find it.
"""

from __future__ import annotations

LAST_CONV = "last_conv"


def build_model(
    *,
    size: int,
    stem: int = 24,
    stages: tuple[tuple[int, int], ...] = ((32, 1), (64, 1), (128, 2)),
    dropout: float = 0.3,
    seed: int = 0,
):
    """stages: (width, number of 3x3 convolutions) per stage; 2x2 max pooling between stages."""
    import keras
    from keras import layers

    initializer = keras.initializers.HeNormal(seed=seed)

    def conv_bn_relu(x, width, *, strides=1, name=None):
        x = layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False, kernel_initializer=initializer)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU(name=name)(x)

    inputs = keras.Input(shape=(size, size, 3), name="cell")
    x = conv_bn_relu(inputs, stem, strides=2)
    for index, (width, convs) in enumerate(stages):
        if index:
            x = layers.MaxPooling2D(2)(x)
        for conv in range(convs):
            is_last = index == len(stages) - 1 and conv == convs - 1
            x = conv_bn_relu(x, width, name=LAST_CONV if is_last else None)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    logits = layers.Dense(1, name="logit", kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, logits, name="malaria_cell_cnn")


def trained_model(card):
    """The Keras network a model card (worker.serving.model_card.ModelCard) describes, with its trained weights."""
    architecture = card.data["architecture"]
    model = build_model(
        size=card.input_size,
        stem=architecture["stem"],
        stages=tuple(tuple(stage) for stage in architecture["stages"]),
        dropout=architecture["dropout"],
    )
    model.load_weights(card.file("weights"))
    return model
