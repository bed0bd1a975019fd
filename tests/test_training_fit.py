"""The training loop (worker.training.train.fit_network): which weights it keeps, when its time budget
stops it, and the accuracy it logs. Tiny networks on synthetic cells; for the weights, the validation labels
are the training labels flipped, so every epoch that fits the training data better makes the validation
loss worse, and the final epoch is never the best.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest

pytestmark = pytest.mark.pure


def fitted(patience: int, epochs: int = 4):
    import tensorflow as tf

    from worker.serving.preprocessing import to_network_input
    from worker.training.train import add_recipe_arguments, fit_network

    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser)
    args = parser.parse_args(
        [
            "--epochs",
            str(epochs),
            "--batch-size",
            "16",
            "--stem",
            "8",
            "--stages",
            "8x1",
            "--learning-rate",
            "0.03",
            "--dropout",
            "0",
        ]
    )
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 32)
    # Parasitized cells carry a dark blot, as a stained parasite does; the network can learn it in a few steps.
    images = rng.integers(150, 230, (64, 48, 48, 3)).astype(np.uint8)
    images[labels == 1, 12:36, 12:36] = 20
    stream = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.float32))).shuffle(64, seed=1).repeat()
    flipped = (1 - labels).astype(np.float32)
    validation = (to_network_input(images), flipped, np.ones(64, np.float32))
    model, history = fit_network(args, stream, 12, validation=validation, patience=patience, started=time.monotonic())
    return model, history.history["val_loss"], float(model.evaluate(*validation[:2], verbose=0)[0])


@pytest.mark.slow
def test_without_patience_the_whole_schedule_runs_and_the_final_weights_are_kept():
    _, val_loss, kept_loss = fitted(patience=0)
    assert len(val_loss) == 4
    assert val_loss[-1] > val_loss[0]  # the flipped labels did their job: the last epoch is not the best
    assert kept_loss == pytest.approx(val_loss[-1], rel=1e-4)


@pytest.mark.slow
def test_with_patience_training_stops_early_and_keeps_the_best_epoch():
    _, val_loss, kept_loss = fitted(patience=1)
    assert len(val_loss) < 4
    assert kept_loss == pytest.approx(min(val_loss), rel=1e-4)
    assert kept_loss < val_loss[-1]


def test_the_logged_accuracy_rounds_soft_targets_to_the_side_they_lean_to():
    from worker.training.train import rounded_accuracy

    targets = np.array([[1.0], [0.8], [0.3], [0.0], [0.9]], np.float32)
    logits = np.array([[2.0], [0.5], [-1.0], [3.0], [-0.2]], np.float32)
    assert np.asarray(rounded_accuracy(targets, logits)).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.slow
def test_a_network_past_its_minutes_stops_at_the_end_of_the_epoch(capsys):
    import tensorflow as tf

    from worker.training.train import add_recipe_arguments, fit_network

    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser)
    args = parser.parse_args(["--epochs", "3", "--batch-size", "16", "--stem", "8", "--stages", "8x1"])
    args.max_minutes = 0.0
    images = np.zeros((32, 48, 48, 3), np.uint8)
    stream = tf.data.Dataset.from_tensor_slices((images, np.zeros(32, np.float32))).repeat()
    _, history = fit_network(args, stream, 2, started=time.monotonic())
    assert len(history.history["loss"]) == 1
    assert "0.0-minute training budget is spent" in capsys.readouterr().out
