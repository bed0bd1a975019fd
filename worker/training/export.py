"""Export a trained Keras model to the LiteRT flatbuffer the inference engine serves.

The exported model has two outputs: the Parasitized logit, and the class activation map of the last
convolution (its channels weighted by the final dense layer). For a network ending in global average
pooling and one dense unit, that map is exactly Grad-CAM's (Selvaraju et al. 2017, section 3.1), so
heatmaps come from the same fast runtime with no gradient computation and no TensorFlow at serving time.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from worker.training.architecture import LAST_CONV


def serving_model(model):
    import keras

    features = model.get_layer(LAST_CONV).output
    dense = model.get_layer("logit")
    kernel, _bias = dense.get_weights()
    cam_layer = keras.layers.Conv2D(1, 1, use_bias=False, name="cam")
    cam = cam_layer(features)
    cam_layer.set_weights([kernel.reshape(1, 1, -1, 1)])
    return keras.Model(model.input, [model.output, cam], name="malaria_cell_serving")


def export_litert(model, path: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(serving_model(model))
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints every captured tensor of the SavedModel
        flatbuffer = converter.convert()
    Path(path).write_bytes(flatbuffer)
