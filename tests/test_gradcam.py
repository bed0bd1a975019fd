"""Grad-CAM heatmaps for the pages: a valid PNG the size of the cell, showing the network's evidence."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.cells import cell_png, cells_of_test_patients
from worker.serving.engine import get_classifier
from worker.serving.gradcam import heatmap_overlay_png
from worker.serving.preprocessing import CellImageError, prepare_cell


@pytest.fixture(scope="module")
def cell_path():
    """A real parasitized cell: Grad-CAM is compared where the network has evidence to show."""
    return next(cell.path for cell in cells_of_test_patients(20) if cell.label == 1)


@pytest.mark.pure
def test_heatmap_is_a_png_of_the_cells_size():
    data = cell_png(90, 110)
    original = Image.open(io.BytesIO(data))
    png = heatmap_overlay_png(data, get_classifier())
    overlay = Image.open(io.BytesIO(png))
    assert overlay.format == "PNG"
    assert overlay.size == original.size
    assert overlay.mode == "RGB"
    difference = np.abs(np.asarray(overlay, dtype=int) - np.asarray(original.convert("RGB"), dtype=int))
    assert difference.mean() > 5, "the heatmap must be visible over the cell"


@pytest.mark.pure
def test_heatmap_of_a_non_square_synthetic_cell():
    image = Image.new("RGB", (90, 150), (0, 0, 0))
    image.paste((190, 120, 160), (5, 5, 85, 145))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    assert Image.open(io.BytesIO(heatmap_overlay_png(buffer.getvalue(), get_classifier()))).size == (90, 150)


@pytest.mark.pure
def test_heatmap_of_garbage_is_a_typed_error():
    with pytest.raises(CellImageError):
        heatmap_overlay_png(b"nope", get_classifier())


def test_served_activation_map_is_grad_cam(cell_path):
    """The served map equals Grad-CAM computed with gradients in TensorFlow on the Keras weights."""
    tf = pytest.importorskip("tensorflow")
    from worker.training.architecture import LAST_CONV, trained_model

    classifier = get_classifier()
    card = classifier.card
    model = trained_model(card)
    array = prepare_cell(cell_path.read_bytes(), card.input_size)
    probe = tf.keras.Model(model.input, [model.get_layer(LAST_CONV).output, model.output])
    with tf.GradientTape() as tape:
        features, logit = probe(array[None], training=False)
    gradients = tape.gradient(logit, features)[0].numpy()
    features = features[0].numpy()
    weights = gradients.mean(axis=(0, 1))
    grad_cam = (features * weights).sum(axis=-1) * (features.shape[0] * features.shape[1])
    served_logit, served_map = classifier.activation_map(array)
    assert served_logit == pytest.approx(float(logit[0, 0]), abs=1e-4)
    np.testing.assert_allclose(served_map, grad_cam, rtol=1e-3, atol=1e-3)
